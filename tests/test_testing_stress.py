"""txlab.testing.stress on application-shaped code. Violations are made near-certain
by design: one hot seat or row, eight workers, and think time between statements."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from apps import one_booking, seats, sql
from sqlalchemy import text

from txlab.testing import stress


def test_stress_finds_the_naive_double_booking(seat_engine):
    r = stress(lambda s, i: seats.reserve_seat(s, "12A", f"customer {i}"), engine=seat_engine,
               workers=8, calls=16, think_ms=20, invariant=one_booking, seed=1)
    assert not r.ok and r.verdict.held is False
    assert r.returned == 16 and r.commits >= 2  # every call returned; several booked the seat
    assert "FAILED: the invariant one_booking returned False" in r.explain()
    # the level the application's BEGINs named, not just "the application's own level"
    assert r.isolation == "READ COMMITTED (the application's own level)"
    assert "at READ COMMITTED (the application's own level)" in " ".join(r.explain().split())


def test_stress_passes_the_locked_version(seat_engine):
    r = stress(lambda s, i: seats.reserve_seat_locked(s, "12A", f"customer {i}"),
               engine=seat_engine, workers=8, calls=16, think_ms=20, invariant=one_booking,
               seed=1)
    assert r.ok, r.explain()
    # one call booked and committed; the others found the seat taken and returned with
    # their (read-only) transaction open, which closing the Session rolled back
    assert (r.returned, r.commits, r.rollbacks, r.left_open) == (16, 1, 0, 15)


class _Refused(Exception):
    pass


def test_calls_that_raise_inside_their_transaction_are_not_counted_as_left_open(seat_engine):
    # A student's deadlocking transfer printed "4 commits, 0 rollbacks, 36 left open"
    # for 36 deadlock victims: left_open is for calls that *returned* with a
    # transaction open. A call that raised in its transaction is counted apart.
    def refuse_some(session, i):
        session.execute(text("SELECT count(*) FROM bookings"))  # the transaction is open
        if i % 2:
            raise _Refused("no")

    r = stress(refuse_some, engine=seat_engine, workers=2, calls=8, allow=(_Refused,), seed=1)
    assert r.ok, r.explain()
    assert (r.returned, r.left_open, r.ended_by_error, r.commits) == (4, 4, 4, 0)
    assert "4 left open (rolled back), 4 ended by an error (rolled back)" in r.explain()


def test_stress_groups_sqlalchemy_errors_by_sqlstate_and_serializable_retry_passes(seat_engine):
    bare = stress(lambda s, i: seats.reserve_seat(s, "12A", f"c{i}"), engine=seat_engine,
                  isolation="serializable", workers=8, calls=16, think_ms=20,
                  invariant=one_booking, seed=2)
    assert not bare.ok and bare.verdict.held is True
    kinds = {(x.exception, x.sqlstate) for x in bare.raised}
    assert kinds == {("OperationalError", "40001")}, bare.explain()
    assert "SQLSTATE 40001 (serialization failure" in bare.explain()
    flat = " ".join(bare.explain().split())
    assert "the application must retry it (retries=N" in flat and "Deadlock (40P01)" not in flat

    with seat_engine.begin() as conn:
        conn.execute(text("DELETE FROM bookings"))
    retrying = stress(lambda s, i: seats.reserve_seat_retrying(s, "12A", f"c{i}", attempts=20),
                      engine=seat_engine, isolation="serializable", workers=8, calls=16,
                      think_ms=20, invariant=one_booking, seed=2)
    assert retrying.ok and retrying.returned == 16, retrying.explain()
    assert retrying.rollbacks >= 1  # the application rolled back and retried by itself


# ---------------------------------------------------------------- plain psycopg2


def add_ten(conn, i):
    cur = conn.cursor()
    cur.execute("SELECT balance FROM accounts WHERE id = 1")
    (balance,) = cur.fetchone()
    cur.execute("UPDATE accounts SET balance = %s WHERE id = 1", (balance + 10,))
    conn.commit()


def add_ten_in_sql(conn, i):
    with conn:
        conn.cursor().execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1")


class Closed(Exception):
    """The application's own refusal (a domain error)."""


def add_ten_unless_closed(conn, i):
    if i % 4 == 0:
        raise Closed("account closed")
    add_ten_in_sql(conn, i)


def balance_is(expected):
    def balance(conn):
        cur = conn.cursor()
        cur.execute("SELECT balance FROM accounts WHERE id = 1")
        return cur.fetchone()[0] == expected
    return balance


@pytest.fixture
def accounts_dsn(txlab_schema_dsn):
    sql(txlab_schema_dsn, "CREATE TABLE accounts (id int PRIMARY KEY, balance int); "
                          "INSERT INTO accounts VALUES (1, 0)")
    return txlab_schema_dsn


def reset(dsn):
    sql(dsn, "UPDATE accounts SET balance = 0")


def test_stress_finds_the_lost_update_and_passes_the_atomic_update(accounts_dsn):
    lost = stress(add_ten, dsn=accounts_dsn, workers=8, calls=24, think_ms=10,
                  invariant=balance_is(240), seed=3)
    assert not lost.ok and lost.verdict.held is False and lost.commits == 24
    reset(accounts_dsn)
    atomic = stress(add_ten_in_sql, dsn=accounts_dsn, workers=8, calls=24, think_ms=10,
                    invariant=balance_is(240), seed=3)
    assert atomic.ok and atomic.commits == 24 and atomic.statements == 24, atomic.explain()


def test_retries_call_again_after_40001(accounts_dsn):
    bare = stress(add_ten, dsn=accounts_dsn, isolation="repeatable read", workers=8, calls=24,
                  think_ms=10, invariant=balance_is(240), seed=4)
    assert not bare.ok
    assert [(x.exception, x.sqlstate) for x in bare.raised] == [("SerializationFailure", "40001")]
    reset(accounts_dsn)
    retried = stress(add_ten, dsn=accounts_dsn, isolation="repeatable read", workers=8,
                     calls=24, think_ms=10, retries=100, invariant=balance_is(240), seed=4)
    assert retried.ok and retried.retried >= 1 and retried.raised == (), retried.explain()


def test_allowed_exceptions_are_outcomes_not_failures(accounts_dsn):
    r = stress(add_ten_unless_closed, dsn=accounts_dsn, workers=4, calls=12,
               invariant=balance_is(90), allow=(Closed,), seed=5)
    assert r.ok, r.explain()
    assert [(x.exception, x.count, x.allowed) for x in r.raised] == [("Closed", 3, True)]
    reset(accounts_dsn)
    strict = stress(add_ten_unless_closed, dsn=accounts_dsn, workers=4, calls=12,
                    invariant=balance_is(90), seed=5)
    assert not strict.ok and strict.unexpected == 3


def test_ctrl_c_stops_the_calls_and_reaches_the_caller(accounts_dsn):
    # Ctrl-C lands in the caller (stress waits for its workers): no new call may start
    # and no worker may be left calling the application after stress has given up.
    def add_ten_slowly(conn, i):
        with conn:
            conn.cursor().execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1;"
                                  " SELECT pg_sleep(0.01)")
        if i == 8:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        stress(add_ten_slowly, dsn=accounts_dsn, workers=4, calls=100_000, seed=6)
    assert not [t.name for t in threading.enumerate()
                if t.name.startswith("txlab-stress-") and t.is_alive()]
    (balance,) = sql(accounts_dsn, "SELECT balance FROM accounts WHERE id = 1")[0]
    assert 90 <= balance < 1_000_000  # stopped after the ninth call, long before the last


def test_the_explanation_fits_80_columns_and_counts_in_words(seat_engine):
    # a long SQL invariant's FAILED line wrapped at 113 columns; "1 commits"
    long_sql = ("SELECT count(*) <= 1 FROM bookings WHERE seat_id = '12A' "
                "AND customer IS NOT NULL AND customer <> 'nobody at all'")
    r = stress(lambda s, i: seats.reserve_seat(s, "12A", f"c{i}"), engine=seat_engine,
               workers=8, calls=16, think_ms=20, invariant=long_sql, seed=1)
    text = r.explain()
    assert not r.ok and "FAILED: the invariant" in text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    one = stress(lambda s, i: seats.reserve_seat_locked(s, "12B", f"c{i}"), engine=seat_engine,
                 workers=1, calls=1, invariant=one_booking, seed=1)
    assert "1 commit, 0 rollbacks" in one.explain(), one.explain()
