"""Where the database comes from: resolution order, temporary and persistent servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from txlab import server


def test_resolution_order():
    env = {"TXLAB_DSN": "postgresql:///a", "DATABASE_URL": "postgresql:///b"}
    assert server.configured_dsn("postgresql:///opt", env).source == "--dsn"
    assert server.configured_dsn(None, env).dsn == "postgresql:///a"
    assert server.configured_dsn(None, {"DATABASE_URL": "postgresql:///b"}).source == "DATABASE_URL"
    assert server.configured_dsn(None, {}) is None


def _txlab(*args, home, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    env["TXLAB_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_temporary_embedded_server_for_one_run(tmp_path):
    r = _txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", home=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "temporary embedded" in line]
    assert len(lines) == 1 and "PostgreSQL 18" in lines[0]
    assert "Warning" not in r.stderr
    # stopped and removed at the end: no server of ours left on the persistent path
    assert not server.is_running(tmp_path / "server" / "pgdata")


@pytest.mark.slow
def test_persistent_server_lifecycle(tmp_path, monkeypatch):
    # tmp_path is private (mode 700): as root, the data goes to /var/lib/txlab
    monkeypatch.setenv("TXLAB_HOME", str(tmp_path))
    pgdata = server.persistent_pgdata()
    try:
        start = _txlab("server", "start", home=tmp_path)
        assert start.returncode == 0, start.stderr
        url = start.stdout.strip()
        assert url.startswith("postgresql://")
        assert _txlab("server", "status", home=tmp_path).returncode == 0
        assert _txlab("server", "url", home=tmp_path).stdout.strip() == url
        run = _txlab("run", "bank-transfer", "-s", "atomic", "-n", "10", home=tmp_path)
        assert run.returncode == 0
        assert "persistent embedded server" in run.stderr and "temporary" not in run.stderr
        assert "already running" in _txlab("server", "start", home=tmp_path).stderr
    finally:
        stop = _txlab("server", "stop", home=tmp_path)
    assert stop.returncode == 0 and "stopped" in stop.stderr
    status = _txlab("server", "status", home=tmp_path)
    assert status.returncode == 3 and "not running" in status.stdout
    url = _txlab("server", "url", home=tmp_path)
    assert url.returncode == 3 and "txlab server start" in url.stderr
    if server.ROOT_AREA in pgdata.parents:
        shutil.rmtree(pgdata.parent)
