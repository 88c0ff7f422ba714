"""txlab.testing.run hands an interrupt on to its caller.

Inside a run an interrupt only winds the run down (workers roll back, the history
is finished, the schema dropped); after that the library must not keep the
signal for itself. Ctrl-C in a pytest session stops pytest, SIGTERM from a CI
runner ends the process. It used to come back as a result marked interrupted,
which a test could pass, and pytest went on with the next tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from test_reliability_signals import query, signal_when

from txlab.scenario import Invariant, Scenario, Setup, Strategy, Tx, Verdict
from txlab.testing import run

WORKERS = ("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'txlab-worker-%%'"
           " AND state LIKE 'idle in transaction%%'")


def _own_schemas(dsn: str, pid: int) -> list[str]:
    """The schemas txlab.testing.run named itself in process `pid`."""
    return [r[0] for r in query(dsn, "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                (f"txlab\\_t{pid}\\_%",))]


def _setup(s: Setup) -> None:
    s.execute("CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL)")
    s.execute("INSERT INTO counter VALUES (1, 0)")


FIRED = []


def _bump(tx: Tx) -> None:
    tx.one("UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n")
    if not FIRED:
        FIRED.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, inside the first transaction
    tx.think()


SCENARIO = Scenario(
    name="counter-signals", summary="one counter", teaches="-", description=__doc__, knobs=(),
    setup=_setup, strategies=(Strategy("bump", _bump, "one UPDATE", safe_at=("read-committed",)),),
    invariants=(Invariant("never negative", lambda db: Verdict(
        db.scalar("SELECT n FROM counter") >= 0, 0, 0)),),
)


def test_ctrl_c_in_a_run_reaches_the_caller_after_the_run_wound_down(pg_dsn):
    FIRED.clear()
    with pytest.raises(KeyboardInterrupt):
        run(SCENARIO, pg_dsn, workers=3, transactions=10_000, think_ms=2, seed=1)
    assert FIRED, "the interrupt was sent"
    assert _own_schemas(pg_dsn, os.getpid()) == []  # dropped before the signal went on
    assert not query(pg_dsn, "SELECT 1 FROM pg_stat_activity"
                             " WHERE application_name LIKE 'txlab-worker-%%'")  # none left


def test_a_run_without_an_interrupt_returns_its_result(pg_dsn):
    FIRED.append(True)  # the neighbour: the same run, never interrupted
    try:
        result = run(SCENARIO, pg_dsn, workers=3, transactions=30, seed=1)
    finally:
        FIRED.clear()
    assert result.ok and not result.run.interrupted
    assert result.run.outcomes.committed == 30


INNER = '''
import os, pathlib, sys
from txlab.testing import run

def test_long_run():
    run("bank-transfer", os.environ["INNER_DSN"], strategy="for-update",
        params={"accounts": 2}, think_ms=50, duration_s=120, workers=4)
    pathlib.Path("returned").touch()

def test_next():
    pathlib.Path("next-ran").touch()
'''


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 2), (signal.SIGTERM, -signal.SIGTERM)],
                         ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_a_pytest_session_running_txlab(pg_dsn, tmp_path, sig, code):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER))
    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env, "INNER_DSN": pg_dsn, "PYTHONUNBUFFERED": "1"})
    out, err = signal_when(proc, pg_dsn, WORKERS, "the inner run's workers", sig, timeout=60)
    # pytest stopped (2: interrupted; SIGTERM ends the process), the next test never ran
    assert proc.returncode == code, out + err
    assert not (tmp_path / "returned").exists() and not (tmp_path / "next-ran").exists()
    assert _own_schemas(pg_dsn, proc.pid) == []  # the run's schema was dropped first
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in out + err
