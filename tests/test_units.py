"""Pure unit tests: no database."""

from __future__ import annotations

import pytest

from txlab import checker, db, errors, stats
from txlab.history import ABORTED, COMMITTED, Attempt, History
from txlab.scenario import Knob, resolve


@pytest.mark.parametrize(
    "text,key",
    [
        ("read-committed", "read-committed"), ("READ COMMITTED", "read-committed"),
        ("read_committed", "read-committed"), ("rc", "read-committed"),
        ("Repeatable Read", "repeatable-read"), ("rr", "repeatable-read"),
        ("SERIALIZABLE", "serializable"), ("ser", "serializable"),
        ("read uncommitted", "read-uncommitted"), ("ru", "read-uncommitted"),
    ],
)
def test_isolation_spellings(text, key):
    assert db.parse_isolation(text).key == key


def test_unknown_isolation_lists_choices():
    with pytest.raises(errors.UsageError, match="read-committed, repeatable-read, serializable"):
        db.parse_isolation("snapshot-serial")


def test_read_uncommitted_carries_a_note_and_others_do_not():
    assert "READ COMMITTED" in db.parse_isolation("ru").note
    assert db.parse_isolation("rc").note is None


def test_mask_dsn_url_and_keywords():
    assert "s3cret" not in db.mask_dsn("postgresql://bob:s3cret@db:5433/shop")
    assert "***" in db.mask_dsn("postgresql://bob:s3cret@db:5433/shop")
    masked = db.mask_dsn("host=db user=bob password=s3cret dbname=shop")
    assert "s3cret" not in masked and "dbname=shop" in masked


def test_describe_target_names_host_port_database_not_password():
    text = db.describe_target("postgresql://bob:s3cret@db.example:5433/shop")
    assert text == "host db.example, port 5433, database shop"


def test_mask_text_removes_password_from_driver_messages():
    dsn = "postgresql://bob:s3cret@db:5433/shop"
    assert "s3cret" not in db.mask_text('password "s3cret" rejected', dsn)


@pytest.mark.parametrize("dsn", ["postgresql://root:pw@localhost/db",
                                 "postgresql://root:p@localhost:5x/db",
                                 "host=db password=pw port=x"])
def test_a_short_password_is_masked_inside_the_dsn_libpq_quotes(dsn):
    # A password under three characters is too short to mask wherever it appears, but
    # libpq quotes the DSN itself (or its rest) when it cannot parse it: there it goes.
    secret = "pw" if "pw" in dsn else "p"
    quoted = f'missing "=" after "{dsn}" in string'
    masked = db.mask_text(quoted, dsn)
    assert f":{secret}@" not in masked and f"={secret} " not in masked, masked
    assert "***" in masked
    assert db.mask_text("the pw word stays", "postgresql://root:pw@localhost/db") == \
        "the pw word stays"  # the neighbour: free text is not over-masked


def test_a_url_of_another_database_is_refused_as_such():
    with pytest.raises(errors.UsageError, match=r"is a mysql:// URL; txlab works with "
                                                r"PostgreSQL only") as exc:
        db.parse_dsn("mysql://root:pw@localhost/db")
    assert ":pw@" not in str(exc.value)


def test_a_common_password_leaves_the_message_readable():
    # "postgres" shares runs of three with PostgreSQL and localhost: those words stay
    # readable (they say nothing of it); the password itself is masked wherever it is.
    dsn = "postgresql://postgres:postgres@localhost:1/postgres"
    text = str(db.connect_error(dsn, 'connection to server at "localhost" (127.0.0.1), port 1'
                                     " failed: Connection refused; password postgres"))
    assert text.startswith("cannot connect to PostgreSQL at host localhost, port 1, database ***")
    assert 'server at "localhost"' in text and "Connection refused" in text
    assert "password postgres" not in text and "password ***" in text
    dsn = "postgresql://bob:Qx7cannot@db/x"  # a run inside a plain word is kept only there
    assert db.mask_text("cannot parse Qx7can", dsn) == "cannot parse ***"


def test_a_short_password_is_masked_as_a_word_not_inside_other_words():
    # A newcomer's password "val" turned "invalid integer value" into "in***id integer
    # ***ue", and "hunter2" (a run "nte") turned "integer" into "i***ger".
    msg = 'invalid integer value "5432:5433" for connection option "port"'
    assert db.mask_text(msg, "postgresql://student:val@localhost/db") == msg
    assert db.mask_text(msg, "postgresql://student:hunter2@localhost/db") == msg
    # the neighbours: the password itself, as a word or quoted, is masked
    assert db.mask_text("password val rejected", "postgresql://s:val@h/db") == \
        "password *** rejected"
    assert db.mask_text('role "hunter2" and hunter2.', "postgresql://s:hunter2@h/db") == \
        'role "***" and ***.'


def test_a_long_password_is_masked_by_its_runs_unless_they_are_a_plain_word():
    dsn = "postgresql://bob:my-secret-9@db/x"
    assert db.mask_text("the secretary keeps a secret", dsn) == "the secretary keeps a secret"
    assert db.mask_text('value "secret" refused', dsn) == 'value "***" refused'  # quoted part
    assert db.mask_text("cannot parse t-secret-", dsn) == "cannot parse t***"
    assert db.mask_text("my-secret-9", dsn) == "***"


def test_the_readme_docker_dsn_keeps_its_user_and_database_readable():
    dsn = "postgresql://txlab:s3cret@localhost:54320/txlab"
    assert db.describe_target(dsn) == "host localhost, port 54320, database txlab"
    assert db.mask_dsn(dsn) == "postgresql://txlab:***@localhost:54320/txlab"
    # a password that is also the database's name is still masked there
    assert db.describe_target("postgresql://txlab:txlab@localhost/txlab").endswith("database ***")


@pytest.mark.parametrize("url", ["postgresql://alice:Qx7@ss@localhost/db",
                                 "postgresql://alice:Qx7/ss@localhost/db",
                                 "postgresql://alice:pw@localhost/db@x"])
def test_an_unescaped_at_or_slash_in_a_url_password_is_refused(url):
    # libpq ends the user-info at the first @ and the host at the first /: the rest of
    # the password became the host ("ss@localhost"), which messages showed as is.
    with pytest.raises(errors.UsageError, match="Percent-encode") as exc:
        db.parse_dsn(url, "--dsn")
    assert "ss@localhost" not in str(exc.value) and "Qx7" not in str(exc.value)
    assert "%40" in str(exc.value)


def test_an_at_in_a_percent_encoded_password_or_in_the_query_is_fine():
    assert db.parse_dsn("postgresql://alice:Qx7%40ss@localhost/db")["password"] == "Qx7@ss"
    assert db.parse_dsn("postgresql://h/db?user=me@corp")["user"] == "me@corp"
    assert db.parse_dsn("postgresql://alice:a:b@h/db")["password"] == "a:b"


@pytest.mark.parametrize(
    "code,msg,cause",
    [
        ("40001", "could not serialize access due to concurrent update", "40001-concurrent-update"),
        ("40001", "could not serialize access due to read/write dependencies among transactions",
         "40001-rw-dependencies"),
        ("40P01", "deadlock detected", "40P01"),
        ("55P03", "canceling statement due to lock timeout", "55P03"),
        ("23505", "duplicate key value", "23505"),
        (None, "server closed the connection unexpectedly", "connection-lost"),
    ],
)
def test_classify_by_sqlstate(code, msg, cause):
    assert errors.classify(code, msg) == cause


def test_cause_names_and_sqlstates():
    assert errors.cause_sqlstate("40001-rw-dependencies") == "40001"
    assert errors.cause_sqlstate("40P01") == "40P01"
    assert errors.cause_sqlstate("version-conflict") is None
    assert errors.cause_name("40P01") == "deadlock detected"
    assert errors.cause_name("22012") == "division by zero"


def _a(worker, txn, attempt, outcome, ops, t=0, cause=None):
    return Attempt(worker, txn, attempt, t, t + 10, outcome, cause, None, None, ops)


def _check(*attempts):
    h = History({"isolation": "READ COMMITTED"}, [("w", "x", 1, 100), ("w", "y", 1, 0)],
                list(attempts))
    return checker.check(h)


def test_lost_update_detected_and_allowed_at_read_committed():
    t1 = _a(0, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "x", 2, 70)], t=1)
    t2 = _a(1, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "x", 3, 50)], t=2)
    result = _check(t1, t2)
    assert result.anomalies["lost update"]["count"] == 1
    assert result.anomalies["lost update"]["status"] == "allowed"
    assert result.verdict == "valid"


def test_lost_update_neighbours_not_flagged():
    # the second writer read the first one's version: a proper read-modify-write chain
    chain = _check(_a(0, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "x", 2, 70)], t=1),
                   _a(1, 1, 0, COMMITTED, [("r", "x", 2, 70), ("w", "x", 3, 20)], t=2))
    assert chain.anomalies == {}
    # the same race, but the second transaction aborted (first-updater-wins)
    aborted = _check(_a(0, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "x", 2, 70)], t=1),
                     _a(1, 1, 0, ABORTED, [("r", "x", 1, 100)], t=2,
                        cause="40001-concurrent-update"))
    assert aborted.anomalies == {}
    # both read the same version but only one wrote that key
    one_writer = _check(_a(0, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "x", 2, 70)], t=1),
                        _a(1, 1, 0, COMMITTED, [("r", "x", 1, 100), ("w", "y", 2, 1)], t=2))
    assert "lost update" not in one_writer.anomalies


def test_outcomes_count_retries_and_failures():
    history = [
        _a(0, 1, 0, ABORTED, [], cause="40001-concurrent-update"),
        _a(0, 1, 1, COMMITTED, []),
        _a(0, 2, 0, ABORTED, [], cause="40P01"),
        _a(0, 2, 1, ABORTED, [], cause="40P01"),
        _a(1, 1, 0, "declined", [], cause="insufficient funds"),
    ]
    out = stats.outcomes(history)
    assert out.committed == 1 and out.declined == 1 and out.retries == 2
    assert out.aborted == {"40001-concurrent-update": 1, "40P01": 2}
    assert out.failed == 1


def test_latency_includes_retries():
    history = [
        Attempt(0, 1, 0, 1_000_000, 2_000_000, ABORTED, "40P01", None, None, []),
        Attempt(0, 1, 1, 3_000_000, 5_000_000, COMMITTED, None, None, None, []),
    ]
    assert stats.committed_latencies_ns(history) == [4_000_000]


def test_percentiles_nearest_rank():
    p = stats.percentiles_ms([i * 1_000_000 for i in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"]) == (50.0, 95.0, 99.0, 100.0)
    assert stats.percentiles_ms([])["p50"] is None


def test_knob_parsing_and_bounds():
    k = Knob("accounts", 10, "number of accounts", min=2)
    assert k.parse("5") == 5
    with pytest.raises(errors.UsageError, match="at least 2"):
        k.parse("1")
    with pytest.raises(errors.UsageError, match="expected int"):
        k.parse("many")
    c = Knob("lock_order", "sorted", "order", choices=("sorted", "as-drawn"))
    with pytest.raises(errors.UsageError, match="sorted, as-drawn"):
        c.parse("random")


def test_unknown_scenario_suggests_the_closest():
    with pytest.raises(errors.UsageError, match="Did you mean 'bank-transfer'"):
        resolve("bank-transfers")


def test_bank_transfer_params_validated():
    s = resolve("bank-transfer")
    assert s.params({"max-amount": "5"})["max_amount"] == 5
    with pytest.raises(errors.UsageError, match="no knob 'colour'"):
        s.params({"colour": "red"})
