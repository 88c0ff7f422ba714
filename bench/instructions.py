"""Client instructions per transaction: a figure that does not swing with the machine.

Throughput on a shared 2-core VM moves by 10-20% between identical runs, which hides
the few per cent that the harness's own Python costs. The number of instructions
the client executes per transaction does not move: valgrind's callgrind counts them
(user space only; system calls are not counted), the same from run to run whatever
else the machine does. This script counts them with one worker, for:

- the bare loop of bench/vs_bare.py on a plain thread (blocking libpq calls);
- the same loop as a greenlet on txlab.green.Hub, as txlab runs its workers;
- `txlab run bank-transfer --strategy atomic` with its history on (--history to a
  file), split by thread: the workers' thread (the hot path) and the main thread
  (spooling the history during the load, its JSON lines after it, start-up).

Each is run for two transaction counts and the difference is divided by the
difference in counts, so start-up, imports, setup and checks drop out. The database
is only waited on, so its speed does not matter.

    .venv/bin/python bench/instructions.py                # 1000 and 3000 transactions
    .venv/bin/python bench/instructions.py --dsn URL --accounts 10

Needs valgrind (Debian's package `valgrind`). The database: --dsn, else TXLAB_DSN,
else a temporary embedded server. Tables live in txlab schemas (txlab_bench_ibare,
txlab_bench_itx), recreated by txlab before every measured run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from random import Random

from _shared import database
from vs_bare import transfer

# Schemas of their own: vs_bare.py may run meanwhile (its figures would suffer, not these).
BARE_SCHEMA, TX_SCHEMA = "txlab_bench_ibare", "txlab_bench_itx"


def bare(dsn: str, accounts: int, transactions: int, green: bool) -> None:
    """`transactions` bank-transfer `atomic` transactions on one connection."""
    import psycopg2

    conn = psycopg2.connect(dsn, application_name="txlab-bench-instructions",
                            options=f"-c search_path={BARE_SCHEMA}")
    conn.autocommit = True
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED\n;\n"

    def work() -> None:
        cur = conn.cursor()
        randint = Random(1).randint
        for _ in range(transactions):
            transfer(cur, randint, begin, accounts, 100)

    if green:
        from txlab.green import Hub

        Hub().run([(work, ())])
    else:
        work()
    conn.close()


def _fresh_tables(dsn: str, schema: str, accounts: int) -> None:
    subprocess.run([sys.executable, "-m", "txlab", "run", "bank-transfer", "--strategy", "atomic",
                    "--transactions", "1", "--param", f"accounts={accounts}", "--dsn", dsn,
                    "--schema", schema, "--no-check", "--format", "json"],
                   check=True, capture_output=True)


def counted(cmd: list[str], out: Path) -> list[int]:
    """Instructions per thread of `cmd` under callgrind, in the order threads started."""
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    done = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                           f"--callgrind-out-file={out}", *cmd],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    totals = []
    for f in sorted(out.parent.glob(out.name + "-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
        m = re.search(r"^totals:\s+(\d+)", f.read_text(), re.MULTILINE)
        totals.append(int(m.group(1)) if m else 0)
    return totals


def per_transaction(cmd_for, n1: int, n2: int, out: Path, prepare) -> list[float]:
    prepare()
    a = counted(cmd_for(n1), out)
    prepare()
    b = counted(cmd_for(n2), out)
    width = max(len(a), len(b))
    a, b = a + [0] * (width - len(a)), b + [0] * (width - len(b))
    return [(y - x) / (n2 - n1) for x, y in zip(a, b, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", default=os.environ.get("TXLAB_DSN"),
                   help="PostgreSQL URL (else TXLAB_DSN, else a temporary embedded server)")
    p.add_argument("--accounts", type=int, default=1000, help="bank-transfer accounts (1000)")
    p.add_argument("--counts", default="1000,3000",
                   help="the two transaction counts whose difference is measured (1000,3000)")
    p.add_argument("--bare", choices=["thread", "green"], help=argparse.SUPPRESS)
    p.add_argument("--transactions", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare:
        bare(args.dsn, args.accounts, args.transactions, args.bare == "green")
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    n1, n2 = (int(x) for x in args.counts.split(","))
    with (tempfile.TemporaryDirectory(prefix="txlab-bench-") as t,
          database(args.dsn, "txlab-bench-instr-") as dsn):
        tmp = Path(t)
        out = tmp / "callgrind.out"
        print(f"\nclient instructions per bank-transfer `atomic` transaction, one worker,"
              f" {args.accounts} accounts (callgrind; {n2} minus {n1} transactions)", flush=True)
        rows = []
        for how in ("thread", "green"):
            per = per_transaction(
                lambda n, how=how: [sys.executable, __file__, "--bare", how, "--dsn", dsn,
                                    "--accounts", str(args.accounts), "--transactions", str(n)],
                n1, n2, out, lambda: _fresh_tables(dsn, BARE_SCHEMA, args.accounts))
            label = "bare loop, thread" if how == "thread" else "bare loop, greenlet (Hub)"
            rows.append((label, sum(per)))
            print(f"  {label:34} {sum(per):9,.0f}", flush=True)
        per = per_transaction(
            lambda n: [sys.executable, "-m", "txlab", "run", "bank-transfer", "--strategy",
                       "atomic", "--think-ms", "0", "--workers", "1", "--transactions", str(n),
                       "--param", f"accounts={args.accounts}", "--dsn", dsn, "--schema",
                       TX_SCHEMA, "--no-check", "--history", str(tmp / "history.jsonl"),
                       "--format", "json"],
            n1, n2, out, lambda: None)  # txlab makes its tables afresh itself
        # Threads in start order: main, then the workers' (the hub's) thread.
        main_thread, workers = per[0], sum(per[1:])
        print(f"  {'txlab, the workers thread':34} {workers:9,.0f}")
        print(f"  {'txlab, main thread (history)':34} {main_thread:9,.0f}")
        print(f"  {'txlab, in all':34} {sum(per):9,.0f}")
        green = rows[1][1]
        print(f"\ntxlab's workers' thread over the greenlet loop: {workers - green:+,.0f}"
              f" ({workers / green - 1:+.0%}); the greenlet loop over the thread loop:"
              f" {green - rows[0][1]:+,.0f} ({green / rows[0][1] - 1:+.0%})")


if __name__ == "__main__":
    main()
