"""txlab against pgbench: is the harness what limits a run?

Runs the bank-transfer `atomic` workload through pgbench (the one shipped with the
embedded PostgreSQL wheel) and through `txlab run bank-transfer --strategy atomic`,
alternating, against one server, and prints both throughputs and their ratio.

Both sides send the same statements in the same order: BEGIN ISOLATION LEVEL ...,
the two UPDATEs in id order (the debit carries the funds check and RETURNING), a
declined transfer (the debit updates no row) ends in ROLLBACK at once, else the
INSERT into `transfers` and COMMIT. Both use the simple query protocol and
interpolate the values client-side. By default both make the same three round
trips per committed transfer, as txlab does: BEGIN travels with the first UPDATE,
the second UPDATE alone, the INSERT with the COMMIT (pgbench's `\\;`).
`--pgbench-script plain` gives pgbench the textbook script instead, one statement
per round trip (five), which is what a hand-written pgbench run would do.

What is compared: transactions per second that ran to their end, committed plus
declined (pgbench counts a script that ends in ROLLBACK as a transaction too).
Committed-only figures are printed in brackets (pgbench's are derived from the
rows its run added to `transfers`). txlab records its history (--history to a
temporary file) as it always does: spooled during the load, its JSON lines
written after it.
The ratio is the median of the per-round ratios (each round runs both back to
back, in alternating order), which is steadier than a ratio of medians on a
shared machine, with a 90% bootstrap interval of that median. "client CPU" is the user+system time of the client process per
transaction; txlab's leaves out its start-up, setup and checks (the cost of a
one-transaction run) but includes building the report and writing the history.

    .venv/bin/python bench/vs_pgbench.py                      # 10 accounts, 5 rounds of 6 s
    .venv/bin/python bench/vs_pgbench.py --accounts 1000      # no lock contention
    .venv/bin/python bench/vs_pgbench.py --dsn postgresql://... --rounds 7 --seconds 8
    .venv/bin/python bench/vs_pgbench.py --baseline /work/main   # also txlab from another tree
    .venv/bin/python bench/vs_pgbench.py --bare      # also the bare psycopg2 loop of vs_bare.py

--bare adds bench/vs_bare.py's bare loop (8 threads sending the same statements in the
same round trips, nothing recorded) to every round: its ratio to pgbench is the ceiling
of a psycopg2 thread loop on this machine at this moment, and txlab/bare in the same
rounds is what txlab itself costs.

The database: --dsn, else TXLAB_DSN, else a temporary embedded server started for
this script and stopped at the end. Tables live in two txlab schemas
(txlab_bench_pg and txlab_bench_tx), recreated by txlab before every measured run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _shared import children_cpu, database, median_interval, txlab_report

from txlab import db, server

PG_SCHEMA, TX_SCHEMA = "txlab_bench_pg", "txlab_bench_tx"


# ---------------------------------------------------------------- the pgbench script


def pgbench_script(accounts: int, max_amount: int, isolation_sql: str, plain: bool) -> str:
    """The `atomic` strategy of scenarios/bank_transfer.py, in pgbench's language.

    `_draw`: src in 1..n, dst in 1..n-1 shifted past src, amount in 1..max_amount.
    The debit's RETURNING balance is >= 0 when it updated a row; \\aset leaves
    :balance at -1 when it updated none (declined).
    """
    sep = ";\n" if plain else "\\;\n"  # \; joins two statements into one round trip
    begin = f"BEGIN ISOLATION LEVEL {isolation_sql}" + sep
    debit = ("UPDATE accounts SET balance = balance - :amount, version = version + 1"
             " WHERE id = :src AND balance >= :amount RETURNING version, balance")
    credit = ("UPDATE accounts SET balance = balance + :amount, version = version + 1"
              " WHERE id = :dst RETURNING version, balance")
    return f"""\
\\set src random(1, {accounts})
\\set dst random(1, {accounts - 1})
\\if :dst >= :src
\\set dst :dst + 1
\\endif
\\set amount random(1, {max_amount})
\\set balance -1
\\if :src < :dst
{begin}{debit}\\aset
\\if :balance >= 0
{credit};
\\endif
\\else
{begin}{credit};
{debit}\\aset
\\endif
\\if :balance >= 0
INSERT INTO transfers (src, dst, amount) VALUES (:src, :dst, :amount){sep}COMMIT;
\\else
ROLLBACK;
\\endif
"""


# ---------------------------------------------------------------- one measured run each


def _sql(dsn: str, *statements: str) -> list:
    """Run statements in autocommit; the first row of each (or the exception it raised)."""
    conn = db.connect(dsn, "txlab-bench")
    out = []
    try:
        with conn.cursor() as cur:
            for s in statements:
                try:
                    cur.execute(s)
                    out.append(cur.fetchone() if cur.description else None)
                except Exception as exc:  # e.g. CHECKPOINT without the privilege
                    out.append(exc)
    finally:
        conn.close()
    return out



def _txlab(dsn: str, schema: str, args: argparse.Namespace, extra: list[str],
           src: str | None = None) -> dict:
    """`txlab run` in a subprocess (from the source tree `src` if given): its JSON
    report, plus the CPU it used (cpu_s)."""
    return txlab_report([
        "--isolation", args.isolation, "--workers", str(args.clients),
        "--retries", str(args.retries), "--param", f"accounts={args.accounts}",
        "--param", f"max_amount={args.max_amount}", "--dsn", dsn, "--schema", schema, *extra],
        src)


def run_pgbench(dsn: str, script: Path, args: argparse.Namespace) -> dict:
    _txlab(dsn, PG_SCHEMA, args, ["--transactions", "1"])  # txlab creates fresh tables
    before, _ = _sql(dsn, f"SELECT count(*) FROM {PG_SCHEMA}.transfers", "CHECKPOINT")
    cmd = [
        str(args.pgbench), "-n", "-M", "simple", "-c", str(args.clients), "-j", str(args.threads),
        "-T", str(args.seconds), "-f", str(script), f"--max-tries={args.retries + 1}", dsn,
    ]
    # the session settings of txlab's workers (its defaults), so the server does the same work
    options = f"-c search_path={PG_SCHEMA} -c statement_timeout=30000 -c lock_timeout=10000"
    env = {**os.environ, "PGOPTIONS": options, "PGAPPNAME": "txlab-bench-pgbench"}
    cpu = children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    processed = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    after, conserved = _sql(
        dsn, f"SELECT count(*) FROM {PG_SCHEMA}.transfers",
        f"SELECT sum(balance) = count(*) * 1000 FROM {PG_SCHEMA}.accounts",
    )
    if conserved != (True,):  # the script is wrong, not the database
        print("  warning: money is not conserved after pgbench's run")
    committed = after[0] - before[0]
    elapsed = processed / tps if tps else 0.0
    return {
        "ended_tps": tps,  # committed + declined (ROLLBACK) per second
        "committed_tps": committed / elapsed if elapsed else 0.0,
        "ended": processed, "committed": committed,
        "failed": int(failed.group(1)) if failed else 0,
        "cpu_us": cpu / processed * 1e6 if processed else 0.0,
    }


def run_bare(dsn: str, args: argparse.Namespace, seed: int) -> dict:
    """vs_bare.py's bare psycopg2 thread loop, with this bench's settings."""
    import vs_bare

    return vs_bare.run_bare(dsn, argparse.Namespace(
        n=args.accounts, isolation=args.isolation, max_amount=args.max_amount,
        workers=args.clients, seconds=args.seconds, check=False), seed)


def run_txlab(dsn: str, args: argparse.Namespace, history: Path, fixed_cpu_s: float,
              src: str | None = None) -> dict:
    _sql(dsn, "CHECKPOINT")
    r = _txlab(dsn, TX_SCHEMA, args, ["--duration", str(args.seconds), "--history", str(history)],
               src)
    o, d = r["outcomes"], r["duration_s"]
    ended = o["committed"] + o["declined"]
    return {
        "ended_tps": ended / d,
        "committed_tps": o["committed"] / d,
        "ended": ended, "committed": o["committed"],
        "failed": o["failed"], "aborted": sum(o["aborted"].values()),
        "cpu_us": max(0.0, r["cpu_s"] - fixed_cpu_s) / max(1, ended) * 1e6,
    }


# ---------------------------------------------------------------- main


def _line(label: str, r: dict) -> str:
    extra = f", failed {r['failed']}" if r["failed"] else ""
    if r.get("aborted"):
        extra += f", aborted attempts {r['aborted']}"
    return (f"  {label:17} {r['ended_tps']:8.1f} tps [{r['committed_tps']:8.1f} committed]"
            f"  client CPU {r['cpu_us']:5.0f} us/txn  ({r['ended']} txns{extra})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", default=os.environ.get("TXLAB_DSN"),
                   help="PostgreSQL URL (else TXLAB_DSN, else a temporary embedded server)")
    p.add_argument("--seconds", type=int, default=6, help="length of each measured run")
    p.add_argument("--rounds", type=int, default=5, help="pgbench/txlab pairs, alternating order")
    p.add_argument("--isolation", default="read-committed", help="isolation level (txlab spelling)")
    p.add_argument("--accounts", type=int, default=10, help="accounts (few = lock contention)")
    p.add_argument("--max-amount", type=int, default=100, help="the scenario's max_amount knob")
    p.add_argument("--clients", type=int, default=8, help="pgbench clients = txlab workers")
    p.add_argument("--threads", type=int, default=2, help="pgbench -j")
    p.add_argument("--retries", type=int, default=0,
                   help="txlab --retries; pgbench --max-tries is one more (for serializable)")
    p.add_argument("--pgbench-script", choices=("same-round-trips", "plain"),
                   default="same-round-trips",
                   help="pgbench makes txlab's round trips (BEGIN with the first UPDATE, INSERT"
                        " with COMMIT) or one per statement")
    p.add_argument("--bare", action="store_true",
                   help="also run vs_bare.py's bare psycopg2 thread loop each round (the ceiling"
                        " of a psycopg2 client here, and txlab/bare in the same rounds)")
    p.add_argument("--pgbench", type=Path, default=None, help="pgbench binary (default: the wheel's)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run txlab from another source tree each round (e.g. /work/main),"
                        " for before/after figures")
    args = p.parse_args()
    args.pgbench = args.pgbench or server.bin_dir() / "pgbench"
    iso = db.parse_isolation(args.isolation)
    args.isolation = iso.key

    with tempfile.TemporaryDirectory(prefix="txlab-bench-") as t, database(args.dsn, "txlab-bench-pg-") as dsn:
        tmp = Path(t)
        script = tmp / "transfer.sql"
        script.write_text(pgbench_script(args.accounts, args.max_amount, iso.sql,
                                         args.pgbench_script == "plain"))
        print(f"bank-transfer atomic, {iso.sql}, {args.accounts} accounts, {args.clients} clients,"
              f" {args.rounds} rounds of {args.seconds} s, alternating; pgbench -j {args.threads},"
              f" script {args.pgbench_script}")
        print("compared: transactions that ran to their end per second (committed + declined)")
        contestants = (["pgbench", "txlab"] + (["bare"] if args.bare else [])
                       + (["baseline"] if args.baseline else []))
        src = {"txlab": None, "baseline": args.baseline}
        fixed_cpu_s = {who: min(_txlab(dsn, TX_SCHEMA, args, ["--transactions", "1", "--history",
                                                           str(tmp / "history.jsonl")],
                                       src[who])["cpu_s"] for _ in range(3))
                       for who in contestants if who not in ("pgbench", "bare")}
        rows: dict[str, list[dict]] = {who: [] for who in contestants}
        for i in range(args.rounds):
            for who in contestants if i % 2 == 0 else contestants[::-1]:
                if who == "pgbench":
                    r = run_pgbench(dsn, script, args)
                elif who == "bare":
                    r = run_bare(dsn, args, seed=i)
                else:
                    r = run_txlab(dsn, args, tmp / "history.jsonl", fixed_cpu_s[who], src[who])
                rows[who].append(r)
                print(_line(f"round {i + 1} {who}", r), flush=True)
        for who in contestants:
            med = {k: statistics.median(r[k] for r in rows[who])
                   for k in ("ended_tps", "committed_tps", "cpu_us")}
            print(f"median {who:11} {med['ended_tps']:8.1f} tps [{med['committed_tps']:8.1f}"
                  f" committed]  client CPU {med['cpu_us']:5.0f} us/txn")
        labels = {"txlab": "txlab", "bare": "bare loop", "baseline": f"txlab from {args.baseline}"}
        pairs = [(who, "pgbench") for who in contestants[1:]]
        if args.bare:
            pairs.append(("txlab", "bare"))
        for who, against in pairs:
            ratios = [tx["ended_tps"] / pg["ended_tps"]
                      for pg, tx in zip(rows[against], rows[who], strict=True)]
            label, under = labels[who], labels.get(against, against)
            print(f"per-round ratios {label}/{under}: " + " ".join(f"{x:.2f}" for x in ratios))
            low, high = median_interval(ratios)
            print(f"ratio {label} / {under} = {statistics.median(ratios):.2f}x (median of rounds;"
                  f" spread {min(ratios):.2f}-{max(ratios):.2f}, 90% interval of the median"
                  f" {low:.2f}-{high:.2f})")

if __name__ == "__main__":
    main()
