"""A worker that keeps the workers' thread for itself is named, with its line.

The workers run as greenlets on one thread: a threading.Lock held across a round
trip makes the next worker block the thread, and the run hangs for good. txlab
must say which worker holds the thread and where, while the run hangs (so that
Ctrl-C is not the only clue); a worker that waits for the server, however long,
must not be taken for one."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from test_reliability_signals import spawn, wait_for

SCENARIO = '''
"""shared-lock: workers share a threading.Lock across a round trip (a bug)."""
import threading

from txlab.scenario import Invariant, Scenario, Setup, Strategy, Tx, Verdict

LOCK = threading.Lock()


def setup(s: Setup) -> None:
    s.execute("CREATE TABLE c (id int PRIMARY KEY, n int NOT NULL)")
    s.execute("INSERT INTO c VALUES (1, 0)")


def locked(tx: Tx) -> None:
    with LOCK:
        tx.one("UPDATE c SET n = n + 1 WHERE id = 1 RETURNING n")


def slow(tx: Tx) -> None:
    tx.one("SELECT pg_sleep(6)")


SCENARIO = Scenario(
    name="shared-lock", summary="a threading.Lock", teaches="-", description=__doc__,
    knobs=(), setup=setup,
    strategies=(Strategy("locked", locked, "UPDATE under a lock", safe_at=("read-committed",)),
                Strategy("slow", slow, "one long statement", safe_at=("read-committed",))),
    invariants=(Invariant("counted", lambda db: Verdict(db.scalar("SELECT n FROM c") >= 0, 0, 0)),),
)
'''


def test_a_worker_holding_the_thread_is_named_with_its_line(pg_dsn, schema, tmp_path):
    path = tmp_path / "shared_lock.py"
    path.write_text(textwrap.dedent(SCENARIO))
    err_file = tmp_path / "stderr.txt"
    with open(err_file, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "txlab", "run", str(path), "-s", "locked", "-w", "2",
             "-d", "120", "--dsn", pg_dsn, "--schema", schema],
            stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            wait_for(lambda: "held the workers' thread" in err_file.read_text(), timeout=60,
                     what="the warning")
            proc.send_signal(signal.SIGINT)  # the run hangs for good: Ctrl-C ends it
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = " ".join(err_file.read_text().split())
    line = textwrap.dedent(SCENARIO).splitlines().index("    with LOCK:") + 1
    assert proc.returncode == 130 and "INTERRUPTED" in out
    assert "txlab: warning: worker " in text
    assert f"{path.name}:{line}" in text  # `with LOCK:`, where the second worker waits
    assert "TXLAB_WORKER_THREADS=1" in text


def test_a_worker_waiting_for_the_server_is_not_taken_for_one(pg_dsn, schema, tmp_path):
    path = tmp_path / "shared_lock.py"
    path.write_text(textwrap.dedent(SCENARIO))
    proc = spawn("run", str(path), "-s", "slow", "-w", "2", "-n", "2", "--dsn", pg_dsn,
                 "--schema", schema)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "held the workers' thread" not in err  # 6 s in pg_sleep: the hub kept turning
