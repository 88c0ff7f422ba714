"""txlab's pytest plugin: installed by entry point, fixtures without a conftest, the
database found as the CLI finds it, one fresh schema per test, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from apps import sql
from sqlalchemy import Column, Integer, MetaData, Table, text

from txlab.testing import plugin

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples" / "seat-booking"


def pytest_run(args, cwd, env_changes, drop=()):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TXLAB_TEST_DSN", "TXLAB_DSN", "DATABASE_URL", *drop)}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, env=env, cwd=cwd)


def leftover_schemas(dsn) -> int:
    return sql(dsn, r"SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'txlab\_app\_%'")[0][0]


FIXTURES_TEST = '''
from sqlalchemy import text

def test_one_schema_per_test(txlab_engine, txlab_schema_dsn):
    import psycopg2
    with txlab_engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
    raw = psycopg2.connect(txlab_schema_dsn)
    cur = raw.cursor()
    cur.execute("SELECT current_schema()")
    assert cur.fetchone()[0] == schema and schema.startswith("txlab_app_")
    raw.close()

def test_no_database_needed(tmp_path):
    assert True
'''


def test_seat_example_and_fixtures_with_no_conftest(pg_dsn, tmp_path):
    """docs/examples/seat-booking/test_seats.py and a fixture check, run as a user would,
    with the database named by TXLAB_DSN (before DATABASE_URL, which answers nothing)."""
    (tmp_path / "test_fixtures.py").write_text(FIXTURES_TEST)
    out = pytest_run([str(EXAMPLES / "test_seats.py"), "test_fixtures.py"], tmp_path, {
        "TXLAB_DSN": pg_dsn, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TXLAB_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 passed" in out.stdout
    assert leftover_schemas(pg_dsn) == 0  # every test's schema was dropped


PLAIN_TEST = """
import os

def test_plain():  # while the session runs, no temporary server's folder exists
    assert os.listdir(os.environ["TMPDIR"]) == []
"""


def test_no_server_starts_unless_a_fixture_asks(tmp_path):
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = pytest_run(["test_plain.py"], tmp_path, {"TMPDIR": str(scratch),
                                                   "TXLAB_HOME": str(tmp_path / "home")})
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr


def test_resolution_order_without_starting_anything():
    a, b, c = "dbname=a", "dbname=b", "dbname=c"  # DSNs are parsed (a bad one is exit 2)
    order = [({"TXLAB_TEST_DSN": a, "TXLAB_DSN": b, "DATABASE_URL": c}, a),
             ({"TXLAB_DSN": b, "DATABASE_URL": c}, b),
             ({"DATABASE_URL": c}, c)]
    for env, expected in order:
        with plugin.database(env) as dsn:
            assert dsn == expected


def test_txlab_engine_works_in_its_own_schema(txlab_engine, txlab_schema_dsn):
    table = Table("things", MetaData(), Column("id", Integer, primary_key=True))
    table.metadata.create_all(txlab_engine)  # the application's own create_all
    with txlab_engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1}])
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        where = conn.execute(text("SELECT table_schema FROM information_schema.tables "
                                  "WHERE table_name = 'things'")).scalar()
    assert where == schema and schema.startswith("txlab_app_")
    assert f"search_path={schema}" in txlab_schema_dsn
