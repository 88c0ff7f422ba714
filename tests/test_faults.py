"""Faults injected for real: a worker's backend terminated, the server crashed
(a backend killed with SIGKILL, `pg_ctl stop -m immediate`) and back a second
later, the server gone for good, and Ctrl-C (SIGINT to a real txlab process)
during the invariant checks and during the history check.

The crashes happen on a server each test starts for itself, never on the
session's shared one. tests/data/slow_scenarios.py makes every COMMIT (and,
when asked, the first invariant) sleep, so the fault lands where the test says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from txlab import server
from txlab.testing import run

SLOW = str(Path(__file__).parent / "data" / "slow_scenarios.py")


def _txlab_with_fault(args: list[str], fault) -> tuple[int, dict, str]:
    """Start `txlab run ... --format json`, call fault(proc) while it runs, wait for its
    end: (exit code, the JSON report, stderr)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "txlab", "run", *args, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        fault(proc)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out, err
    return proc.returncode, json.loads(out), err


def _wait_for(dsn: str, sql: str, what: str, timeout: float = 60.0) -> list:
    """Poll pg_stat_activity (or any query) until it returns a row; the rows."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            conn = psycopg2.connect(dsn)
            try:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(sql)
                    rows = cur.fetchall()
            finally:
                conn.close()
            if rows:
                return rows
        except psycopg2.OperationalError:  # the server is restarting
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


IN_COMMIT = ("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'txlab-worker-%' "
             "AND state = 'active' AND query LIKE '%COMMIT'")


def _records(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")][2:]


def test_a_terminated_backend_is_recorded_and_the_run_goes_on(pg_dsn):
    done: list = []
    runner = threading.Thread(target=lambda: done.append(run(
        SLOW, pg_dsn, workers=2, duration_s=4, transactions=None, seed=3,
        params={"commit_ms": 150})))
    runner.start()
    (pid,) = _wait_for(pg_dsn, IN_COMMIT, "a worker in COMMIT")[0]
    conn = psycopg2.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()
    runner.join(60)
    result = done[0]
    attempts = result.history.attempts
    lost = [a for a in attempts if a.cause == "connection-lost"]
    assert [a.outcome for a in lost] == ["unknown"]  # it died in COMMIT: maybe committed
    after = [a for a in attempts if a.worker == lost[0].worker and a.txn > lost[0].txn]
    assert any(a.outcome == "committed" for a in after)  # it reconnected and went on
    assert result.outcomes.unknown == 1 and result.ok and result.run.failure is None


def test_a_crashed_server_back_a_second_later_keeps_the_run(tmp_path):
    with server.temporary("txlab-test-crash-") as (dsn, pgdata):
        history = tmp_path / "h.jsonl"

        def crash_twice(proc):
            # 1. a backend killed with SIGKILL: the server restarts every session
            (pid,) = _wait_for(dsn, IN_COMMIT, "a worker in COMMIT")[0]
            os.kill(pid, signal.SIGKILL)
            # 2. once the workers are back: an immediate shutdown, restarted a second later
            _wait_for(dsn, IN_COMMIT, "the workers back in COMMIT after the crash")
            assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0
            time.sleep(1)
            restart = server.pg_ctl(pgdata, "-w", "-l", str(pgdata / "restart.log"), "restart")
            assert restart.returncode == 0, restart.stderr

        code, report, err = _txlab_with_fault(
            [SLOW, "-p", "commit_ms=200", "-w", "3", "-d", "12", "--seed", "1", "--history",
             str(history), "--dsn", dsn], crash_twice)
    assert code == 0, err
    assert report["verdict"] == "HOLDS" and report["failure"] is None
    assert all(i["holds"] for i in report["invariants"]) and len(report["invariants"]) == 2
    records = _records(history)
    outcomes = [r["outcome"] for r in records]
    assert outcomes.count("unknown") >= 2  # one per crash at least: COMMITs were in flight
    assert report["outcomes"]["unknown"] == outcomes.count("unknown")
    last_unknown = max(i for i, o in enumerate(outcomes) if o == "unknown")
    assert "committed" in outcomes[last_unknown + 1:]  # it went on after the restart
    assert all(r["cause"] == "connection-lost" for r in records if r["outcome"] == "unknown")


def test_a_server_that_stays_down_ends_the_run_with_exit_3_report_and_history(tmp_path):
    with server.temporary("txlab-test-down-") as (dsn, pgdata):
        history = tmp_path / "h.jsonl"

        def stop_for_good(proc):
            _wait_for(dsn, IN_COMMIT, "a worker in COMMIT")
            assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0

        code, report, err = _txlab_with_fault(
            [SLOW, "-p", "commit_ms=300", "-w", "3", "-d", "60", "--reconnect-timeout-s", "1",
             "--history", str(history), "--dsn", dsn], stop_for_good)
    assert code == 3, err
    assert "could not reconnect within 1 s" in err
    assert report["verdict"] == "INCOMPLETE" and report["failure"]
    assert report["invariants"] == [] and len(report["invariants_unchecked"]) == 2
    assert any("SERVER LOST" in n for n in report["notes"])
    records = _records(history)
    assert "unknown" in [r["outcome"] for r in records]
    o = report["outcomes"]
    assert len(records) == o["committed"] + o["unknown"] + sum(o["aborted"].values())


# ---------------------------------------------------------------- Ctrl-C after the load


def test_ctrl_c_during_the_invariant_checks_keeps_report_and_history(pg_dsn, schema, tmp_path):
    history = tmp_path / "h.jsonl"

    def ctrl_c_in_the_check(proc):
        _wait_for(pg_dsn, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                          "'txlab-control' AND state = 'active' AND query LIKE "
                          "'%pg_sleep(20000 /%'", "the invariant check")
        proc.send_signal(signal.SIGINT)

    code, report, err = _txlab_with_fault(
        [SLOW, "-p", "check_ms=20000", "-w", "2", "-n", "30", "--history", str(history),
         "--dsn", pg_dsn, "--schema", schema], ctrl_c_in_the_check)
    assert code == 130, err
    assert report["interrupted"] is True and report["verdict"] == "INCOMPLETE"
    # the load had ended: the numbers are whole, only the checks were cut short
    assert report["load_whole"] is True and report["outcomes"]["committed"] == 30
    assert "its load had run to its end" in report["story"][0]
    assert not any("stopped early" in n for n in report["notes"])
    assert report["summary"][0].startswith("INTERRUPTED: checks cut short.")
    assert "counters agree with the log" in report["invariants_unchecked"]
    assert report["check"] is None
    assert any("anomaly check did not run (interrupted)" in n for n in report["notes"])
    assert len(_records(history)) == 30  # every attempt is in the history


DRIVER = """
import os, signal, sys, time
import txlab.checker
def interrupted_check(*args, **kwargs):  # Ctrl-C arrives while the checker works
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(60)
    raise AssertionError("SIGINT did not interrupt the check")
txlab.checker.check = interrupted_check
from txlab.cli import main
sys.argv = ["txlab"] + sys.argv[1:]
main()
"""


def test_ctrl_c_during_the_history_check_keeps_report_and_history(pg_dsn, schema, tmp_path):
    history = tmp_path / "h.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "run", "bank-transfer", "-n", "50", "--history",
         str(history), "--format", "json", "--dsn", pg_dsn, "--schema", schema],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    report = json.loads(done.stdout)
    assert report["interrupted"] is True and report["check"] is None
    assert len(report["invariants"]) == 3 and report["invariants_unchecked"] == []
    assert any("anomaly check did not run (interrupted)" in n for n in report["notes"])
    assert len(_records(history)) == 50


@pytest.mark.parametrize("option", ["--progress-interval-s", "--progress-interval"])
def test_progress_interval_prints_lines_with_causes_and_eta(txlab, option):
    # --progress-interval (pgbench's -P in words) is a hidden alias of --progress-interval-s
    r = txlab("run", "bank-transfer", "-s", "naive", "-i", "repeatable-read", "-p", "accounts=2",
              "--think-ms", "5", "-d", "1.2", option, "0.3", "--no-check")
    lines = [x for x in r.stderr.splitlines() if x.startswith("progress: ")]
    assert r.exit_code in (0, 1) and len(lines) >= 2
    assert all("committed" in x and "ETA" in x and "\r" not in x for x in lines)
    assert any("40001-concurrent-update" in x for x in lines)  # aborts by cause


# ---------------------------------------------------------------- the schema's lock

LOCK_SESSION = ("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'txlab run (pid "
                "{pid} %'")


def test_a_lost_schema_lock_is_taken_again_so_a_second_run_is_still_refused(pg_dsn, schema):
    """The lock's own session terminated (as a server restart does to every session):
    the run takes the lock again, so a second txlab on its schema is refused instead
    of dropping the schema under it, and the first run ends clean."""
    def terminate_the_lock_then_start_another(proc):
        (old,) = _wait_for(pg_dsn, LOCK_SESSION.format(pid=proc.pid), "the run's lock")[0]
        _wait_for(pg_dsn, IN_COMMIT, "the workers in COMMIT")
        conn = psycopg2.connect(pg_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (old,))
        conn.close()
        _wait_for(pg_dsn, LOCK_SESSION.format(pid=proc.pid) + f" AND pid <> {old}",
                  "the lock taken again")
        second = subprocess.run(
            [sys.executable, "-m", "txlab", "run", "bank-transfer", "-n", "5", "--dsn", pg_dsn,
             "--schema", schema], capture_output=True, text=True, timeout=120)
        assert second.returncode == 3 and "is in use by txlab run" in second.stderr, \
            second.stderr

    code, report, err = _txlab_with_fault(
        [SLOW, "-p", "commit_ms=100", "-w", "2", "-d", "4", "--dsn", pg_dsn, "--schema", schema],
        terminate_the_lock_then_start_another)
    assert code == 0, err
    assert report["verdict"] == "HOLDS" and report["failure"] is None
    assert not report["schema_taken"] and len(report["invariants"]) == 2


def test_a_schema_taken_by_another_while_the_lock_was_lost_stops_the_run_unjudged(
        pg_dsn, schema, tmp_path):
    """Another session queued on the schema's lock gets it the moment the run's lock
    session dies: the run stops, judges nothing (no false 'harness bug'), exit 3."""
    from txlab import db

    history = tmp_path / "h.jsonl"
    other = psycopg2.connect(pg_dsn)
    other.autocommit = True

    def take_the_schema(proc):
        (old,) = _wait_for(pg_dsn, LOCK_SESSION.format(pid=proc.pid), "the run's lock")[0]
        _wait_for(pg_dsn, IN_COMMIT, "the workers in COMMIT")
        waiter = threading.Thread(target=lambda: other.cursor().execute(
            "SELECT pg_advisory_lock(%s)", (db._lock_key(schema),)))
        waiter.start()  # queued behind the run's lock
        _wait_for(pg_dsn, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                  "the other session queued on the lock")
        conn = psycopg2.connect(pg_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (old,))
        conn.close()
        waiter.join(30)

    try:
        code, report, err = _txlab_with_fault(
            [SLOW, "-p", "commit_ms=100", "-w", "2", "-d", "30", "--history", str(history),
             "--dsn", pg_dsn, "--schema", schema], take_the_schema)
    finally:
        other.close()
    assert code == 3, err
    assert "another txlab took the schema meanwhile" in err
    assert report["schema_taken"] is True and report["verdict"] == "INCOMPLETE"
    assert report["invariants"] == [] and len(report["invariants_unchecked"]) == 2
    assert report["check"] is None
    assert any(n.startswith("SCHEMA TAKEN:") for n in report["notes"])
    story = " ".join(report["story"])
    assert "Another txlab took this run's schema" in story
    assert "bug" not in story and "lucky" not in story, story
    records = _records(history)
    o = report["outcomes"]
    assert len(records) == o["committed"] + o["unknown"] + sum(o["aborted"].values())


def test_a_server_lost_during_setup_says_so(pg_dsn, schema):
    # it said "database error: cursor already closed" (a ROLLBACK on the dead connection)
    def terminate_the_setup(proc):
        (pid,) = _wait_for(pg_dsn, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                   "'txlab-control' AND state = 'active' AND query ILIKE "
                                   "'%INSERT%'", "the setup")[0]
        conn = psycopg2.connect(pg_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        conn.close()

    proc = subprocess.Popen(
        [sys.executable, "-m", "txlab", "run", "bank-transfer", "-p", "accounts=2000000",
         "--allow-large-params", "-n", "1", "--dsn", pg_dsn, "--schema", schema],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        terminate_the_setup(proc)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    assert "lost the connection to the server during the setup" in err
    assert "cursor already closed" not in err and "Traceback" not in err


def test_ctrl_c_while_the_server_is_down_still_checks_the_partial_history(tmp_path):
    # the invariants cannot be checked (no server), but the history is on disk: the
    # anomaly check must still run (it was skipped as "interrupted")
    with server.temporary("txlab-test-down-int-") as (dsn, pgdata):
        history = tmp_path / "h.jsonl"

        def stop_then_ctrl_c(proc):
            _wait_for(dsn, IN_COMMIT, "a worker in COMMIT")
            assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0
            time.sleep(0.5)  # the workers are reconnecting (for up to 60 s)
            proc.send_signal(signal.SIGINT)

        code, report, err = _txlab_with_fault(
            [SLOW, "-p", "commit_ms=100", "-w", "2", "-d", "60", "--reconnect-timeout-s", "60",
             "--history", str(history), "--dsn", dsn], stop_then_ctrl_c)
    assert code == 130, err
    assert report["interrupted"] is True and len(report["invariants_unchecked"]) == 2
    assert report["check"] is not None, report["notes"]
    # valid, or unknown when no transaction committed before the stop (nothing to search)
    check = report["check"]
    assert check["verdict"] == ("unknown" if check["empty_graph"] else "valid"), check
    assert len(_records(history)) > 0
    # the report says why the invariants went unchecked: not only "interrupted"
    assert report["checks_unreachable"] is True
    assert any("invariants not checked (interrupted while the server could not be reached)"
               in n for n in report["notes"]), report["notes"]
    assert "interrupted while the server could not be reached" in " ".join(report["story"])


def test_a_check_backend_ended_during_the_invariant_checks_is_checked_again(pg_dsn, schema):
    # The control connection's backend is terminated while the first invariant runs
    # (as a server restart would end it): txlab reconnects within --reconnect-timeout-s
    # and checks what is left; it used to stop with SERVER LOST, exit 3.
    def end_the_check(proc):
        rows = _wait_for(pg_dsn, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                 "'txlab-control' AND state = 'active' AND query LIKE "
                                 "'%pg_sleep(1500 /%'", "the invariant check")
        conn = psycopg2.connect(pg_dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
        finally:
            conn.close()

    code, report, err = _txlab_with_fault(
        [SLOW, "-p", "check_ms=1500", "-w", "2", "-n", "20", "--dsn", pg_dsn, "--schema",
         schema], end_the_check)
    assert code == 0, err
    assert report["verdict"] == "HOLDS" and report["failure"] is None
    assert [i["name"] for i in report["invariants"]] == ["counters agree with the log",
                                                         "no negative counter"]
    assert all(i["holds"] for i in report["invariants"]) and not report["invariants_unchecked"]


@pytest.mark.parametrize("check", [[], ["--no-check"]])
def test_a_history_removed_during_the_run_keeps_the_report_and_says_so(pg_dsn, schema, tmp_path,
                                                                       check):
    # `rm -rf` of the history's folder during the load: the report was lost (an internal
    # error from the check reading a file that was gone), or with --no-check it said
    # "attempts written to" a file nobody could read.
    folder = tmp_path / "od"
    folder.mkdir()
    history = folder / "h.jsonl"

    def remove_it(proc):
        _wait_for(pg_dsn, IN_COMMIT, "a worker in its COMMIT")
        import shutil

        shutil.rmtree(folder)

    code, report, err = _txlab_with_fault(
        [SLOW, "-p", "commit_ms=100", "-w", "2", "-n", "16", "--history", str(history),
         "--dsn", pg_dsn, "--schema", schema, *check], remove_it)
    assert code == 3, err
    assert "removed or replaced during the run" in report["history_error"]
    assert "keeps only its run and init records" not in report["history_error"]
    assert all(i["holds"] for i in report["invariants"])  # the final state is still judged
    assert "txlab: history:" not in err and "internal error" not in err, err  # no claim
    assert not folder.exists()
