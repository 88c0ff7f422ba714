"""The scenario API: run a txlab scenario concurrently and check its history.

    from txlab.testing import postgres, run, knob_values

    with postgres() as dsn:                      # TXLAB_TEST_DSN, or an embedded server
        result = run("bank-transfer", dsn, strategy="atomic", isolation="read-committed",
                     workers=4, transactions=100, seed=1)
        assert result.ok, result.explain()

`run` takes a scenario name, a path to a scenario file, or a `Scenario` object
built in the test itself (the same contract as scenario files: see
docs/writing-scenarios.md). For application code that owns its transactions, see
`txlab.testing.stress` and `txlab.testing.interleave` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from txlab import db, runner, server, signals
from txlab.scenario import Knob, Scenario, resolve
from txlab.settings import RunSettings

_schemas = itertools.count()


@contextlib.contextmanager
def postgres(dsn: str | None = None) -> Iterator[str]:
    """A PostgreSQL to test against: `dsn`, else TXLAB_TEST_DSN, else a temporary embedded server."""
    dsn = dsn or os.environ.get("TXLAB_TEST_DSN")
    if dsn:
        yield dsn
        return
    with server.temporary("txlab-testing-pg-") as (url, _):
        yield url


@dataclass
class Result:
    """What one concurrent run produced; assert on it."""

    run: runner.RunResult

    @property
    def ok(self) -> bool:
        """Every invariant held and no anomaly the isolation level forbids occurred."""
        return not self.run.failed_verdict

    @property
    def invariants(self) -> dict[str, bool]:
        return {i.name: i.holds for i in self.run.invariants}

    @property
    def anomalies(self) -> dict[str, int]:
        check = self.run.check
        return {k: a["count"] for k, a in check.anomalies.items()} if check else {}

    @property
    def outcomes(self):
        return self.run.outcomes

    @property
    def history(self):
        """The run's `History`: `.attempts` loads every attempt into a list;
        `.iter_attempts()` streams them from the history file."""
        return self.run.history

    def explain(self) -> str:
        """The full text report, for assertion messages."""
        from txlab.report import render

        return render(self.run, "table")


def run(
    scenario: str | Path | Scenario,
    dsn: str,
    *,
    strategy: str | None = None,
    isolation: str = "read-committed",
    workers: int = 4,
    transactions: int | None = 100,
    duration_s: float | None = None,
    seed: int | None = None,
    think_ms: float = 0.0,
    retries: int = 0,
    params: Mapping[str, Any] | None = None,
    schema: str | None = None,
    deadlock_timeout_ms: int | None = None,
    check: bool = True,
) -> Result:
    """Run a scenario concurrently and return its result (invariants, anomalies, history).

    Ctrl-C, SIGTERM or SIGHUP during the run stops it as `txlab run` stops (the
    workers' transactions roll back, the schema is dropped), and then the signal
    goes on to the caller: KeyboardInterrupt for Ctrl-C, so that pytest stops, and
    for SIGTERM or SIGHUP whatever the process does with them (by default it ends).
    An interrupted run never comes back as a result that could pass a test."""
    found = scenario if isinstance(scenario, Scenario) else resolve(str(scenario))
    if duration_s is not None:
        transactions = None
    settings = RunSettings(
        scenario=found.name,
        seed=seed if seed is not None else secrets.randbelow(2**31),
        strategy=strategy,
        isolation=db.parse_isolation(isolation),
        workers=workers,
        duration_s=duration_s,
        transactions=transactions,
        think_ms=think_ms,
        retries=retries,
        params=tuple((k, str(v)) for k, v in (params or {}).items()),
        schema=schema or f"txlab_t{os.getpid()}_{next(_schemas)}",
        deadlock_timeout_ms=deadlock_timeout_ms,
        check=check,
        keep_history=True,  # Result.history: streamed to a temporary file, read back on demand
    )
    schema_name = settings.schema
    try:
        with signals.deferred() as interrupts:
            result = runner.run(settings, found, dsn, interrupts=interrupts,
                                notice=lambda m: warnings.warn(m, RuntimeWarning, stacklevel=1),
                                command="testing.run")
    finally:
        if schema is None:  # a schema we named ourselves: leave nothing behind
            conn = db.connect(dsn)
            try:
                db.drop_schema(conn, schema_name)
            finally:
                conn.close()
    interrupts.deliver()  # Ctrl-C: KeyboardInterrupt here; SIGTERM: the process ends
    return Result(result)


def knob_values(scenario: str | Scenario, **fixed: Any):
    """A hypothesis strategy of `params` dicts for a scenario, drawn within each knob's
    declared range (choices, min, max; unbounded ints stay small, near the default)."""
    from hypothesis import strategies as st

    found = scenario if isinstance(scenario, Scenario) else resolve(str(scenario))
    parts = {}
    for knob in found.knobs:
        if knob.name in fixed:
            parts[knob.name] = st.just(fixed[knob.name])
        else:
            parts[knob.name] = _knob_strategy(knob, st)
    return st.fixed_dictionaries(parts)


def _knob_strategy(knob: Knob, st):
    if knob.choices:
        return st.sampled_from(knob.choices)
    d = knob.default
    if isinstance(d, bool):
        return st.booleans()
    if isinstance(d, int):
        lo = int(knob.min) if knob.min is not None else max(0, d // 2)
        hi = int(knob.max) if knob.max is not None else max(lo, d * 2)
        hi = min(hi, max(lo, d * 2))
        return st.integers(lo, hi)
    if isinstance(d, float):
        lo = knob.min if knob.min is not None else 0.0
        hi = knob.max if knob.max is not None else max(lo, d * 2)
        return st.floats(lo, hi, allow_nan=False)
    return st.just(d)
