"""One round trip, blocking against green: what txlab.green costs per statement.

One connection sends `SELECT 1` N times, first from a plain thread (psycopg2's
blocking path), then as a worker of a txlab.green Hub (psycopg2's wait callback,
epoll, a greenlet switch each way), alternating for --rounds. Prints wall and
client CPU (process time) per round trip, median of rounds.

With one connection nothing runs meanwhile, so this is the green path's cost
alone; with several workers it pays for itself in the kernel time that threads
spend handing the GIL to each other (bench/vs_bare.py measures that).

    .venv/bin/python bench/roundtrip.py                 # 20,000 round trips, 3 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from _shared import database

from txlab import db, green


def _loop(conn, n: int, out: list) -> None:
    cur = conn.cursor()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        cur.execute("SELECT 1")
    out.append(((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6))


def measure(dsn: str, mode: str, n: int) -> tuple[float, float]:
    conn = db.connect(dsn, f"txlab-bench-roundtrip-{mode}")
    out: list = []
    try:
        if mode == "blocking":
            t = threading.Thread(target=_loop, args=(conn, n, out))
        else:
            t = threading.Thread(target=green.Hub().run, args=([(_loop, (conn, n, out))],))
        t.start()
        t.join()
    finally:
        conn.close()
    return out[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", default=os.environ.get("TXLAB_DSN"),
                   help="PostgreSQL URL (else TXLAB_DSN, else a temporary embedded server)")
    p.add_argument("-n", type=int, default=20_000, help="round trips per measurement (20000)")
    p.add_argument("--rounds", type=int, default=3, help="blocking/green pairs (3)")
    args = p.parse_args()
    with database(args.dsn, "txlab-bench-roundtrip-") as dsn:
        rows: dict[str, list] = {"blocking": [], "green": []}
        for _ in range(args.rounds):
            for mode in rows:
                rows[mode].append(measure(dsn, mode, args.n))
        print(f"SELECT 1, one connection, {args.n:,} round trips, median of {args.rounds} rounds")
        for mode, got in rows.items():
            wall = statistics.median(w for w, _ in got)
            cpu = statistics.median(c for _, c in got)
            print(f"  {mode:9} {wall:6.1f} us wall  {cpu:6.1f} us client CPU per round trip")


if __name__ == "__main__":
    main()
