"""Tests for seats.py, walked through in docs/testing-your-code.md."""
from functools import partial

import pytest
from seats import Base, Seat, reserve_seat, reserve_seat_locked, reserve_seat_retrying
from sqlalchemy import text

from txlab.testing import interleave


def at_most_one_booking(session):
    return session.scalar(text("SELECT count(*) FROM bookings")) <= 1


@pytest.mark.parametrize("reserve, isolation, safe", [
    (reserve_seat, "read committed", False),
    (reserve_seat, "repeatable read", False),
    (reserve_seat_locked, "read committed", True),
    (reserve_seat_retrying, "serializable", True),
])
def test_two_bookers_one_seat(txlab_engine, reserve, isolation, safe):
    Base.metadata.create_all(txlab_engine)
    with txlab_engine.begin() as conn:
        conn.execute(Seat.__table__.insert(), {"id": "12A"})
    ann, bob = (partial(reserve, seat_id="12A", customer=who) for who in ("ann", "bob"))
    result = interleave([ann, bob], engine=txlab_engine, isolation=isolation,
                        invariant=at_most_one_booking)
    assert result.ok == safe, result.explain()
    assert result.exhausted or not safe  # safe means: every schedule was run, none failed
