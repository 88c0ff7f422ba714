"""txlab against a bare psycopg2 loop: how much does the harness itself cost?

Runs bank-transfer's `atomic` strategy through `txlab run` (history on: --history
to a file) and through the least Python that can send the same statements in the
same round trips: 8 threads, one psycopg2 connection each, a `random.Random` per
thread, no recording. txlab runs its 8 workers as greenlets on one thread
(txlab.green; TXLAB_WORKER_THREADS=1 in the environment gives a thread each, as
before), which costs less CPU per round trip than 8 threads handing the GIL to
each other; the bare loop stays the thread loop, the yardstick the target names. Both run in their own process, alternating, against one
server; each round runs both back to back (order alternating), and the ratio is
the median of the per-round ratios, which is steadier than a ratio of medians on
a shared machine, printed with a 90% bootstrap interval of that median (a target
inside the interval is neither met nor missed by these rounds).

The round trips, for both: BEGIN ISOLATION LEVEL ... with the first UPDATE (in id
order; the debit carries the funds check and RETURNING), the second UPDATE alone,
the INSERT into `transfers` with the COMMIT; a declined transfer (the debit updates
no row) ends in ROLLBACK at once. Compared: transactions that ran to their end
per second (committed + declined), over each side's own load phase.

"client CPU" is user+system time of the client process per transaction. For
txlab it leaves out what a one-transaction run costs (start-up, setup, invariant
checks); it includes the history: spooled during the load, its JSON lines
written after it (that part is in the CPU figure, not in the load's throughput). The anomaly check is off
by default here (--check to include it): it runs after the load, so it does not
change the ratio, and its cost belongs to the checker, not the harness.

    .venv/bin/python bench/vs_bare.py                         # 1,000 and 10 accounts, 5 rounds of 6 s
    .venv/bin/python bench/vs_bare.py --accounts 1000 --rounds 7 --seconds 8
    .venv/bin/python bench/vs_bare.py --memory 600            # RSS over one 10-minute run (check on)
    .venv/bin/python bench/vs_bare.py --green-bare            # and the bare loop on greenlets

--green-bare adds a third contestant each round: the same bare loop with its
workers as greenlets on one thread (txlab.green.Hub), as txlab runs them. Its
ratio to the thread loop is what that way of running costs or saves by itself;
txlab against it is what txlab's own Python costs.

bench/harness_cost.py measures the harness's own Python per transaction with a
fake cursor (no server): a figure that does not swing with the machine's load.

--memory SECONDS instead runs one txlab run that long with the check on (the
history goes to a temporary file, as when no --history is given), samples its
resident set size (RSS) every few seconds, prints RSS over time, the peak
during the end-of-run check, and the growth extrapolated to one hour.

The database: --dsn, else TXLAB_DSN, else a temporary embedded server started for
this script and stopped at the end. Tables live in txlab schemas
(txlab_bench_bare, txlab_bench_tx), recreated by txlab before every measured run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from random import Random

from _shared import children_cpu, database, median_interval, source_path, txlab_report

BARE_SCHEMA, TX_SCHEMA = "txlab_bench_bare", "txlab_bench_tx"

DEBIT = ("UPDATE accounts SET balance = balance - %s, version = version + 1"
         " WHERE id = %s AND balance >= %s RETURNING version, balance")
CREDIT = ("UPDATE accounts SET balance = balance + %s, version = version + 1"
          " WHERE id = %s RETURNING version, balance")
LOG = "INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s)"


# ---------------------------------------------------------------- the bare loop


def transfer(cur, randint, begin: str, accounts: int, max_amount: int) -> bool:
    """One bank-transfer `atomic` transaction, in txlab's round trips: BEGIN with the
    first UPDATE (in id order; the debit checks the funds), the second UPDATE, the
    INSERT with the COMMIT; ROLLBACK at once when declined. True if committed."""
    src = randint(1, accounts)
    dst = randint(1, accounts - 1)
    if dst >= src:
        dst += 1
    amount = randint(1, max_amount)
    if src < dst:
        cur.execute(begin + DEBIT % (amount, src, amount))
        ok = cur.fetchone() is not None
        if ok:
            cur.execute(CREDIT % (amount, dst))
            cur.fetchone()
    else:
        cur.execute(begin + CREDIT % (amount, dst))
        cur.fetchone()
        cur.execute(DEBIT % (amount, src, amount))
        ok = cur.fetchone() is not None
    cur.execute(LOG % (src, dst, amount) + "\n;\nCOMMIT" if ok else "ROLLBACK")
    return ok


def bare_loop(dsn: str, schema: str, isolation_sql: str, accounts: int, max_amount: int,
              workers: int, seconds: float, seed: int, green: bool = False) -> dict:
    """bank-transfer `atomic` with nothing around it; returns counts and elapsed seconds.
    With `green`, the workers are greenlets on one thread (txlab.green.Hub) as txlab's."""
    import psycopg2

    begin = f"BEGIN ISOLATION LEVEL {isolation_sql}\n;\n"
    options = f"-c search_path={schema} -c statement_timeout=30000 -c lock_timeout=10000"
    stop = threading.Event()
    counts = [[0, 0, 0] for _ in range(workers)]  # committed, declined, failed
    conns = []
    for w in range(workers):
        conn = psycopg2.connect(dsn, application_name=f"txlab-bench-bare-{w}", options=options)
        conn.autocommit = True
        conns.append(conn)
    ready = threading.Barrier(1 if green else workers + 1)

    def work(w: int) -> None:
        cur = conns[w].cursor()
        rng = Random(seed * 1000 + w)
        randint = rng.randint
        mine = counts[w]
        if not green:
            ready.wait()
        while not stop.is_set():
            try:
                mine[0 if transfer(cur, randint, begin, accounts, max_amount) else 1] += 1
            except psycopg2.Error:
                cur.execute("ROLLBACK")
                mine[2] += 1

    if green:
        from txlab.green import Hub

        hub = Hub()
        go = threading.Event()

        def serve() -> None:
            go.wait()
            hub.run([(work, (w,)) for w in range(workers)])

        threads = [threading.Thread(target=serve, daemon=True)]
        threads[0].start()
        go.set()
    else:
        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
        for t in threads:
            t.start()
        ready.wait()
    started = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for c in conns:
        c.close()
    total = [sum(c[i] for c in counts) for i in range(3)]
    return {"committed": total[0], "declined": total[1], "failed": total[2], "elapsed": elapsed}


# ---------------------------------------------------------------- measured runs



def _txlab(dsn: str, schema: str, args: argparse.Namespace, extra: list[str],
           src: str | None = None) -> dict:
    return txlab_report([
        "--isolation", args.isolation, "--workers", str(args.workers),
        "--param", f"accounts={args.n}", "--param", f"max_amount={args.max_amount}",
        "--dsn", dsn, "--schema", schema, *([] if args.check else ["--no-check"]), *extra], src)


def run_txlab(dsn: str, args: argparse.Namespace, history: Path, fixed_cpu_s: float,
              src: str | None = None) -> dict:
    r = _txlab(dsn, TX_SCHEMA, args, ["--duration", str(args.seconds), "--history", str(history)],
               src)
    o, d = r["outcomes"], r["duration_s"]
    ended = o["committed"] + o["declined"]
    return {"ended_tps": ended / d, "ended": ended, "failed": o["failed"],
            "cpu_us": max(0.0, r["cpu_s"] - fixed_cpu_s) / max(1, ended) * 1e6}


def run_bare(dsn: str, args: argparse.Namespace, seed: int, green: bool = False) -> dict:
    _txlab(dsn, BARE_SCHEMA, args, ["--transactions", "1"])  # fresh tables, made by txlab
    cmd = [sys.executable, __file__, "--bare-loop", "--dsn", dsn, "--isolation", args.isolation,
           "--accounts", str(args.n), "--max-amount", str(args.max_amount),
           "--workers", str(args.workers), "--seconds", str(args.seconds), "--seed", str(seed),
           *(["--green"] if green else [])]
    cpu = children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True)
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"the bare loop failed ({done.returncode}):\n{done.stderr}")
    r = json.loads(done.stdout)
    ended = r["committed"] + r["declined"]
    return {"ended_tps": ended / r["elapsed"], "ended": ended, "failed": r["failed"],
            "committed_tps": r["committed"] / r["elapsed"], "committed": r["committed"],
            "cpu_us": cpu / max(1, ended) * 1e6}


def _line(label: str, r: dict) -> str:
    extra = f", failed {r['failed']}" if r["failed"] else ""
    return (f"  {label:17} {r['ended_tps']:8.1f} tps  client CPU {r['cpu_us']:5.0f} us/txn"
            f"  ({r['ended']} txns{extra})")


def compare(dsn: str, args: argparse.Namespace, tmp: Path) -> dict:
    from txlab import db

    iso = db.parse_isolation(args.isolation)
    print(f"\nbank-transfer atomic, {iso.sql}, {args.n} accounts, {args.workers} workers,"
          f" {args.rounds} rounds of {args.seconds:g} s, alternating", flush=True)
    history = tmp / "history.jsonl"
    contestants = (["bare", "txlab"] + (["baseline"] if args.baseline else [])
                   + (["bare-green"] if args.green_bare else []))
    fixed = {who: min(_txlab(dsn, TX_SCHEMA, args, ["--transactions", "1", "--history",
                                                    str(history)], _src(who, args))["cpu_s"]
                      for _ in range(3))
             for who in contestants if not who.startswith("bare")}
    rows: dict[str, list[dict]] = {who: [] for who in contestants}
    for i in range(args.rounds):
        order = contestants if i % 2 == 0 else contestants[::-1]
        for who in order:
            if who.startswith("bare"):
                r = run_bare(dsn, args, seed=i, green=who == "bare-green")
            else:
                r = run_txlab(dsn, args, history, fixed[who], _src(who, args))
            rows[who].append(r)
            print(_line(f"round {i + 1} {who}", r), flush=True)
    med = {who: {k: statistics.median(r[k] for r in rows[who]) for k in ("ended_tps", "cpu_us")}
           for who in rows}
    for who in contestants:
        print(f"median {who:10} {med[who]['ended_tps']:8.1f} tps  client CPU"
              f" {med[who]['cpu_us']:5.0f} us/txn")
    out = {"accounts": args.n, "bare_cpu_us": med["bare"]["cpu_us"]}
    for who in contestants[1:]:
        ratios = [tx["ended_tps"] / b["ended_tps"] for b, tx in zip(rows["bare"], rows[who],
                                                                      strict=True)]
        label = {"txlab": "txlab", "bare-green": "bare loop on greenlets"}.get(
            who, f"txlab from {args.baseline}")
        print(f"per-round ratios {label}/bare: " + " ".join(f"{x:.3f}" for x in ratios))
        low, high = median_interval(ratios)
        print(f"ratio {label} / bare = {statistics.median(ratios):.3f} at {args.n} accounts"
              f" (median of rounds, spread {min(ratios):.3f}-{max(ratios):.3f}, 90% interval"
              f" of the median {low:.3f}-{high:.3f}; target >= 0.95)", flush=True)
        out[f"{who}_ratio"] = statistics.median(ratios)
        out[f"{who}_spread"] = f"{min(ratios):.3f}-{max(ratios):.3f}"
        out[f"{who}_cpu_us"] = med[who]["cpu_us"]
    return out


def _src(who: str, args: argparse.Namespace) -> str | None:
    return args.baseline if who == "baseline" else None


# ---------------------------------------------------------------- memory


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a process in MB, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    except (KeyError, ValueError):
        return None


def memory(dsn: str, args: argparse.Namespace) -> None:
    seconds = args.memory
    n = args.accounts[0]
    print(f"\nRSS of one `txlab run` of {seconds:g} s: bank-transfer atomic, {n} accounts,"
          f" {args.workers} workers, check on, history to a temporary file", flush=True)
    cmd = [sys.executable, "-m", "txlab", "run", "bank-transfer", "--strategy", "atomic",
           "--think-ms", "0", "--isolation", args.isolation,
           "--workers", str(args.workers), "--param", f"accounts={n}", "--format", "json",
           "--dsn", dsn, "--schema", TX_SCHEMA, "--duration", str(seconds)]
    env = dict(os.environ, PYTHONPATH=source_path(args.baseline)) if args.baseline else None
    if args.baseline:
        print(f"  (txlab from {args.baseline})")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=args.baseline)
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    every = max(1.0, min(30.0, seconds / 20))
    next_print = 10.0
    while proc.poll() is None:
        t = time.monotonic() - started
        m = _rss_mb(proc.pid)
        if m and t <= seconds + 0.5:
            samples.append((t, m[0]))
            if t >= next_print:
                print(f"  {t:7.0f} s  RSS {m[0]:7.1f} MB", flush=True)
                next_print += every
        peak = m[1] if m else None
        time.sleep(0.5)
    out, err = proc.communicate()
    if proc.returncode not in (0, 1):
        sys.exit(f"txlab failed ({proc.returncode}):\n{err}")
    report = json.loads(out)
    o = report["outcomes"]
    at10 = next((rss for t, rss in samples if t >= 10), samples[0][1])
    end = samples[-1]
    chk = report["check"] or {}
    parts = chk.get("parts", 1)
    print(f"  transactions {o['committed'] + o['declined']}, duration {report['duration_s']:.0f} s,"
          f" check verdict {chk.get('verdict')}"
          f"{f' (checked in {parts} parts)' if parts > 1 else ' (checked whole)' if chk else ''}")
    print(f"  RSS after 10 s {at10:.1f} MB; at the end of the load ({end[0]:.0f} s)"
          f" {end[1]:.1f} MB; peak (incl. the check) {peak:.1f} MB")
    late = [(t, r) for t, r in samples if t >= min(60.0, seconds / 2)]
    if len(late) >= 2:
        slope = (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0])  # MB/s, after warm-up
        hour = end[1] + slope * (3600 - end[0])
        print(f"  growth after warm-up {slope * 60:+.2f} MB/min; extrapolated RSS after 1 h"
              f" {hour:.1f} MB ({hour - at10:+.1f} MB over the 10-s figure; target within 50 MB)")


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Prints per-round throughputs, the median ratio txlab/bare per account count, and"
               " client CPU per transaction; with --memory, RSS over one long run.")
    p.add_argument("--dsn", default=os.environ.get("TXLAB_DSN"),
                   help="PostgreSQL URL (else TXLAB_DSN, else a temporary embedded server)")
    p.add_argument("--accounts", default="1000,10",
                   help="comma-separated account counts, one comparison each (default 1000,10)")
    p.add_argument("--seconds", type=float, default=6, help="length of each measured run (6)")
    p.add_argument("--rounds", type=int, default=5, help="bare/txlab pairs, alternating order (5)")
    p.add_argument("--isolation", default="read-committed", help="isolation level (read-committed)")
    p.add_argument("--workers", type=int, default=8, help="threads = txlab workers (8)")
    p.add_argument("--max-amount", type=int, default=100, help="the scenario's max_amount knob")
    p.add_argument("--check", action="store_true",
                   help="let txlab run the anomaly check after each load (off: it is not harness)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run txlab from another source tree each round (e.g. /work/main:"
                        " PYTHONPATH=DIR), for before/after figures")
    p.add_argument("--memory", type=float, metavar="SECONDS",
                   help="instead: RSS over one run this long, check on (600 for the 10-min figure)")
    p.add_argument("--green-bare", action="store_true",
                   help="also run the bare loop with its workers as greenlets on one thread, as"
                        " txlab's (txlab.green): what that way of running costs or saves by itself")
    p.add_argument("--bare-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--green", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare_loop:
        from txlab import db

        iso = db.parse_isolation(args.isolation)
        out = bare_loop(args.dsn, BARE_SCHEMA, iso.sql, int(args.accounts), args.max_amount,
                        args.workers, args.seconds, args.seed, args.green)
        print(json.dumps(out))
        return
    args.accounts = [int(x) for x in args.accounts.split(",") if x.strip()]
    with (tempfile.TemporaryDirectory(prefix="txlab-bench-") as t,
          database(args.dsn, "txlab-bench-bare-") as dsn):
        if args.memory:
            memory(dsn, args)
            return
        results = []
        for n in args.accounts:
            args.n = n
            results.append(compare(dsn, args, Path(t)))
        base = "   baseline: ratio (spread), CPU" if args.baseline else ""
        print(f"\naccounts  ratio txlab/bare (spread)  client CPU us/txn: bare  txlab{base}")
        for r in results:
            extra = (f"   {r['baseline_ratio']:.3f} ({r['baseline_spread']})"
                     f"  {r['baseline_cpu_us']:5.0f}" if args.baseline else "")
            print(f"{r['accounts']:8}  {r['txlab_ratio']:10.3f} ({r['txlab_spread']})"
                  f"  {r['bare_cpu_us']:22.0f}  {r['txlab_cpu_us']:5.0f}{extra}")


if __name__ == "__main__":
    main()
