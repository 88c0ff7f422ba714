"""Deferred statements (`tx.execute_later`) against the real server: they travel
with the next statement or the COMMIT, keep their order, and their errors still
abort the attempt that queued them."""

from __future__ import annotations

import threading
from random import Random

import pytest

from txlab import db
from txlab.scenario import Check, Invariant, Scenario, Setup, Strategy, Verdict
from txlab.testing import run
from txlab.tx import Tx


@pytest.fixture
def cur(pg_dsn, schema):
    conn = db.connect(pg_dsn, "txlab-test")
    db.reset_schema(conn, schema)
    with conn.cursor() as c:
        c.execute(f"SET search_path = {schema}")
        c.execute("CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL,"
                  " n int NOT NULL CHECK (n >= 0))")
        yield c
    db.drop_schema(conn, schema)
    conn.close()


def _tx(cur, think_s: float = 0.0) -> Tx:
    return Tx(cur, "BEGIN ISOLATION LEVEL READ COMMITTED", Random(1), {}, think_s,
              threading.Event())


def _notes(cur) -> list:
    cur.execute("SELECT note, n FROM log ORDER BY id")
    return cur.fetchall()


def test_deferred_statements_travel_with_the_commit_in_order(cur):
    tx = _tx(cur)
    tx.execute_later("INSERT INTO log (note, n) VALUES (%s, %s)", ("50% off, it's 'free'", 1))
    tx.execute_later("INSERT INTO log (note, n) VALUES ('two', %s) -- a trailing comment", (2,))
    assert not tx.sent and tx.begun  # nothing reached the server yet; BEGIN is queued
    cur.execute(tx.end_sql("COMMIT"))
    assert cur.statusmessage == "COMMIT"
    assert _notes(cur) == [("50% off, it's 'free'", 1), ("two", 2)]


def test_deferred_statement_goes_with_the_next_one_psycopg2_placeholders_included(cur):
    tx = _tx(cur)
    tx.execute_later("INSERT INTO log (note, n) VALUES ('100%', 3)")
    # a non-int argument: psycopg2 interpolates, so the queued '%' must survive it
    rows = tx.query("SELECT note FROM log WHERE note = %s", ("100%",))
    assert tx.sent and rows == [("100%",)]
    cur.execute(tx.end_sql("ROLLBACK"))
    assert _notes(cur) == []  # it was inside the transaction


def test_think_sends_deferred_statements_before_pausing(cur):
    tx = _tx(cur, think_s=0.001)
    tx.execute_later("INSERT INTO log (note, n) VALUES ('x', 4)")
    tx.think()
    assert tx.sent and cur.statusmessage == "INSERT 0 1"
    assert tx.end_sql("COMMIT") == "COMMIT"
    cur.execute("COMMIT")
    assert _notes(cur) == [("x", 4)]


def _scenario(body) -> Scenario:
    def setup(s: Setup) -> None:
        s.execute("CREATE TABLE log (id serial PRIMARY KEY, n int NOT NULL CHECK (n >= 0))")

    def nothing_negative(db: Check) -> Verdict:
        bad = db.scalar("SELECT count(*) FROM log WHERE n < 0")
        return Verdict(bad == 0, 0, bad)

    return Scenario(name="deferred", summary="deferred statements", teaches="-",
                    description="-", knobs=(), setup=setup,
                    strategies=(Strategy("only", body, "-"),),
                    invariants=(Invariant("nothing negative", nothing_negative),))


def test_an_error_in_a_deferred_statement_aborts_its_attempt(pg_dsn, schema):
    def body(tx: Tx) -> None:
        n = tx.rng.choice((-1, 1))
        tx.execute_later("INSERT INTO log (n) VALUES (%s)", (n,))  # negative: fails at COMMIT

    r = run(_scenario(body), pg_dsn, workers=2, transactions=40, seed=3, schema=schema)
    aborted = r.outcomes.aborted
    assert set(aborted) == {"23514"} and aborted["23514"] > 0
    assert r.outcomes.committed + aborted["23514"] == 40
    assert r.ok  # the failed INSERTs took nothing with them: no COMMIT ran after them


def test_declined_after_a_deferred_statement_leaves_nothing(pg_dsn, schema):
    def body(tx: Tx) -> None:
        tx.execute_later("INSERT INTO log (n) VALUES (%s)", (1,))
        tx.decline("changed my mind")

    r = run(_scenario(body), pg_dsn, workers=2, transactions=10, seed=3, schema=schema)
    assert r.outcomes.declined == 10 and r.outcomes.committed == 0
    conn = db.connect(pg_dsn, "txlab-test")
    with conn.cursor() as c:
        c.execute(f"SELECT count(*) FROM {schema}.log")
        assert c.fetchone() == (0,)
    conn.close()
