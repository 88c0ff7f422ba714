"""txlab.testing's invariants and arguments: an SQL invariant is judged on every row
and must be boolean; a forgotten `return` is caught through functools.partial; an
assert in a helper counts; a wrong call is shown, not hidden; wrong argument types
and a level the application sets in SQL are handled. Each with a neighbour."""

from __future__ import annotations

from functools import partial

import pytest
from apps import sql

from txlab.errors import UsageError
from txlab.testing import interleave, stress


@pytest.fixture
def wallets_dsn(txlab_schema_dsn):
    # wallet 0 is never touched; wallet 1 is the one the racy withdrawals lose updates on
    sql(txlab_schema_dsn, "CREATE TABLE wallets (id int PRIMARY KEY, balance int);"
                          "CREATE TABLE ledger (wallet int, delta int);"
                          "INSERT INTO wallets VALUES (0, 0), (1, 100);"
                          "INSERT INTO ledger VALUES (1, 100)")
    return txlab_schema_dsn


def withdraw(conn, wallet=1, amount=10):
    """Read, then write the computed balance: a lost update at READ COMMITTED."""
    cur = conn.cursor()
    cur.execute("SELECT balance FROM wallets WHERE id = %s", (wallet,))
    (balance,) = cur.fetchone()
    cur.execute("UPDATE wallets SET balance = %s WHERE id = %s", (balance - amount, wallet))
    cur.execute("INSERT INTO ledger VALUES (%s, %s)", (wallet, -amount))
    conn.commit()


def withdraw_locked(conn, wallet=1, amount=10):
    cur = conn.cursor()
    cur.execute("SELECT balance FROM wallets WHERE id = %s FOR UPDATE", (wallet,))
    (balance,) = cur.fetchone()
    cur.execute("UPDATE wallets SET balance = %s WHERE id = %s", (balance - amount, wallet))
    cur.execute("INSERT INTO ledger VALUES (%s, %s)", (wallet, -amount))
    conn.commit()


PER_ROW = ("SELECT w.balance = coalesce((SELECT sum(delta) FROM ledger l WHERE l.wallet = w.id),"
           " 0) FROM wallets w ORDER BY w.id")


def test_an_sql_invariant_is_judged_on_every_row_not_the_first(wallets_dsn):
    # wallet 0 (the first row) is fine; wallet 1 lost an update: that must fail
    r = interleave([withdraw, withdraw], dsn=wallets_dsn, isolation="rc", invariant=PER_ROW)
    assert not r.ok and "returned false (row 2 of 2)" in r.schedule.failure, r.explain()
    ok = interleave([withdraw_locked, withdraw_locked], dsn=wallets_dsn, isolation="rc",
                    invariant=PER_ROW)
    assert ok.ok, ok.explain()


@pytest.mark.parametrize("query, words", [
    ("SELECT CASE WHEN sum(balance) = 80 THEN 'ok' ELSE 'broken' END FROM wallets",
     "(str), not a boolean"),
    ("SELECT balance FROM wallets WHERE id = 1", "not a boolean"),
    ("SELECT true, false", "returns 2 columns"),
    ("SELECT balanse >= 0 FROM wallets", "is wrong: column \"balanse\" does not exist"),
])
def test_an_sql_invariant_that_is_not_one_boolean_is_refused(wallets_dsn, query, words):
    with pytest.raises(UsageError, match="invariant query") as exc:
        interleave([withdraw_locked, withdraw_locked], dsn=wallets_dsn, invariant=query)
    assert words in str(exc.value)


def test_an_sql_invariant_with_no_row_or_null_does_not_hold(wallets_dsn):
    r = stress(withdraw_locked, dsn=wallets_dsn, workers=1, calls=1,
               invariant="SELECT true FROM wallets WHERE id = 7")
    assert r.verdict.held is False and r.verdict.detail == "returned no row"
    r = stress(withdraw_locked, dsn=wallets_dsn, workers=1, calls=1,
               invariant="SELECT NULL::boolean")
    assert r.verdict.held is False and r.verdict.detail == "returned NULL"


def balance_check(conn, wallet):
    cur = conn.cursor()
    cur.execute("SELECT balance = 80 FROM wallets WHERE id = %s", (wallet,))
    cur.fetchone()[0]  # noqa: B018  (the forgotten return)


def _balances_match(conn):
    cur = conn.cursor()
    cur.execute(PER_ROW)
    assert all(ok for (ok,) in cur.fetchall()), "a balance disagrees with its ledger"


def ledger_consistent(conn):
    _balances_match(conn)  # the assert is in the helper


def test_a_partial_invariant_that_forgets_return_is_refused(wallets_dsn):
    with pytest.raises(UsageError, match="balance_check returned None"):
        interleave([withdraw, withdraw], dsn=wallets_dsn, isolation="rc",
                   invariant=partial(balance_check, wallet=1))


def test_an_invariant_whose_helper_asserts_counts_none_as_held(wallets_dsn):
    ok = interleave([withdraw_locked, withdraw_locked], dsn=wallets_dsn, isolation="rc",
                    invariant=ledger_consistent)
    assert ok.ok, ok.explain()
    bad = interleave([withdraw, withdraw], dsn=wallets_dsn, isolation="rc",
                     invariant=ledger_consistent)
    assert not bad.ok and "a balance disagrees with its ledger" in bad.schedule.failure


def test_a_wrong_call_is_raised_not_called_unwatched(wallets_dsn):
    # withdraw takes (conn, wallet, amount): a partial with a typo fails before any SQL
    wrong = partial(withdraw, walet=1)
    with pytest.raises(TypeError, match="walet") as exc:
        interleave([wrong, wrong], dsn=wallets_dsn, invariant=PER_ROW)
    assert any("before any statement" in n for n in exc.value.__notes__)
    def once(conn):  # stress calls fn(session, i): one argument too few
        withdraw_locked(conn)

    with pytest.raises(TypeError, match="positional argument") as exc:
        stress(once, dsn=wallets_dsn, workers=1, calls=2, invariant=PER_ROW)
    assert any("before any statement" in n for n in exc.value.__notes__)


def test_arguments_of_the_wrong_kind_get_a_usage_error(wallets_dsn, txlab_engine):
    with pytest.raises(UsageError, match="takes a list of functions"):
        interleave(withdraw, dsn=wallets_dsn, invariant=PER_ROW)
    with pytest.raises(UsageError, match="dsn= takes a PostgreSQL URL .* engine="):
        interleave([withdraw, withdraw], dsn=txlab_engine, invariant=PER_ROW)


def test_a_sqlalchemy_url_is_taken_as_dsn(wallets_dsn, txlab_engine):
    # the engine's URL string (same schema as wallets_dsn), as a developer copies it
    url = txlab_engine.url.render_as_string(hide_password=False)
    assert url.startswith("postgresql+psycopg2://")
    r = interleave([withdraw, withdraw], dsn=url, isolation="rc", invariant=PER_ROW)
    assert not r.ok and "returned false" in r.schedule.failure, r.explain()


def serializable_session(conn):
    cur = conn.cursor()
    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    conn.commit()
    withdraw(conn)


def test_a_level_the_application_sets_in_sql_labels_the_run_and_its_spec(wallets_dsn):
    r = interleave([serializable_session, serializable_session], dsn=wallets_dsn,
                   invariant=PER_ROW)
    begins = {st.begin for s in r.explored for st in s.steps if st.begin}
    assert "BEGIN ISOLATION LEVEL SERIALIZABLE" in begins, begins
    if not r.ok:  # a 40001 schedule: its spec replays at SERIALIZABLE
        assert "BEGIN ISOLATION LEVEL SERIALIZABLE" in r.spec
    # the neighbour: without the SET, the application's level is the server's default
    plain = interleave([withdraw, withdraw], dsn=wallets_dsn, invariant=PER_ROW)
    assert {st.begin for s in plain.explored for st in s.steps if st.begin} == {
        "BEGIN ISOLATION LEVEL READ COMMITTED"}


def test_stress_with_a_dsn_keeps_one_connection_per_worker(wallets_dsn):
    # as documented (and as a pool lends them): 2 workers, 20 calls, 2 backends
    pids = set()

    def which(conn, i):
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pids.add(cur.fetchone()[0])  # left in a transaction: rolled back, kept

    r = stress(which, dsn=wallets_dsn, workers=2, calls=20, invariant="SELECT true")
    assert r.ok and r.calls == 20 and 1 <= len(pids) <= 2, (r.explain(), pids)
    left = sql(wallets_dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'txlab-app'")
    assert left == [(0,)]  # closed at the end


def test_a_given_schedule_is_checked_and_not_told_to_raise_max_schedules(wallets_dsn):
    with pytest.raises(UsageError, match="schedule must be a list of integers >= 0"):
        interleave([withdraw_locked] * 2, dsn=wallets_dsn, invariant=PER_ROW, schedule=[5, -1])
    r = interleave([withdraw_locked] * 2, dsn=wallets_dsn, invariant=PER_ROW, schedule=[0, 1])
    assert r.ok and "the given schedule" in r.explain()
    assert "max_schedules" not in r.explain()


def test_a_stress_invariant_that_raises_fails_in_repr_as_in_explain(wallets_dsn):
    def broken(conn):
        raise KeyError("wallet 9")

    r = stress(withdraw_locked, dsn=wallets_dsn, workers=1, calls=1, invariant=broken)
    assert not r.ok and "FAILED" in r.explain()
    assert repr(r).startswith("<StressResult FAILED") and "raised (FAILED)" in repr(r)
    none = stress(withdraw_locked, dsn=wallets_dsn, workers=1, calls=1)
    assert "invariant not given" in repr(none) and none.ok
