"""txlab's pytest plugin, registered by installing txlab (entry point `pytest11`).

Fixtures (nothing starts until a test asks for one):

- `txlab_dsn` (session): a PostgreSQL for the test session, found as the CLI finds
  one: TXLAB_TEST_DSN, TXLAB_DSN, DATABASE_URL, the persistent server (`txlab
  server start`), else a temporary embedded server, stopped at the session's end.
- `txlab_schema_dsn` (test): a DSN whose connections work in a fresh schema of
  the test's own (search_path), dropped after the test.
- `txlab_engine` (test): a SQLAlchemy Engine on that schema, so that the
  application's own `metadata.create_all(engine)` creates its tables there.

To use another server, override `txlab_dsn` in your conftest.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Mapping

import pytest

_schemas = itertools.count()


@contextlib.contextmanager
def database(env: Mapping[str, str]) -> Iterator[str]:
    """The DSN for a test session; starts (and afterwards stops) a temporary server
    only when nothing else is configured or running."""
    from txlab import server

    with server.open_database(env.get("TXLAB_TEST_DSN") or None, env,
                              option="TXLAB_TEST_DSN") as found:
        yield found.dsn


def schema_dsn(dsn: str, schema: str) -> str:
    """`dsn` with its connections' search_path set to `schema` (a key=value DSN).
    Commits do not wait for the disk (synchronous_commit off): tests need no
    durability, and visibility and locking are the same."""
    from psycopg2.extensions import make_dsn

    return make_dsn(dsn, options=f"-c search_path={schema} -c synchronous_commit=off")


def engine_for(dsn: str, **kwargs):
    """A SQLAlchemy Engine (psycopg2) for a URL or key=value DSN."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import URL

    from txlab import db

    parts = db.parse_dsn(dsn)
    user, password, name = parts.pop("user", None), parts.pop("password", None), \
        parts.pop("dbname", None)
    url = URL.create("postgresql+psycopg2", username=user, password=password, database=name,
                     query=parts)
    return create_engine(url, **kwargs)


@contextlib.contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A new txlab-owned schema; dropped afterwards."""
    import psycopg2

    from txlab import db
    from txlab.errors import DatabaseError

    name = f"txlab_app_{os.getpid()}_{next(_schemas)}"
    # A connection the test left open (and locking) must not hang the teardown.
    conn = db.connect(dsn, "txlab-pytest", lock_timeout="10s")
    try:
        db.prepare_schema(conn, name)
        yield name
    finally:
        try:
            db.drop_schema(conn, name)
        except (psycopg2.errors.LockNotAvailable, db.SchemaLocked):
            raise DatabaseError(f"could not drop the test's schema {name}: a connection the "
                                "test opened still holds a lock in it (close Sessions and "
                                "connections, e.g. with `with Session(engine) as s:`)") from None
        finally:
            conn.close()


@pytest.fixture(scope="session")
def txlab_dsn():
    """A PostgreSQL for the test session (TXLAB_TEST_DSN, TXLAB_DSN, DATABASE_URL,
    `txlab server start`, else a temporary embedded server)."""
    with database(os.environ) as dsn:
        yield dsn


@pytest.fixture
def _txlab_schema(txlab_dsn):
    with fresh_schema(txlab_dsn) as name:
        yield name


@pytest.fixture
def txlab_schema_dsn(txlab_dsn, _txlab_schema):
    """A DSN whose connections use a fresh schema of this test's own (psycopg2 apps)."""
    return schema_dsn(txlab_dsn, _txlab_schema)


@pytest.fixture
def txlab_engine(txlab_dsn, _txlab_schema):
    """A SQLAlchemy Engine whose connections use a fresh schema of this test's own;
    disposed of and the schema dropped after the test."""
    engine = engine_for(schema_dsn(txlab_dsn, _txlab_schema))
    try:
        yield engine
    finally:
        engine.dispose()
