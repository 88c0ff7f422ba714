"""txlab.testing refuses to pass what it did not test: functions whose SQL never went
through the engine it was given, and an invariant that returns None with no assert
in it (a forgotten `return`). Each guard has a neighbour that must still pass."""

from __future__ import annotations

import pytest
from apps import one_booking, seats
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from txlab.errors import UsageError
from txlab.testing import interleave, stress


@pytest.fixture
def own_engine(seat_engine):
    """The application's own module-level engine, beside the one txlab watches."""
    engine = create_engine(seat_engine.url)
    yield engine
    engine.dispose()


def test_interleave_refuses_functions_that_bypass_the_engine_it_was_given(seat_engine, own_engine):
    def book(_session, who):
        with Session(own_engine) as s:
            return seats.reserve_seat_locked(s, "12A", who)

    fns = [lambda s: book(s, "a"), lambda s: book(s, "b")]
    with pytest.raises(UsageError, match="went through the engine .* so nothing was tested"):
        interleave(fns, engine=seat_engine, invariant=one_booking)


def test_stress_refuses_a_function_that_bypasses_the_engine_it_was_given(seat_engine, own_engine):
    def book(_session, i):
        with Session(own_engine) as s:
            return seats.reserve_seat_locked(s, "12A", f"c{i}")

    with pytest.raises(UsageError, match="no statement of book went through the engine"):
        stress(book, engine=seat_engine, workers=2, calls=4, invariant=one_booking)


def forgot_return(session):
    session.scalar(text("SELECT count(*) FROM bookings WHERE seat_id = '12A'")) <= 1  # noqa: B015


def asserts(session):
    n = session.scalar(text("SELECT count(*) FROM bookings WHERE seat_id = '12A'"))
    assert n <= 1, f"{n} bookings of 12A"


def _racy(s, i):
    return seats.reserve_seat(s, "12A", f"c{i}")


def test_an_invariant_that_returns_none_without_an_assert_is_refused(seat_engine):
    with pytest.raises(UsageError, match="forgot_return returned None: return True"):
        stress(_racy, engine=seat_engine, workers=4, calls=8, think_ms=20,
               invariant=forgot_return, seed=1)
    with pytest.raises(UsageError, match="returned None"):
        interleave([lambda s: _racy(s, 1), lambda s: _racy(s, 2)], engine=seat_engine,
                   invariant=lambda s: None)


def test_an_assert_style_invariant_still_counts_none_as_held(seat_engine):
    safe = stress(lambda s, i: seats.reserve_seat_locked(s, "12A", f"c{i}"), engine=seat_engine,
                  workers=4, calls=8, think_ms=20, invariant=asserts, seed=1)
    assert safe.ok and safe.verdict.held is True, safe.explain()


def test_an_assert_style_invariant_that_fails_still_fails(seat_engine):
    racy = stress(_racy, engine=seat_engine, workers=8, calls=16, think_ms=20, invariant=asserts,
                  seed=1)
    assert not racy.ok and racy.verdict.held is False and "bookings of 12A" in racy.explain()
