"""How fast is `txlab check`? Synthetic histories, checked in memory; figures printed.

    .venv/bin/python bench/check_speed.py                 # 10k, 100k, 1M; serial and SI
    .venv/bin/python bench/check_speed.py --sizes 100000 --kinds si

Two synthetic databases, both with 8 workers, 1-4 micro-ops per transaction
(reads and writes of 200 random keys by default, --keys; txlab's version counters):

- serial: one transaction at a time; no anomaly can exist.
- si: snapshot isolation. Rounds of 8 concurrent transactions read one snapshot;
  at commit, the first committer wins and later writers of the same key abort.
  Write skew (G2-item) appears, and nothing that snapshot isolation forbids.

Each (kind, size) runs in a child process so that its peak RSS (getrusage
maxrss, which includes the history itself) is its own. Never asserted in tests.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from txlab.checker.synthetic import generate  # noqa: E402


def one(kind: str, n: int, realtime: bool | None, keys: int) -> None:
    from txlab import checker

    h = generate(kind, n, keys=keys)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    r = checker.check(h, time_limit=10.0, realtime=realtime)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = ", ".join(f"{k} {a['count']}" for k, a in r.anomalies.items()) or "none"
    s = r.stats["seconds"]
    print(f"{kind:<7} {n:>9,} txns  {dt:6.2f} s  {n / dt:>9,.0f} txn/s  peak RSS {peak:6.0f} MB "
          f"(history alone {base:5.0f} MB)  {r.history['failed']:,} aborted; verdict {r.verdict} at {r.model}{' +realtime' if r.stats['realtime_edges'] else ''}; found: {found}; "
          f"phases edges {s['edges']:.2f} s, scc {s['scc']:.2f} s, cycles {s['cycles']:.2f} s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--kinds", default="serial,si")
    ap.add_argument("--realtime", action="store_true",
                    help="add realtime edges (by default only strict-serializable has them)")
    ap.add_argument("--keys", type=int, default=200, help="distinct keys (fewer: more conflicts)")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        one(a.one[0], int(a.one[1]), True if a.realtime else None, a.keys)
        return
    print(f"python {sys.version.split()[0]}; {a.keys} keys; each line is a fresh process; check time only "
          "(generating the history is not counted)")
    for kind in a.kinds.split(","):
        for n in (int(x) for x in a.sizes.split(",")):
            cmd = [sys.executable, __file__, "--one", kind, str(n), "--keys", str(a.keys)]
            if a.realtime:
                cmd.append("--realtime")
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
