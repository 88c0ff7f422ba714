"""The seat example of docs/testing-your-code.md, measured: how many schedules exist,
how many `interleave` runs by default, how long it takes, and the shrunk schedule.

    .venv/bin/python bench/interleave_seats.py            # TXLAB_TEST_DSN, else a temporary server
    .venv/bin/python bench/interleave_seats.py --repeat 5 --show

For each version and level: `exist` is the number of schedules, from an exhaustive
run (keep_going=True); `run` and `failed` are what a default call (stop after the
level of the first failure) ran and found; times are the medians of --repeat default
calls, wall clock and process CPU (the server's CPU is not included). Never asserted
in tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "examples" / "seat-booking"))

from seats import Base, Seat, reserve_seat, reserve_seat_locked, reserve_seat_retrying  # noqa: E402
from sqlalchemy import text  # noqa: E402

from txlab.testing import interleave, postgres  # noqa: E402
from txlab.testing.plugin import engine_for, fresh_schema, schema_dsn  # noqa: E402

CASES = [(reserve_seat, "read committed"), (reserve_seat, "repeatable read"),
         (reserve_seat, "serializable"), (reserve_seat_locked, "read committed"),
         (reserve_seat_retrying, "serializable")]


def at_most_one_booking(session):
    return session.scalar(text("SELECT count(*) FROM bookings")) <= 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--show", action="store_true", help="print the shrunk schedule(s)")
    args = ap.parse_args()
    with postgres() as dsn, fresh_schema(dsn) as schema:
        engine = engine_for(schema_dsn(dsn, schema))
        Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(Seat.__table__.insert(), {"id": "12A"})
        print(f"{'version':<22} {'isolation':<16} {'exist':>5} {'failing':>7} {'run':>4} "
              f"{'failed':>6} {'verdict':<7} {'wall ms':>8} {'cpu ms':>7}")
        shown = []
        for reserve, level in CASES:
            fns = [partial(reserve, seat_id="12A", customer=c) for c in ("ann", "bob")]
            every = interleave(fns, engine=engine, isolation=level,
                               invariant=at_most_one_booking, keep_going=True, seed=1)
            walls, cpus = [], []
            for i in range(args.repeat):
                w, c = time.perf_counter(), time.process_time()
                r = interleave(fns, engine=engine, isolation=level,
                               invariant=at_most_one_booking, seed=i)
                walls.append(time.perf_counter() - w)
                cpus.append(time.process_time() - c)
            exist = every.schedules if every.exhausted else f">{every.schedules}"
            print(f"{reserve.__name__:<22} {level:<16} {exist:>5} {every.failures:>7} "
                  f"{r.schedules:>4} {r.failures:>6} {'ok' if r.ok else 'FAILED':<7} "
                  f"{statistics.median(walls) * 1000:>8.0f} {statistics.median(cpus) * 1000:>7.0f}")
            if args.show and not r.ok:
                shown.append(r.explain())
        engine.dispose()
    for text_ in shown:
        print()
        print(text_, end="")


if __name__ == "__main__":
    main()
