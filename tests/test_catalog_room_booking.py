"""room-booking against the real server: phantoms (predicate write skew, Adya G2) where
they are possible, and none where a strategy, a constraint or the level forbids them."""

from __future__ import annotations

import json

import pytest

from txlab.scenario import resolve

SCENARIO = resolve("room-booking", env={})
# One room, four half-hour slots, bookings of one or two slots, eight workers
# pausing 30 ms between the check and the insert: the first wave of eight
# requests all find the room free, and eight bookings cannot fit in four slots
# without overlapping (pigeonhole), so an unsafe combination cannot get lucky.
CONTENDED = ("-p", "rooms=1", "-p", "slots=4", "-p", "max_slots=2", "-w", "8",
             "--think-ms", "30", "-n", "24", "--format", "json")
SAFE = [(s.name, level) for s in SCENARIO.strategies for level in s.safe_at]
UNSAFE = [(s.name, level) for s in SCENARIO.strategies
          for level in ("read-committed", "repeatable-read") if level not in s.safe_at]


def run(txlab, strategy, level, *extra):
    r = txlab("run", "room-booking", "-s", strategy, "-i", level, *CONTENDED, *extra)
    assert r.stdout.startswith("{"), r.stdout + r.stderr
    return r.exit_code, json.loads(r.stdout)


def test_the_catalog_declares_the_expected_safety():
    assert UNSAFE == [("naive", "read-committed"), ("naive", "repeatable-read"),
                      ("lock-room", "repeatable-read")]


@pytest.mark.parametrize("strategy,level", SAFE)
def test_safe_combinations_never_double_book(txlab, strategy, level):
    code, rep = run(txlab, strategy, level, "--seed", "11")
    assert code == 0 and rep["verdict"] == "HOLDS", rep["invariants"]
    assert 1 <= rep["outcomes"]["committed"] <= 4  # four slots hold at most four bookings


@pytest.mark.parametrize("strategy,level", UNSAFE)
def test_unsafe_combinations_double_book(txlab, strategy, level):
    code, rep = run(txlab, strategy, level, "--seed", "11")
    assert code == 1 and rep["verdict"] == "VIOLATED"
    (inv,) = rep["invariants"]
    assert inv["holds"] is False and "overlaps" in inv["detail"]


def test_the_exclusion_constraint_catches_the_race_as_23P01(txlab):
    code, rep = run(txlab, "exclusion", "read-committed", "--seed", "11")
    assert code == 0
    assert rep["outcomes"]["aborted"].get("23P01", 0) > 0


@pytest.fixture(autouse=True)
def _drop_schema_after(txlab):
    """Drop each test's schema, so that no btree_gist installed by it lingers."""
    yield
    txlab("clean")


def _catalog(pg_dsn, sql):
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def _exclusion_constraints(pg_dsn, schema):
    return [r[0] for r in _catalog(
        pg_dsn, "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        f" JOIN pg_class t ON t.oid = c.conrelid WHERE c.contype = 'x'"
        f" AND t.relnamespace = to_regnamespace('{schema}')")]


def test_btree_gist_is_installed_in_txlabs_schema_only(txlab, pg_dsn, schema):
    installed = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'btree_gist'"
    other = schema + "_other"
    before = _catalog(pg_dsn, installed)
    if before:  # a TXLAB_TEST_DSN database that has it elsewhere: used by no txlab table
        code, rep = run(txlab, "exclusion", "read-committed")
        assert code == 0 and _catalog(pg_dsn, installed) == before
        assert "int4range(room_id, room_id" in _exclusion_constraints(pg_dsn, schema)[0]
        return
    for _ in range(2):  # the second run drops and recreates the schema, and the extension
        code, rep = run(txlab, "exclusion", "read-committed")
        assert code == 0, rep["invariants"]
        assert _catalog(pg_dsn, installed) == [(schema,)]
        assert _exclusion_constraints(pg_dsn, schema) == [
            "EXCLUDE USING gist (room_id WITH =, during WITH &&)"]
    # A second schema finds btree_gist in the first: it must not depend on it ...
    r = txlab("run", "room-booking", "-s", "exclusion", *CONTENDED, "--schema", other,
              use_schema=False)
    assert r.exit_code == 0, r.stdout
    guard = _exclusion_constraints(pg_dsn, other)
    assert len(guard) == 1 and "int4range(room_id, room_id" in guard[0]
    # ... so dropping the first schema takes the extension and leaves the second intact.
    assert txlab("clean").exit_code == 0
    assert _catalog(pg_dsn, installed) == []
    assert _exclusion_constraints(pg_dsn, other) == guard
    assert txlab("clean", "--schema", other, use_schema=False).exit_code == 0


def test_bookings_are_recorded_with_predicate_reads(txlab, tmp_path):
    from txlab import history

    path = tmp_path / "h.jsonl"
    run(txlab, "lock-room", "read-committed", "--history", str(path))
    committed = [a for a in history.read(path).attempts if a.outcome == "committed"]
    assert committed
    for a in committed:
        kinds = [op[0] for op in a.ops]
        assert kinds == ["r", "pr", "w"], a.ops
        assert a.ops[0][1] == "room:1"
        assert a.ops[1][1].startswith("bookings WHERE room_id = 1 AND during &&")
        assert a.ops[2][1].startswith("booking:") and a.ops[2][2] == 1


PHANTOM_NOTE = "the history checker found no anomaly"


def test_a_phantom_the_checker_cannot_see_is_said_so(txlab):
    code, rep = run(txlab, "naive", "read-committed", "--seed", "11")
    assert code == 1 and rep["anomalies"] == []  # no row was read and then overwritten
    assert any(PHANTOM_NOTE in n for n in rep["notes"])


def test_no_phantom_note_when_the_invariants_hold_or_the_checker_found_the_cause(txlab):
    code, rep = run(txlab, "exclusion", "read-committed", "--seed", "11")
    assert code == 0 and not any(PHANTOM_NOTE in n for n in rep["notes"])
    r = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms", "10",
              "-n", "40", "--seed", "1", "--format", "json")
    rep = json.loads(r.stdout)
    assert r.exit_code == 1 and rep["anomalies"]  # lost updates, found and named
    assert not any(PHANTOM_NOTE in n for n in rep["notes"])
