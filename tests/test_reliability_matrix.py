"""The server goes away in the middle of `txlab matrix`, for real (a server each test
starts for itself, stopped with `pg_ctl stop -m immediate`).

A restart the matrix can wait out (a cell's setup cut short, the server back a
moment later) does not end it: the cell runs again. A server that stays away ends
the matrix as an interrupt does: the rows of the cells that finished are printed,
marked (SERVER LOST, naming the cell that was running), the error goes to standard
error, exit 3. tests/data/slow_scenarios.py makes the setup sleep, so that the
fault lands in the second cell's setup, deterministically."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from txlab import server

SLOW = str(Path(__file__).parent / "data" / "slow_scenarios.py")
IN_SETUP = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'txlab-control' "
            "AND state = 'active' AND query LIKE '%pg_sleep%'")


def _matrix(dsn: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "txlab", "matrix", SLOW, "-i", "rc,ser", "-d", "0.5", "-w", "2",
         "--seed", "1", "--dsn", dsn, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env, COLUMNS="200"))


def _second_cell(proc: subprocess.Popen) -> list[str]:
    """Standard error's lines up to the second cell's progress line (it has started)."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("txlab: [2/2]"):
            return lines
    raise AssertionError("the second cell never started: " + "".join(lines))


def _wait_for(dsn: str, sql: str, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            conn = psycopg2.connect(dsn)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    if cur.fetchall():
                        return
            finally:
                conn.close()
        except psycopg2.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _finish(proc: subprocess.Popen, before: list[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, "".join(before) + err


def test_a_restart_during_a_cells_setup_is_waited_out_and_the_cell_runs_again():
    with server.temporary("txlab-test-mrestart-") as (dsn, pgdata):
        proc = _matrix(dsn, "-p", "setup_ms=1500", "--format", "json")
        before = _second_cell(proc)
        _wait_for(dsn, IN_SETUP, "the second cell's setup")
        assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0
        time.sleep(1)  # down for a moment: the matrix waits for it
        start = server.pg_ctl(pgdata, "-w", "-l", str(pgdata / "restart.log"), "restart")
        assert start.returncode == 0, start.stderr
        code, out, err = _finish(proc, before)
    assert code == 0, err
    import json

    rows = json.loads(out)
    assert [r["isolation"] for r in rows] == ["read-committed", "serializable"]
    assert all(r["holds"] for r in rows)
    assert "Traceback" not in err


def test_a_server_lost_mid_matrix_keeps_the_finished_rows_and_exits_3():
    with server.temporary("txlab-test-mlost-") as (dsn, pgdata):
        proc = _matrix(dsn, "-p", "setup_ms=1500", "--reconnect-timeout-s", "1")
        before = _second_cell(proc)
        _wait_for(dsn, IN_SETUP, "the second cell's setup")
        assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0
        code, out, err = _finish(proc, before)
    assert code == 3, err
    # the first cell's row, marked: the server was lost, during which combination
    cells = [line.split()[:2] for line in out.splitlines() if line.startswith("bump ")]
    assert cells == [["bump", "RC"]], out
    assert "SERVER LOST after 1 of 2 combinations" in out
    assert "slow-commit/bump/SER" in out
    assert "INTERRUPTED" not in out
    assert "txlab: error:" in err and "slow-commit bump SERIALIZABLE" in err
    assert "Traceback" not in err


def test_a_server_lost_mid_matrix_keeps_the_finished_rows_in_json_and_html(tmp_path):
    with server.temporary("txlab-test-mlost-") as (dsn, pgdata):
        page = tmp_path / "m.html"
        proc = _matrix(dsn, "-p", "setup_ms=1500", "--reconnect-timeout-s", "0",
                       "--format", "json", "--html", str(page))
        before = _second_cell(proc)
        _wait_for(dsn, IN_SETUP, "the second cell's setup")
        assert server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop").returncode == 0
        code, out, err = _finish(proc, before)
    assert code == 3, err
    import json

    assert [r["isolation"] for r in json.loads(out)] == ["read-committed"]
    assert "SERVER LOST after 1 of 2 combinations" in page.read_text()
