"""The harness's own Python per transaction, without a database: a steady figure.

Throughput ratios on a shared machine swing by tens of percent from run to run;
this measures only what txlab's worker loop adds, with nothing else in the way.
A fake cursor answers every statement at once, and bank-transfer's `atomic`
strategy runs N transactions through:

  bare     the loop of bench/vs_bare.py (draw, format, execute; nothing recorded)
  txlab    txlab's worker loop (Tx, the transaction's generator, outcomes and
           latency counted), no history
  +history the same, and every attempt handed to the history writer as the run
           goes (the main thread's part during the load: its spool)
  JSON     afterwards: the history file's JSON lines written from the spool
           (after the load, so it does not slow the workers; per attempt)

One thread, CPU time (process_time), best of --repeat. On a real server each
transaction also costs psycopg2, libpq and the kernel (about 70 us of client CPU
here); txlab's workers run as greenlets (txlab.green), which changes that part
(less kernel time, a little more Python): bench/vs_bare.py measures it all.

    .venv/bin/python bench/harness_cost.py             # 100,000 transactions, best of 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from random import Random

from txlab import history, runner
from txlab.scenario import resolve
from txlab.settings import RunSettings

sys.path.insert(0, str(Path(__file__).parent))
from vs_bare import transfer  # noqa: E402  the bare loop's transaction

CHUNK = 1000  # transactions between two drains of the recorded attempts


class FakeCursor:
    """Answers at once: a row for every UPDATE, COMMIT for the COMMIT."""

    statusmessage = "COMMIT"
    rowcount = 1

    def __init__(self, conn):
        self.connection = conn

    def execute(self, sql):
        pass

    def fetchone(self):
        return (2, 1000)

    def fetchall(self):
        return [(1, 1000, 1), (2, 1000, 1)]

    def mogrify(self, sql, args):
        return (sql % tuple(args)).encode()


class FakeConnection:
    closed = 0

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = 1

    def cancel(self):
        pass


def bare(n: int, accounts: int, max_amount: int) -> None:
    cur = FakeConnection().cursor()
    randint = Random(1).randint
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED\n;\n"
    for _ in range(n):
        transfer(cur, randint, begin, accounts, max_amount)


def txlab(n: int, accounts: int, max_amount: int, path: Path | None) -> float:
    """The worker loop (and the writer's share during the load); returns the CPU
    seconds that closing the writer (the JSON lines) took, not counted by `best`."""
    scenario = resolve("bank-transfer")
    settings = RunSettings(scenario="bank-transfer", seed=1, strategy="atomic", workers=1,
                           duration_s=None, transactions=n, check=False, think_ms=0.0,
                           params=(("accounts", str(accounts)), ("max_amount", str(max_amount))))
    params = scenario.params(dict(settings.params))
    run = runner._Run(settings, scenario, "", params, record=path is not None)
    writer = history.Writer(path, {"isolation": "READ COMMITTED"}, []) if path else None
    conn = FakeConnection()
    run.conns[0] = conn
    for _ in range(0, n, CHUNK):  # CHUNK transactions, then the main thread's drain
        run.tickets = itertools.count(n - CHUNK)  # the loop stops after CHUNK more tickets
        run._loop(0, conn)
        run.drain(writer, final=True)
    if not writer:
        return 0.0
    t = time.process_time()
    writer.close()
    return time.process_time() - t


def best(fn, repeat: int, n: int) -> tuple[float, float]:
    """(the least CPU microseconds per transaction of `fn` less what it says it spent
    afterwards, that afterwards in the same measurement), best of `repeat`."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        after = fn() or 0.0
        times.append((time.process_time() - t - after, after))
    during, after = min(times)
    return during / n * 1e6, after / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Prints CPU microseconds per transaction for each side.")
    p.add_argument("-n", type=int, default=100_000, help="transactions per measurement (100000)")
    p.add_argument("--repeat", type=int, default=3, help="measurements per side, best kept (3)")
    p.add_argument("--accounts", type=int, default=1000, help="bank-transfer's accounts knob")
    p.add_argument("--max-amount", type=int, default=100, help="its max_amount knob")
    args = p.parse_args()
    n, a, m = args.n, args.accounts, args.max_amount
    with tempfile.TemporaryDirectory(prefix="txlab-bench-") as tmp:
        path = Path(tmp) / "h.jsonl"
        figures = {
            "bare": best(lambda: bare(n, a, m), args.repeat, n)[0],
            "txlab": best(lambda: txlab(n, a, m, None), args.repeat, n)[0],
        }
        figures["+history"], json_us = best(lambda: txlab(n, a, m, path), args.repeat, n)
    print(f"bank-transfer atomic, {n:,} transactions, fake cursor, one thread, best of"
          f" {args.repeat}: client CPU per transaction")
    for name, us in figures.items():
        extra = "" if name == "bare" else f"   (+{us - figures['bare']:.1f} us over bare)"
        print(f"  {name:9} {us:6.1f} us{extra}")
    print(f"  JSON      {json_us:6.1f} us   (writing the history file after the load)")


if __name__ == "__main__":
    main()
