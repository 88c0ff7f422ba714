"""txlab.testing.interleave on application-shaped code: the seat example of
docs/examples/seats.py (SQLAlchemy ORM) and read-modify-write in plain psycopg2.
Every case that must fail has a neighbour that must pass."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from functools import partial

import psycopg2
import psycopg2.extras
import pytest
from apps import one_booking, seats, sql
from click.testing import CliRunner
from hypothesis import given, settings
from sqlalchemy import text

import txlab.testing
from txlab import db
from txlab.cli import cli
from txlab.interleave import driver
from txlab.interleave import spec as specs
from txlab.testing import interleave, snapshot
from txlab.testing import strategies as tx

ONE_BOOKING = "SELECT count(*) <= 1 FROM bookings WHERE seat_id = '12A'"


def book(fn):
    return [partial(fn, seat_id="12A", customer="ann"), partial(fn, seat_id="12A", customer="bob")]


def bookings(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT seat_id, customer FROM bookings ORDER BY id")).all()


# ---------------------------------------------------------------- SQLAlchemy ORM


@pytest.mark.parametrize("level", ["read-committed", "repeatable-read"])
def test_count_then_insert_double_books_and_shrinks(seat_engine, level):
    r = interleave(book(seats.reserve_seat), engine=seat_engine, isolation=level,
                   invariant=one_booking, seed=7)
    assert not r.ok and r.failures >= 1
    s = r.schedule
    assert s.failure == "the invariant one_booking returned False"
    assert s.preemptions == 1 and len(s.steps) == 6  # the least interleaving that fails
    assert [step.kind for step in s.steps].count("commit") == 2
    sql_level = level.replace("-", " ").upper()
    assert [st.begin for st in s.steps if st.begin] == [f"BEGIN ISOLATION LEVEL {sql_level}"] * 2
    assert json.loads(dict(s.final_state)["bookings"]).__len__() == 2
    text_ = r.explain()
    assert "FAILED: the invariant one_booking returned False" in text_
    assert "s1 reserve_seat" in text_ and "-> 0" in text_
    # a Python invariant cannot travel in the spec: its comments say so, and how
    assert "# The invariant was Python code, which a spec cannot carry" in r.spec
    assert "# txlab: witness" not in r.spec
    assert bookings(seat_engine) == []  # the tables are left as interleave found them


def test_serializable_fails_without_retry_and_passes_with_it(seat_engine):
    bare = interleave(book(seats.reserve_seat), engine=seat_engine, isolation="serializable",
                      invariant=one_booking, seed=1)
    assert not bare.ok
    end = next(e for e in bare.schedule.ends if e.exception)
    assert (end.exception, end.sqlstate) == ("OperationalError", "40001")
    flat = " ".join(bare.explain().split())
    assert "the application must retry it" in flat and "in your own code" in flat
    assert_retries_named_only_where_taken(flat)
    retrying = interleave(book(seats.reserve_seat_retrying), engine=seat_engine,
                          isolation="serializable", invariant=one_booking, seed=1)
    assert retrying.ok and retrying.exhausted, retrying.explain()
    retried = [s for s in retrying.explored if any(st.sqlstate == "40001" for st in s.steps)]
    assert retried, "some schedule must make the app retry"
    for s in retried:  # the app rolled back (unless COMMIT failed) and counted again
        i = next(i for i, st in enumerate(s.steps) if st.sqlstate == "40001")
        later = [st.kind for st in s.steps[i + 1:] if st.session == s.steps[i].session]
        want = ["statement"] if s.steps[i].kind == "commit" else ["rollback", "statement"]
        assert later[:len(want)] == want


def test_locked_version_passes_every_schedule(seat_engine):
    r = interleave(book(seats.reserve_seat_locked), engine=seat_engine, isolation="read committed",
                   invariant=one_booking, seed=3)
    assert r.ok and r.exhausted and r.schedules > 2, r.explain()
    assert r.waited > 0  # the second booker waited for the row lock in some schedules
    assert f"OK: no failure in all {r.schedules} schedules" in r.explain()


@pytest.fixture
def replay_dsn(pg_dsn):
    """The server, with the replays' schema (txlab_test_replay) dropped afterwards."""
    yield pg_dsn
    conn = db.connect(pg_dsn)
    try:
        db.drop_schema(conn, "txlab_test_replay")
    finally:
        conn.close()


def test_spec_replays_to_the_same_final_state(seat_engine, replay_dsn):
    r = interleave(book(seats.reserve_seat), engine=seat_engine, isolation="rc",
                   invariant=ONE_BOOKING, seed=5)
    assert not r.ok and r.spec
    spec = specs.parse(r.spec)
    assert spec.permutations[0].steps[0].name == "s1a"
    assert replayed(spec, replay_dsn, r.state_sql) == r.schedule.final_state


def replayed(spec, dsn, state_sql):
    """The final state after running the spec's permutation with txlab's demo driver."""
    run = driver.run_spec(spec, dsn, final_queries=(state_sql,), schema="txlab_test_replay")
    return tuple(map(tuple, run.runs[0].final[-1].rows))


def test_txlab_demo_replays_the_spec_as_an_anomaly(seat_engine, replay_dsn, tmp_path):
    r = interleave(book(seats.reserve_seat), engine=seat_engine, isolation="rc",
                   invariant=ONE_BOOKING, seed=5)
    path = tmp_path / "double-booking.spec"
    path.write_text(r.spec)
    assert "# txlab: witness = check" in r.spec and "Python code" not in r.spec
    out = CliRunner().invoke(cli, ["demo", str(path), "--dsn", replay_dsn, "--schema",
                                   "txlab_test_replay", "--format", "json"])
    assert out.exit_code == 0, out.output
    run = json.loads(out.stdout)["levels"][0]["permutations"][0]
    assert run["verdict"]["outcome"] == "anomaly"
    tables = {state["table"]: state["rows"] for state in run["final_states"]}
    expected = json.loads(dict(r.schedule.final_state)["bookings"])
    assert [[str(b["id"]), b["seat_id"], b["customer"]] for b in expected] == tables["bookings"]


# ---------------------------------------------------------------- plain psycopg2


def add_ten(conn):
    cur = conn.cursor()
    cur.execute("SELECT balance FROM accounts WHERE id = %s", (1,))
    (balance,) = cur.fetchone()
    cur.execute("UPDATE accounts SET balance = %s WHERE id = %s", (balance + 10, 1))
    conn.commit()


def add_ten_locked(conn):
    with conn:  # psycopg2 commits at the end of the block
        cur = conn.cursor()
        cur.execute("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE")
        (balance,) = cur.fetchone()
        cur.execute("UPDATE accounts SET balance = %s WHERE id = 1", (balance + 10,))


def balance_is_120(conn):
    cur = conn.cursor()
    cur.execute("SELECT balance FROM accounts WHERE id = 1")
    return cur.fetchone()[0] == 120


@pytest.fixture
def accounts_dsn(txlab_schema_dsn):
    sql(txlab_schema_dsn, "CREATE TABLE accounts (id int PRIMARY KEY, balance int, "
                          "note jsonb DEFAULT '{}'); INSERT INTO accounts VALUES (1, 100)")
    return txlab_schema_dsn


def test_lost_update_found_with_a_wait_and_replayed(accounts_dsn, replay_dsn):
    r = interleave([add_ten, add_ten], dsn=accounts_dsn, isolation="read-committed",
                   invariant=balance_is_120, seed=2)
    assert not r.ok
    waited = [st for st in r.schedule.steps if st.waited]
    assert len(waited) == 1 and waited[0].sql.startswith("UPDATE") and waited[0].blocked_by
    assert "WAITING for s" in r.explain() and "completes" in r.explain()
    assert json.loads(dict(r.schedule.final_state)["accounts"])[0]["balance"] == 110
    # the jsonb default '{}' is written so that the spec reads back
    assert replayed(specs.parse(r.spec), replay_dsn, r.state_sql) == r.schedule.final_state


def test_repeatable_read_refuses_the_lost_update_with_40001(accounts_dsn):
    r = interleave([add_ten, add_ten], dsn=accounts_dsn, isolation="repeatable read",
                   invariant=balance_is_120, seed=2)
    assert not r.ok and "raised SerializationFailure (SQLSTATE 40001)" in r.schedule.failure
    assert r.schedule.steps[-1].closing and r.schedule.steps[-1].kind == "rollback"


def test_locked_read_modify_write_passes_every_schedule(accounts_dsn):
    r = interleave([add_ten_locked, add_ten_locked], dsn=accounts_dsn,
                   isolation="read committed", invariant=balance_is_120, seed=2)
    assert r.ok and r.exhausted and r.waited, r.explain()
    first = r.explored[0]
    assert [st.kind for st in first.steps] == ["statement", "statement", "commit"] * 2


# ---------------------------------------------------------------- as in production


def two_transactions_and_a_retry(conn):
    """Commit twice; the second transaction picks the next id and retries on 23505."""
    cur = conn.cursor()
    cur.execute("INSERT INTO log (note) VALUES ('first')")
    conn.commit()
    while True:
        cur.execute("SELECT coalesce(max(id), 0) + 1 FROM items")
        (next_id,) = cur.fetchone()
        try:
            cur.execute("INSERT INTO items (id) VALUES (%s)", (next_id,))
            conn.commit()
            return
        except psycopg2.errors.UniqueViolation:
            conn.rollback()


def test_commits_twice_and_retries_as_in_production(txlab_schema_dsn):
    sql(txlab_schema_dsn, "CREATE TABLE log (id serial PRIMARY KEY, note text); "
                          "CREATE TABLE items (id int PRIMARY KEY)")
    r = interleave([two_transactions_and_a_retry] * 2, dsn=txlab_schema_dsn,
                   invariant="SELECT (SELECT count(*) FROM log) = 2 AND "
                             "(SELECT count(*) FROM items) = 2", seed=4, max_schedules=30)
    assert r.ok and r.schedules == 30, r.explain()  # the least preempted 30 of 182
    serial = r.explored[0]
    assert [st.kind for st in serial.steps if st.session == 0].count("commit") == 2
    assert sum(1 for st in serial.steps if st.begin) == 4  # two transactions per session
    retried = [s for s in r.explored if any(st.sqlstate == "23505" for st in s.steps)]
    assert retried and all(s.ends[0].exception is None for s in retried)
    # every schedule started from the same state: the same ids every time
    assert {dict(s.final_state)["log"] for s in r.explored} == {dict(serial.final_state)["log"]}
    # and interleave left the tables as it found them
    assert sql(txlab_schema_dsn, "SELECT (SELECT count(*) FROM log) + "
                                 "(SELECT count(*) FROM items)") == [(0,)]


def test_setup_builds_the_state_of_every_schedule(accounts_dsn):
    calls = []

    def setup(conn):
        calls.append(1)
        conn.cursor().execute("UPDATE accounts SET balance = 100 WHERE id = 1")

    r = interleave([add_ten_locked, add_ten_locked], dsn=accounts_dsn, setup=setup,
                   invariant=balance_is_120, seed=1)
    assert r.ok and len(calls) == r.schedules + 1  # once to capture the state, once per run


# ---------------------------------------------------------------- hypothesis


def test_hypothesis_drives_schedules_and_shrinks_them(seat_engine):
    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(schedule=tx.schedules(sessions=2))
    def check(schedule):
        r = interleave(book(seats.reserve_seat), engine=seat_engine, isolation="rc",
                       invariant=one_booking, schedule=schedule)
        assert r.schedules == 1
        assert r.ok, r.explain()

    with pytest.raises(AssertionError) as failed:
        check()
    notes = "\n".join(getattr(failed.value, "__notes__", []))
    assert "schedule=[0, 1]" in notes  # s1 counts, then s2 books, then s1 books


# ---------------------------------------------------------------- units


def test_brace_safe_keeps_values_and_refuses_what_it_cannot_write(pg_dsn):
    from txlab.testing.specgen import SpecUnavailable, brace_safe

    cases = ["SELECT '{}'::jsonb", "SELECT E'a\\\\}b', 'it''s }'", "SELECT U&'x}'",
             "SELECT '{1,2}'::int[] AS a"]
    conn = psycopg2.connect(pg_dsn)
    try:
        for sql in cases:
            safe = brace_safe(sql)
            assert "}" not in safe
            cur = conn.cursor()
            cur.execute(sql)
            before = cur.fetchone()
            cur.execute(safe)
            assert cur.fetchone() == before, (sql, safe)
    finally:
        conn.close()
    with pytest.raises(SpecUnavailable):
        brace_safe("SELECT $$}$$")


def test_snapshot_writes_tables_that_rebuild_the_same_state(txlab_schema_dsn, pg_dsn):
    from txlab.testing.plugin import fresh_schema, schema_dsn
    from txlab.testing.specgen import brace_safe

    sql(txlab_schema_dsn, """
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE parent (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, m mood,
                             tags int[] DEFAULT '{}', UNIQUE (m, id));
        CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id),
                            v int CHECK (v > 0), doubled int GENERATED ALWAYS AS (v * 2) STORED);
        CREATE INDEX child_v ON child (v) WHERE v > 1;
        INSERT INTO parent (m, tags) VALUES ('ok', '{1,2}'), ('sad', DEFAULT);
        INSERT INTO child (parent_id, v) VALUES (2, 3), (1, 1);""")
    conn = psycopg2.connect(txlab_schema_dsn)
    conn.autocommit = True
    state = snapshot.capture(conn, snapshot.current_schema(conn))
    conn.close()
    assert [t.name for t in state.tables] == ["parent", "child"]
    original = sql(txlab_schema_dsn, snapshot.final_state_sql(state))
    with fresh_schema(pg_dsn) as other:  # an empty schema: build it there from the SQL
        elsewhere = schema_dsn(pg_dsn, other)
        sql(elsewhere, brace_safe(snapshot.setup_sql(state)))
        assert sql(elsewhere, snapshot.final_state_sql(state)) == original
        # the identity and the sequence go on where they were
        assert sql(elsewhere, "INSERT INTO parent (m) VALUES ('ok') RETURNING id") == [(3,)]
        assert sql(elsewhere, "INSERT INTO child (parent_id, v) VALUES (1, 5) "
                              "RETURNING id, doubled") == [(3, 10)]
        sql(elsewhere, snapshot.teardown_sql(state))
        assert sql(elsewhere, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                              f"n.oid = c.relnamespace WHERE nspname = '{other}'") == [(0,)]


# ---------------------------------------------------------------- the edges of "as in production"


def transfer(source, target):
    def move(conn):
        cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)  # the app's own kind
        cur.execute("UPDATE accounts SET balance = balance - 10 WHERE id = %s "
                    "RETURNING balance", (source,))
        assert "balance" in cur.fetchone()
        cur.execute("UPDATE accounts SET balance = balance + 10 WHERE id = %s", (target,))
        conn.commit()
    move.__name__ = f"transfer_{source}_{target}"
    return move


def test_a_deadlock_is_left_to_the_server(accounts_dsn):
    sql(accounts_dsn, "INSERT INTO accounts VALUES (2, 100)")
    # s1 updates 1, s2 updates 2, s2 waits for 1, s1 waits for 2: a deadlock
    r = interleave([transfer(1, 2), transfer(2, 1)], dsn=accounts_dsn, schedule=[0, 1, 0],
                   invariant="SELECT sum(balance) = 200 FROM accounts")
    assert not r.ok and r.given
    s = r.schedule
    assert [st.waited for st in s.steps[:4]] == [False, False, True, True]
    assert [e.sqlstate for e in s.ends] == [None, "40P01"]
    assert "DeadlockDetected (SQLSTATE 40P01)" in s.failure
    assert "ERROR 40P01: deadlock detected" in r.explain()
    # what to do about it: a fixed lock order (the failure named no cure before)
    flat = " ".join(r.explain().split())
    assert "Lock rows in one fixed order" in flat and "`txlab explain 40P01`" in flat
    assert "Serialization failure (40001)" not in flat
    assert "retry the transaction in the application code" in flat
    assert_retries_named_only_where_taken(flat)


def assert_retries_named_only_where_taken(text):
    """interleave's advice once said `retries=N`, which interleave does not take
    (TypeError): every `retries=` it names belongs to a function that has one."""
    named = re.findall(r"(\w+)?\(?retries=N", text)
    assert named, text
    for fn in named:
        assert fn, f"a bare retries=N in interleave's advice: {text}"
        assert "retries" in inspect.signature(getattr(txlab.testing, fn)).parameters, fn
    assert "retries" not in inspect.signature(interleave).parameters


def test_atomic_update_waits_and_passes_every_schedule(accounts_dsn):
    def add_ten_in_sql(conn):
        conn.cursor().execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1")
        conn.commit()

    r = interleave([add_ten_in_sql] * 2, dsn=accounts_dsn, invariant=balance_is_120)
    assert r.ok and r.exhausted and r.waited, r.explain()


def test_a_sessionmaker_keeps_its_configuration(seat_engine):
    from sqlalchemy.orm import sessionmaker

    seen = []

    def book_and_look(session):
        booked = seats.reserve_seat(session, "12B", "cy")
        seen.append(session.expire_on_commit)
        return booked

    r = interleave([book_and_look], engine=sessionmaker(seat_engine, expire_on_commit=False),
                   invariant=lambda s: True)
    assert r.ok and r.schedules == 1 and seen == [False]
    assert r.explored[0].ends[0].value == "True"


def test_a_session_waiting_in_python_is_reported_not_a_hang(accounts_dsn):
    import threading

    never = threading.Event()

    def hold_the_row(conn):
        conn.cursor().execute("UPDATE accounts SET balance = 0 WHERE id = 1")
        never.wait(10)  # waits for something only another session could do, in Python
        conn.commit()

    r = interleave([hold_the_row], dsn=accounts_dsn, invariant=None, step_timeout=0.5)
    never.set()
    assert not r.ok and r.schedules == 1 and r.schedule.stuck
    assert "made no progress for 0.5 s (busy outside the database)" in r.schedule.failure
    assert sql(accounts_dsn, "SELECT balance FROM accounts") == [(100,)]  # as it found it


CTRL_C_IN_INTERLEAVE = '''
import os, signal, sys
from txlab.testing import interleave

fired = []

def add_ten_locked_and_interrupt(conn):
    with conn:
        cur = conn.cursor()
        cur.execute("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE")
        if not fired:  # Ctrl-C while this session holds the row lock
            fired.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        cur.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1")

try:
    interleave([add_ten_locked_and_interrupt] * 2, dsn=sys.argv[1], invariant="SELECT true",
               seed=1)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
'''


def test_ctrl_c_in_interleave_ends_the_sessions_and_reaches_the_caller(accounts_dsn):
    # It used to hang for good: the session at its next step kept its row lock, and
    # restoring the tables waited for it. In a child process, so that a hang fails.
    done = subprocess.run([sys.executable, "-c", CTRL_C_IN_INTERLEAVE, accounts_dsn],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout == "KeyboardInterrupt\n", done.stderr
    assert sql(accounts_dsn, "SELECT balance FROM accounts") == [(100,)]  # as found
    assert sql(accounts_dsn, "SELECT count(*) FROM pg_stat_activity"
                             " WHERE state LIKE 'idle in transaction%'") == [(0,)]
