"""Test fixtures: one real PostgreSQL per test session.

TXLAB_TEST_DSN names an existing server; otherwise an embedded PostgreSQL 18 is
started in a temporary folder for the session and stopped at its end.
"""

from __future__ import annotations

import itertools
import os
import signal

import pytest
from click.testing import CliRunner

from txlab.cli import cli
from txlab.testing import postgres

_schemas = itertools.count()


def pytest_configure(config):
    # Off a terminal, txlab fits its output to COLUMNS (else 80). Tests look for phrases
    # in messages and reports, so they get room; the width tests set COLUMNS themselves.
    os.environ["COLUMNS"] = "200"
    # The interrupt tests send SIGINT to this process. A background job of a
    # non-interactive shell (`make test &` in a script) starts with SIGINT ignored,
    # and every one of them then failed for that alone: Python's own handler back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def pg_dsn():
    with postgres() as dsn:  # TXLAB_TEST_DSN, else a temporary embedded server
        yield dsn


@pytest.fixture(scope="session")
def txlab_dsn(pg_dsn):
    """txlab's pytest plugin (txlab_engine, txlab_schema_dsn) uses this suite's server."""
    return pg_dsn


@pytest.fixture
def seat_engine(txlab_engine):
    """txlab_engine with the tables and seats of docs/examples/seat-booking/seats.py."""
    from apps import create

    create(txlab_engine)
    return txlab_engine


@pytest.fixture
def schema():
    """A fresh schema name per test, so tests never see each other's tables."""
    return f"txlab_test_{os.getpid()}_{next(_schemas)}"


@pytest.fixture
def txlab(pg_dsn, schema, monkeypatch):
    """Run the CLI in-process against the test server: txlab("run", "bank-transfer", ...)."""
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def invoke(*args, dsn=pg_dsn, use_schema=True):
        argv = list(args)
        if dsn is not None and argv and argv[0] in ("run", "clean"):
            argv += ["--dsn", dsn]
        if use_schema and argv and argv[0] in ("run", "clean"):
            argv += ["--schema", schema]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    return invoke


@pytest.fixture
def open_tmp():
    """A fresh folder under the system's temporary folder that every user may enter
    (as root, the embedded server runs as its own user and must reach it). Servers a
    test left running in it are stopped (verified as its own) before it is removed."""
    import shutil
    import tempfile
    from pathlib import Path

    from txlab import server

    path = Path(tempfile.mkdtemp(prefix="reltest-"))
    path.chmod(0o755)
    yield path
    for pgdata in path.glob("**/pgdata"):
        server.stop(pgdata, "immediate", timeout=20)
    shutil.rmtree(path, ignore_errors=True)
