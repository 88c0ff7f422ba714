"""Example from docs/property-testing.md: property tests for your own transaction code.

Your code: redeem a limited coupon. The property: never more redemptions than the
coupon's limit, whatever the workers, limit and seed. Run it with
`pytest docs/examples/test_coupons.py` (TXLAB_TEST_DSN, or an embedded server).
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab.scenario import Invariant, Knob, Scenario, Strategy, Verdict
from txlab.testing import run

# ---- the application code under test: two versions of "redeem a coupon" ----

def redeem_check_then_insert(tx):
    """Count redemptions, then insert if below the limit (racy)."""
    (limit, used) = tx.one("SELECT c.max_uses, (SELECT count(*) FROM redemptions)"
                           " FROM coupon c WHERE c.id = 1")
    tx.think()
    if used >= limit:
        tx.decline("coupon used up")
    tx.execute("INSERT INTO redemptions (customer) VALUES (%s)", (tx.rng.randint(1, 10**6),))


def redeem_with_counter(tx):
    """Decrement a counter guarded in SQL (safe at READ COMMITTED)."""
    row = tx.one("UPDATE coupon SET remaining = remaining - 1, version = version + 1"
                 " WHERE id = 1 AND remaining > 0 RETURNING remaining, version")
    if row is None:
        tx.decline("coupon used up")
    tx.write("coupon:1", row[1], row[0])
    tx.execute("INSERT INTO redemptions (customer) VALUES (%s)", (tx.rng.randint(1, 10**6),))


# ---- the harness: txlab's scenario contract, written inline ----

def setup(s):
    s.execute("CREATE TABLE coupon (id int PRIMARY KEY, max_uses int, remaining int, version int)")
    s.execute("CREATE TABLE redemptions (id serial PRIMARY KEY, customer int)")
    s.execute("INSERT INTO coupon VALUES (1, %s, %s, 1)", (s.params["limit"], s.params["limit"]))
    s.initial("coupon:1", 1, s.params["limit"])


def within_limit(db):
    used = db.scalar("SELECT count(*) FROM redemptions")
    return Verdict(used <= db.params["limit"], f"<= {db.params['limit']}", used)


COUPONS = Scenario(
    name="coupons", summary="redeem a limited coupon", teaches="predicate write skew",
    description=__doc__, knobs=(Knob("limit", 5, "redemptions allowed", min=1),),
    setup=setup,
    strategies=(Strategy("check-then-insert", redeem_check_then_insert, "count, then insert"),
                Strategy("counter", redeem_with_counter, "guarded decrement")),
    invariants=(Invariant("never over the limit", within_limit),),
)

RUNS = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))


@RUNS
@given(limit=st.integers(1, 10), workers=st.integers(2, 8), seed=st.integers(0, 2**31 - 1))
def test_counter_never_exceeds_the_limit(txlab_dsn, limit, workers, seed):
    result = run(COUPONS, txlab_dsn, strategy="counter", isolation="read-committed",
                 workers=workers, transactions=30, seed=seed, params={"limit": limit})
    assert result.ok, result.explain()


@RUNS
@given(limit=st.integers(1, 10), seed=st.integers(0, 2**31 - 1))
def test_check_then_insert_is_safe_only_at_serializable(txlab_dsn, limit, seed):
    result = run(COUPONS, txlab_dsn, strategy="check-then-insert", isolation="serializable",
                 workers=6, transactions=30, seed=seed, retries=50, params={"limit": limit})
    assert result.ok, result.explain()


def test_check_then_insert_oversells_at_read_committed(txlab_dsn):
    # 8 workers pause 20 ms between the count and the insert: they all see room.
    result = run(COUPONS, txlab_dsn, strategy="check-then-insert", isolation="read-committed",
                 workers=8, transactions=16, seed=1, think_ms=20, params={"limit": 1})
    assert not result.ok
    assert result.invariants["never over the limit"] is False
