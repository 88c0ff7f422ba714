"""An interrupt at any point after the setup gives the partial report.

SIGINT is sent to this very process from a chosen point of a run (a worker's first
transaction, an invariant check, the anomaly check, the writing of the history), so
it lands exactly there, whatever the machine's load: the run must come back with a
result marked interrupted and a complete history, never a KeyboardInterrupt from
inside the run. txlab.testing.run then hands the signal on to its caller; here the
caller notes it (signals.deferred), as the CLI does, to look at the result."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import pytest

from txlab import history, report, runner, signals
from txlab.scenario import Check, Invariant, Scenario, Setup, Strategy, Tx, Verdict
from txlab.testing import run

FIRE: dict[str, bool] = {}  # point -> fire SIGINT when the run gets there (once)
_lock = threading.Lock()


def _fire(point: str) -> None:
    with _lock:
        if FIRE.get(point):
            FIRE[point] = False
            os.kill(os.getpid(), signal.SIGINT)


def _setup(s: Setup) -> None:
    s.execute("CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL, version int NOT NULL)")
    s.execute("INSERT INTO counter SELECT g, 0, 1 FROM generate_series(1, 4) g")
    for i in range(1, 5):
        s.initial(f"counter:{i}", 1, 0)


def _bump(tx: Tx) -> None:
    _fire("load")
    c = tx.rng.randint(1, 4)
    version, n = tx.one("UPDATE counter SET n = n + 1, version = version + 1 WHERE id = %s"
                        " RETURNING version, n", (c,))
    tx.write(f"counter:{c}", version, n)
    tx.think()


def _first(db: Check) -> Verdict:
    _fire("invariant")
    db.scalar("SELECT pg_sleep(5)")  # cancelled by the interrupt
    return Verdict(True, 0, 0)


def _second(db: Check) -> Verdict:
    return Verdict(db.scalar("SELECT count(*) FROM counter WHERE n < 0") == 0, 0, 0)


SCENARIO = Scenario(
    name="interrupt-points", summary="counters, and SIGINT where the test says",
    teaches="-", description=__doc__, knobs=(), setup=_setup,
    strategies=(Strategy("bump", _bump, "one UPDATE", safe_at=("read-committed",)),),
    invariants=(Invariant("first", _first), Invariant("second", _second)),
)


@pytest.fixture
def fire(monkeypatch):
    """Arm one point; the anomaly check and the history's writing get theirs by wrapping."""
    real_check, real_close = runner.checker.check, history.Writer.close

    def check(*args, **kwargs):
        _fire("checker")
        return real_check(*args, **kwargs)

    def close(self):
        _fire("history")
        return real_close(self)

    monkeypatch.setattr(runner.checker, "check", check)
    monkeypatch.setattr(history.Writer, "close", close)
    yield lambda point: FIRE.update({point: True})
    FIRE.clear()


@pytest.mark.parametrize("point", ["load", "invariant", "checker", "history"])
def test_an_interrupt_anywhere_after_setup_returns_the_partial_result(pg_dsn, fire, point):
    fire(point)
    with signals.deferred() as caller:
        result = run(SCENARIO, pg_dsn, workers=3, transactions=300 if point == "load" else 30,
                     think_ms=5 if point == "load" else 0, seed=3)
    assert not FIRE[point], "the point was reached"
    assert caller.count == 1 and caller.first == signal.SIGINT  # handed on, once
    r = result.run
    assert r.interrupted
    text = report.render(r, "text", None)
    assert "INTERRUPTED" in text
    # the history is complete: every attempt counted is written, in order, numbered
    lines = [json.loads(line) for line in open(r.history.path, encoding="utf-8")]
    txns = lines[2:]
    assert len(txns) == r.history.count
    finished = (r.outcomes.committed + r.outcomes.declined + r.outcomes.unknown
                + sum(r.outcomes.aborted.values()))
    assert len(txns) == finished
    assert [t["id"] for t in txns] == list(range(1, len(txns) + 1))
    assert [t["invoke_ns"] for t in txns] == sorted(t["invoke_ns"] for t in txns)
    if point == "load":
        assert r.outcomes.committed < 300  # it stopped early
    if point == "invariant":
        assert r.invariants_unchecked == ["first", "second"] and not r.invariants
        assert r.check_skipped == "interrupted"
    if point == "checker":
        assert [i.name for i in r.invariants] == ["first", "second"]
        assert r.check is None and r.check_skipped == "interrupted"
    if point == "history":
        assert r.outcomes.committed == 30 and r.check is not None  # the run had ended


def test_an_interrupt_during_setup_raises(pg_dsn, monkeypatch):
    """Before the load there is nothing to report: the setup is cancelled and the
    interrupt comes out as KeyboardInterrupt (the CLI prints `interrupted`, exit 130)."""
    real = runner._setup

    def setup(*args):
        os.kill(os.getpid(), signal.SIGINT)
        args[0].cursor().execute("SELECT pg_sleep(5)")  # cancelled
        return real(*args)

    monkeypatch.setattr(runner, "_setup", setup)
    with pytest.raises(KeyboardInterrupt):
        run(SCENARIO, pg_dsn, workers=2, transactions=10)


def _sleep_long(tx: Tx) -> None:
    tx.one("UPDATE counter SET n = n + 1, version = version + 1 WHERE id = 1"
           " RETURNING version, n")
    _fire("load")
    time.sleep(600)  # a scenario that pauses with time.sleep, not tx.think


def test_an_interrupt_ends_a_scenarios_time_sleep(pg_dsn, fire):
    # Under the greenlet runner time.sleep sleeps on the hub; Ctrl-C must end it as it
    # ends tx.think, so that every worker rolls back its transaction and records it.
    fire("load")
    sleepy = dataclasses.replace(SCENARIO, strategies=(
        Strategy("sleep", _sleep_long, "UPDATE, then time.sleep", safe_at=("read-committed",)),))
    with signals.deferred():
        result = run(sleepy, pg_dsn, workers=2, transactions=10, seed=3)
    r = result.run
    assert r.interrupted and r.outcomes.committed == 0
    assert r.outcomes.aborted == {"interrupted": 2}  # both workers, cut short
    assert len(result.history.attempts) == 2
