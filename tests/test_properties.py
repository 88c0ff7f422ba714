"""Property-based tests through the public txlab.testing API, over every built-in
scenario: the strategies declared safe at a level keep every invariant there, and
every strategy keeps them at SERIALIZABLE with retries, for generated knobs and seeds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab.scenario import builtin_dir, discover
from txlab.testing import knob_values, run

BUILTIN = {name: s for name, s in discover(env={}).items() if s.path.parent == builtin_dir()}
PAIRS = [(name, strat.name) for name, s in sorted(BUILTIN.items()) for strat in s.strategies]
SAFE_RC = [(n, s) for n, s in PAIRS
           if "read-committed" in BUILTIN[n].strategy(s).safe_at]

RUNS = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


def _assert_holds(result):
    assert result.ok, result.explain()
    # an anomaly the scenario can see directly must not appear where invariants are promised
    assert "lost update" not in result.anomalies, result.explain()


@pytest.mark.parametrize("scenario,strategy", SAFE_RC)
def test_safe_strategies_keep_invariants_at_read_committed(pg_dsn, scenario, strategy):
    @RUNS
    @given(params=knob_values(scenario), seed=st.integers(0, 2**31 - 1), workers=st.integers(2, 8))
    def prop(params, seed, workers):
        _assert_holds(run(scenario, pg_dsn, strategy=strategy, isolation="read-committed",
                          workers=workers, transactions=40, seed=seed, params=params, think_ms=1,
                          deadlock_timeout_ms=100))

    prop()


@pytest.mark.parametrize("scenario,strategy", PAIRS)
def test_every_strategy_keeps_invariants_at_serializable_with_retries(pg_dsn, scenario, strategy):
    @RUNS
    @given(params=knob_values(scenario), seed=st.integers(0, 2**31 - 1), workers=st.integers(2, 8))
    def prop(params, seed, workers):
        _assert_holds(run(scenario, pg_dsn, strategy=strategy, isolation="serializable",
                          workers=workers, transactions=40, seed=seed, params=params, retries=50,
                          think_ms=1, deadlock_timeout_ms=100))

    prop()


def test_builtin_catalog_is_discovered():
    assert "bank-transfer" in BUILTIN
    assert all(BUILTIN[n].strategy(s).safe_at for n, s in PAIRS if n == "bank-transfer")
