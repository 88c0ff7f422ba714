"""Signals sent to a real txlab process (issue 13, items 1, 5 and 11).

SIGTERM and SIGHUP take Ctrl-C's path: partial report, history, the temporary
server stopped and its folder removed, exit 130. An interrupt during setup cancels
the running statement. A txlab killed with SIGKILL leaves its server behind, and
the next txlab that starts a temporary server reaps it, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from txlab import owner, server, signals


def spawn(*args: str, **env: str) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    return subprocess.Popen([sys.executable, "-m", "txlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**base, "PYTHONUNBUFFERED": "1", **env})


def wait_for(probe, timeout: float = 60.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def query(dsn: str, sql: str, args=()) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def temporary_server(folder: Path) -> tuple[Path, str]:
    """The data directory and URL of the temporary server a txlab started in `folder`."""

    def ready():
        for pgdata in folder.glob("txlab-pg-*/pgdata"):
            url = server.url_for(pgdata)
            if url and server.postmaster_pid(pgdata):
                try:
                    query(url, "SELECT 1")
                except psycopg2.OperationalError:
                    return None
                return pgdata, url
        return None

    return wait_for(ready, what="the temporary server")


def signal_when(proc: subprocess.Popen, dsn: str, sql: str, what: str, sig: int,
                timeout: float = 30) -> tuple[str, str]:
    """Send `sig` to `proc` once `sql` returns a row; its (stdout, stderr) when it ends."""
    try:
        wait_for(lambda: query(dsn, sql), what=what)
        proc.send_signal(sig)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def in_transaction(dsn: str) -> bool:
    return bool(query(dsn, "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE "
                           "'txlab-worker-%%' AND state LIKE 'idle in transaction%%'"))


LONG_RUN = ("run", "bank-transfer", "-s", "for-update", "-p", "accounts=2", "--think-ms", "50",
            "-d", "120")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_keep_the_report_and_remove_the_server(open_tmp, sig):
    history = open_tmp / "history.jsonl"
    proc = spawn(*LONG_RUN, "--history", str(history), TMPDIR=str(open_tmp),
                 TXLAB_HOME=str(open_tmp / "home"))
    try:
        pgdata, url = temporary_server(open_tmp)
        postmaster = server.postmaster_pid(pgdata)
        wait_for(lambda: in_transaction(url), what="workers inside transactions")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out and "Invariants" in out
    assert "Traceback" not in err
    assert len(history.read_text().splitlines()) > 1  # the attempts gathered so far
    assert server._gone(postmaster)  # the temporary server was stopped ...
    assert not pgdata.parent.exists()  # ... and its folder removed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_during_setup_cancels_the_statement(pg_dsn, schema, sig):
    # Deliberately huge (above the sane maximum): setup inserts for many seconds.
    proc = spawn("run", "bank-transfer", "-n", "5", "-p", "accounts=30000000",
                 "--allow-large-params", "--dsn", pg_dsn, "--schema", schema)
    inserting = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'txlab-control' "
                 "AND state = 'active' AND query LIKE 'INSERT INTO accounts%%'")
    _, err = signal_when(proc, pg_dsn, inserting, "setup's INSERT", sig)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # the server is not left inserting: the statement was cancelled, setup rolled back
    assert not query(pg_dsn, inserting)
    assert query(pg_dsn, "SELECT to_regclass(%s)", (f"{schema}.accounts",)) == [(None,)]


def test_sigterm_during_a_demo_step(pg_dsn, tmp_path):
    spec = tmp_path / "sleepy.spec"
    spec.write_text("session s1\nstep s1a { SELECT pg_sleep(60); }\n")
    proc = spawn("demo", str(spec), "--dsn", pg_dsn, "--schema", "txlab_sigdemo",
                 PGAPPNAME="txlab-sigterm-test")  # the sessions' application_name prefix
    sleeping = ("SELECT pid FROM pg_stat_activity WHERE application_name = "
                "'txlab-sigterm-test/s1' AND query LIKE '%%pg_sleep%%' AND state = 'active'")
    _, err = signal_when(proc, pg_dsn, sleeping, "the demo step", signal.SIGTERM)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    wait_for(lambda: not query(pg_dsn, sleeping), 10, "the step's session to end")


def _owner_record(pid: int, start: int | None, kind: str | None = None) -> str:
    return json.dumps({"pid": pid, "start": start, "boot": owner.boot_id(),
                       "pidns": owner.pid_namespace(), "token": "0" * 16, "created": 0,
                       **({"kind": kind} if kind else {})})


def _fake_server_folder(parent: Path, name: str, postmaster: int, record: str | None) -> Path:
    folder = parent / name
    (folder / "pgdata").mkdir(parents=True)
    (folder / "pgdata" / "PG_VERSION").write_text("18\n")
    (folder / "pgdata" / "postmaster.pid").write_text(
        f"{postmaster}\n{folder / 'pgdata'}\n1700000000\n5432\n{folder / 'pgdata'}\n\n0 0\nready\n")
    if record is not None:
        (folder / owner.OWNER_FILE).write_text(record)
    return folder


def test_a_killed_txlabs_server_and_history_are_reaped_by_the_next_one_and_nothing_else(open_tmp):
    env = {"TMPDIR": str(open_tmp), "TXLAB_HOME": str(open_tmp / "home")}
    proc = spawn(*LONG_RUN, **env)
    try:
        pgdata, url = temporary_server(open_tmp)
        leaked = server.postmaster_pid(pgdata)
        wait_for(lambda: in_transaction(url), what="workers inside transactions")
        # the history (temporary: the check needs one) and its spool, in an owned folder
        spool = wait_for(lambda: list(open_tmp.glob("txlab-history-*/attempts.spool")),
                         what="the history spool")[0].parent
        wait_for(lambda: (spool / "attempts.spool").stat().st_size > 0, what="spooled attempts")
    finally:
        proc.kill()  # SIGKILL: txlab cannot clean up
        proc.communicate()
    assert not server._gone(leaked), "the killed txlab's server should still run"
    assert (spool / owner.OWNER_FILE).exists() and (spool / "history.jsonl").exists()

    # Decoys that must survive. An unrelated live process (as the server's user, so
    # pg_ctl could signal it) named by stale postmaster.pid files:
    user = server._server_user()
    sleeper = subprocess.Popen(["sleep", "120"], cwd="/",
                               **({"user": user.pw_uid} if user else {}))
    dead = subprocess.Popen(["true"])  # a pid whose process is gone
    dead.wait()
    foreign = _fake_server_folder(open_tmp, "txlab-pg-foreign", sleeper.pid, None)
    alive = _fake_server_folder(open_tmp, "txlab-pg-alive", sleeper.pid,
                                _owner_record(sleeper.pid, owner.start_ticks(sleeper.pid)))
    orphan = _fake_server_folder(open_tmp, "txlab-pg-orphan", sleeper.pid,
                                 _owner_record(dead.pid, 1))
    live_history = open_tmp / "txlab-history-alive"  # a running txlab's: untouched
    live_history.mkdir()
    (live_history / owner.OWNER_FILE).write_text(
        _owner_record(sleeper.pid, owner.start_ticks(sleeper.pid), owner.HISTORY))
    try:
        second = subprocess.run([sys.executable, "-m", "txlab", "run", "bank-transfer", "-n",
                                 "5", "-s", "atomic"], capture_output=True, text=True,
                                env={**os.environ, **env}, timeout=120)
        assert second.returncode == 0, second.stderr
        assert f"removed {pgdata.parent}" in second.stderr
        assert server._gone(leaked) and not pgdata.parent.exists()
        # the orphan's folder goes (its postmaster.pid names no server of its own) ...
        assert not orphan.exists() and f"removed {orphan}" in second.stderr
        # ... but the unrelated process it named was not signalled,
        assert sleeper.poll() is None
        # and folders without an owner file, or with a live owner, are untouched.
        assert foreign.exists() and alive.exists()
        # The killed run's history spool went too (quietly: it is no server), the
        # live one stays.
        assert not spool.exists() and str(spool) not in second.stderr
        assert live_history.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def _load_cli_with(signal_line: str) -> subprocess.CompletedProcess:
    """`txlab list` through txlab.__main__, with `signal_line` (Python, 8 spaces in) run
    at the moment txlab.cli is imported."""
    code = ("import builtins, os, signal\n"
            "real = builtins.__import__\n"
            "def hook(name, *a, **k):\n"
            "    if name == 'txlab.cli':\n"
            f"{signal_line}"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = hook\n"
            "import sys; sys.argv = ['txlab', 'list']\n"
            "from txlab.__main__ import main\n"
            "main()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_an_interrupt_while_loading_the_cli_is_one_line_not_a_traceback(sig):
    # Deterministic: the interrupt arrives while txlab.cli is being imported (SIGTERM
    # and SIGHUP killed txlab there, exit 143 and 129, undocumented).
    r = _load_cli_with(f"        os.kill(os.getpid(), signal.{sig})\n")
    assert r.returncode == 130 and r.stderr == "txlab: interrupted\n", r.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupt_an_import_swallows_still_ends_txlab(sig):
    # An extension's import (ssl, under psycopg2) can swallow the KeyboardInterrupt a
    # signal raises inside it: the whole run then went on (fault audit: SIGTERM at 0.1 s,
    # exit 1 with a full report). Simulated: an import that catches it and goes on.
    r = _load_cli_with("        try:\n"
                       f"            os.kill(os.getpid(), signal.{sig})\n"
                       "        except KeyboardInterrupt:\n"
                       "            pass  # swallowed, as inside an extension's import\n")
    assert r.returncode == 130 and r.stderr == "txlab: interrupted\n", (r.returncode, r.stderr)
    assert r.stdout == ""  # the command did not run


# Python's shutdown (_PySignal_Fini) gives every signal whose handler is a Python
# function the default action back, and leaves an ignored one ignored; a signal after
# that point ends the process. The atexit hook below does the same, then the signal comes.
_LATE_SIGNAL = """
import atexit, os, signal, sys
def late():
    if callable(signal.getsignal(signal.{sig})):
        signal.signal(signal.{sig}, signal.SIG_DFL)
    os.kill(os.getpid(), signal.{sig})
atexit.register(late)
sys.argv = ["txlab", "explain", "G0"]
from txlab.__main__ import main
main()
"""


def _script(script: str, sig: str) -> subprocess.CompletedProcess:
    """`script` (txlab driven through txlab.__main__) run in a fresh Python, with `{sig}`
    standing for the signal's name."""
    return subprocess.run([sys.executable, "-c", script.replace("{sig}", sig)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_an_interrupt_in_the_last_moments_of_shutdown_keeps_the_exit_code(sig):
    # The command finished, printed everything and decided its exit code (0); an
    # interrupt as Python shuts down used to replace that with death by the signal
    # (-15 for SIGTERM, no message): once the code is decided, interrupts are ignored.
    r = _script(_LATE_SIGNAL, sig)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    assert r.stdout.strip(), "the command ran and printed its output"


# A command interrupted (its callback signals the process), and a second signal while
# txlab says "interrupted" (a burst of signals, as a supervisor or an impatient user sends).
_SECOND_SIGNAL = """
import os, signal, sys, time
import txlab.cli as cli
real_err, sent = cli._err, []
def err(message, label=None):
    if message == "interrupted" and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.{sig})
    return real_err(message, label)
cli._err = err
def interrupted_command(*args, **kwargs):
    os.kill(os.getpid(), signal.{sig})
    time.sleep(5)
cli.cli.commands["explain"].callback = interrupted_command
sys.argv = ["txlab", "explain", "G0"]
from txlab.__main__ import main
main()
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_second_interrupt_while_the_first_is_told_still_exits_130(sig):
    # It used to escape into click, which calls it an Abort: "txlab: aborted", exit 1
    # (the code of a violated invariant) instead of 130 (fault audit: bursts of signals
    # during setup, a demo, acid or check).
    r = _script(_SECOND_SIGNAL, sig)
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "txlab: interrupted" in r.stderr and "aborted" not in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


_MATRIX_BEFORE_ITS_FIRST_CELL = """
import os, signal, sys, time
import txlab.db
def server_version(conn):  # the interrupt comes before the first cell (a server starting)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
txlab.db.server_version = server_version
sys.argv = ["txlab", "matrix", "bank-transfer", "-d", "1", "--dsn", sys.argv[1], "--schema",
            sys.argv[2], "--format", sys.argv[3]]
from txlab.__main__ import main
main()
"""


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_a_matrix_interrupted_before_its_first_cell_prints_it_empty_in_its_shape(pg_dsn, schema,
                                                                                  fmt):
    # stdout was empty (not `[]`), and stderr did not say "after 0 of 16" (fault audit:
    # a signal while the temporary server starts, 14 of 14)
    r = subprocess.run([sys.executable, "-c", _MATRIX_BEFORE_ITS_FIRST_CELL, pg_dsn, schema, fmt],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 130, r.stderr
    assert "interrupted after 0 of 16 combinations" in r.stderr and "Traceback" not in r.stderr
    if fmt == "json":
        assert json.loads(r.stdout) == []
    elif fmt == "csv":
        assert r.stdout.splitlines()[0].startswith("scenario,strategy,isolation")
        assert len(r.stdout.splitlines()) == 1
    else:
        assert "INTERRUPTED after 0 of 16 combinations" in " ".join(r.stdout.split())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_the_whole_matrix(pg_dsn, schema, sig):
    # Each cell is a run that winds down at an interrupt; the matrix must then stop,
    # not go on with the next cell (it used to run all 16 and exit 1).
    proc = spawn("matrix", "bank-transfer", "--dsn", pg_dsn, "--schema", schema, "-d", "2")
    workers = ("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'txlab-worker-%%'"
               " AND state IS NOT NULL")
    _, err = signal_when(proc, pg_dsn, workers, "the first cell's workers", sig, timeout=60)
    cells = [line for line in err.splitlines() if line.startswith("txlab: [")]
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert 1 <= len(cells) < 16, err


PLUGIN_SESSION = '''
import pathlib, time
import psycopg2

def test_holds_the_server(txlab_dsn):
    psycopg2.connect(txlab_dsn).close()
    pathlib.Path("up").touch()
    time.sleep(120)

def test_next():
    pathlib.Path("next-ran").touch()
'''


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_pytest_session_stops_the_plugins_temporary_server(open_tmp, sig):
    # A CI runner's SIGTERM used to end pytest on the spot and leave the plugin's
    # temporary server running until some later txlab reaped it.
    project = open_tmp / "project"
    project.mkdir()
    (project / "test_session.py").write_text(PLUGIN_SESSION)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TXLAB_DSN", "DATABASE_URL", "TXLAB_TEST_DSN")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_session.py"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env, "TMPDIR": str(open_tmp), "TXLAB_HOME": str(open_tmp / "home")})
    try:
        pgdata, _ = temporary_server(open_tmp)
        postmaster = server.postmaster_pid(pgdata)
        wait_for(lambda: (project / "up").exists(), what="the test holding the server")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out + err  # pytest's "interrupted", after its teardown
    assert not (project / "next-ran").exists()
    assert server._gone(postmaster)  # the temporary server was stopped ...
    assert not pgdata.parent.exists()  # ... and its folder removed


def test_softened_leaves_a_handler_someone_set():
    def theirs(signum, frame):
        pass

    before = signal.signal(signal.SIGHUP, theirs), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with signals.softened():
            assert signal.getsignal(signal.SIGHUP) is theirs  # theirs: left alone
            with pytest.raises(KeyboardInterrupt):  # the default one: would end the process
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGHUP) is theirs
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before[0])
        signal.signal(signal.SIGTERM, before[1])
