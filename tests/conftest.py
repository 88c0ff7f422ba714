"""Test fixtures: one real PostgreSQL per test session.

TXLAB_TEST_DSN names an existing server; otherwise an embedded PostgreSQL 18 is
started in a temporary folder for the session and stopped at its end.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from txlab import server
from txlab.cli import cli

_schemas = itertools.count()


@pytest.fixture(scope="session")
def pg_dsn():
    if os.environ.get("TXLAB_TEST_DSN"):
        yield os.environ["TXLAB_TEST_DSN"]
        return
    tmp = Path(tempfile.mkdtemp(prefix="txlab-test-pg-"))
    pgdata = tmp / "pgdata"
    try:
        yield server.start(pgdata)
    finally:
        server.stop(pgdata, "fast")
        shutil.rmtree(tmp, ignore_errors=True)


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
