"""Hypothesis strategies for testing application code with txlab.

    from hypothesis import given
    from txlab.testing import interleave, strategies as tx

    @given(level=tx.isolation_levels(), schedule=tx.schedules())
    def test_no_double_booking(txlab_engine, level, schedule):
        r = interleave([book, book], engine=txlab_engine, isolation=level,
                       invariant=one_booking, schedule=schedule)
        assert r.ok, r.explain()

A schedule is a list of small integers, one per point where more than one
session could go: 0 lets the session that ran last go on, k switches to the
k-th other one (in session order); past the end of the list, the last session
goes on. So hypothesis shrinks a failing schedule towards fewer switches
(smaller numbers) and fewer decisions (a shorter list).
"""

from __future__ import annotations

from hypothesis import strategies as st

LEVELS = ("read-committed", "repeatable-read", "serializable")


def isolation_levels(*, read_uncommitted: bool = False) -> st.SearchStrategy[str]:
    """PostgreSQL's isolation levels (READ UNCOMMITTED behaves as READ COMMITTED,
    so it is left out unless asked for)."""
    levels = (("read-uncommitted",) if read_uncommitted else ()) + LEVELS
    return st.sampled_from(levels)


def worker_counts(min_workers: int = 2, max_workers: int = 8) -> st.SearchStrategy[int]:
    """How many threads `stress` runs at once."""
    return st.integers(min_workers, max_workers)


def schedules(sessions: int = 2, max_decisions: int = 24) -> st.SearchStrategy[list[int]]:
    """Schedules for `interleave(..., schedule=...)` (see the module's docstring)."""
    return st.lists(st.integers(0, max(sessions - 1, 0)), max_size=max_decisions)
