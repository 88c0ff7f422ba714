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

import psycopg2
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



PROBE = "pg_isolation_test_session_is_blocked"  # the demo's lock-wait probe


@pytest.fixture
def demo_interrupted(pg_dsn, monkeypatch):
    """`txlab demo ARGS...` in-process, with SIGINT sent right after the demo's control
    connection has sent its first lock-wait probe (sent only while a step is still
    running, at a level where it waits), before its results are read: the narrow
    window between PQsendQuery and reading that a real Ctrl-C hits now and then.
    Returns the CLI's result."""
    from click.testing import CliRunner

    from txlab.cli import cli
    from txlab.interleave import pq

    real_send = pq.Connection.send
    fired = []

    def send(self, sql):
        real_send(self, sql)
        if not fired and PROBE in sql:
            fired.append(sql)
            os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt here, the query in flight

    monkeypatch.setattr(pq.Connection, "send", send)
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def invoke(*args):
        result = CliRunner().invoke(cli, ["demo", *args, "--dsn", pg_dsn, "--schema",
                                          "txlab_interrupt_demo"], catch_exceptions=False)
        assert fired, "the probe was sent"
        return result

    return invoke


def _demo_connections(dsn: str) -> int:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name LIKE 'txlab-demo%%'")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_an_interrupt_while_a_demo_statement_is_in_flight_exits_130(pg_dsn, demo_interrupted):
    # The clean-up must not send its own query on the busy control connection
    # (it did: "failed to send query: another command is already in progress", exit 3).
    result = demo_interrupted("--all")
    assert result.exit_code == 130, result.stderr
    assert result.stderr == "txlab: interrupted\n"
    # nothing of the demo is left behind: its sessions and control connection are gone
    for _ in range(200):
        if _demo_connections(pg_dsn) == 0:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the demo's connections outlived the command")


def test_a_failed_clean_up_after_an_interrupt_is_a_warning_and_exit_130(demo_interrupted,
                                                                         monkeypatch):
    """The interrupt is what ended the command: an error while stopping (here the
    demo's clean-up, made to fail) is said as a warning, and the exit is still 130."""
    from txlab.errors import DatabaseError
    from txlab.interleave import driver

    real_abandon = driver.Driver._abandon

    def abandon(self):
        real_abandon(self)
        raise DatabaseError("the teardown failed")

    monkeypatch.setattr(driver.Driver, "_abandon", abandon)
    result = demo_interrupted("g0", "-i", "rc")  # at READ COMMITTED a step of g0 waits
    assert result.exit_code == 130, result.stderr
    assert result.stderr == ("txlab: warning: while stopping: the teardown failed\n"
                             "txlab: interrupted\n")


@pytest.fixture
def matrix_interrupted(pg_dsn, schema, monkeypatch):
    """`txlab matrix` over 4 cells (naive, atomic x RC, SER), with SIGINT sent from the
    first transaction of the third cell (atomic at RC): two cells have finished, the
    third is running. Returns a function running the CLI with extra arguments."""
    from click.testing import CliRunner

    from txlab import matrix
    from txlab.cli import cli

    real_run = matrix.runner.run
    cells = []

    def run(settings, scenario, dsn, *args, **kwargs):
        cells.append((settings.strategy, settings.isolation.key))
        if len(cells) == 3:
            strategy = scenario.strategy(settings.strategy)
            fired = []

            def body(tx):
                if not fired:
                    fired.append(True)
                    os.kill(os.getpid(), signal.SIGINT)
                strategy.run(tx)

            scenario = dataclasses.replace(scenario, strategies=tuple(
                dataclasses.replace(s, run=body) if s is strategy else s
                for s in scenario.strategies))
        return real_run(settings, scenario, dsn, *args, **kwargs)

    monkeypatch.setattr(matrix.runner, "run", run)
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def invoke(*args):
        cells.clear()
        result = CliRunner().invoke(cli, [
            "matrix", "bank-transfer", "-s", "naive,atomic", "-i", "rc,ser", "-d", "0.5",
            "--think-ms", "5", "--dsn", pg_dsn, "--schema", schema, *args],
            catch_exceptions=False)
        assert cells == [("naive", "read-committed"), ("naive", "serializable"),
                         ("atomic", "read-committed")]  # and no cell after the interrupt
        return result

    return invoke


def test_an_interrupted_matrix_prints_the_rows_that_finished(matrix_interrupted, tmp_path):
    # `txlab matrix --help` says so: exit 130, the rows of the combinations that
    # finished still printed, marked INTERRUPTED.
    page = tmp_path / "matrix.html"
    result = matrix_interrupted("--html", str(page))
    assert result.exit_code == 130, result.stderr
    assert result.stderr.endswith("txlab: interrupted after 2 of 4 combinations\n")
    out = result.stdout
    assert "INTERRUPTED after 2 of 4 combinations" in out
    assert "INTERRUPTED: partial matrix. 2 combinations:" in out
    assert "naive" in out and "atomic" not in out  # the cell cut short is left out
    assert "INTERRUPTED after 2 of 4 combinations" in page.read_text()


def test_an_interrupted_matrix_in_json_is_the_rows_that_finished(matrix_interrupted):
    result = matrix_interrupted("--format", "json")
    assert result.exit_code == 130, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["strategy"], r["isolation"]) for r in rows] == [
        ("naive", "read-committed"), ("naive", "serializable")]
