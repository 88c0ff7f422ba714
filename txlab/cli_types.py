"""Bounded option types shared by the commands: no NaN, no infinity, sane maxima.

A duration of `nan` or `1e999` would make a run never end; a timeout above
2^31-1 ms is refused by PostgreSQL at connection time. Each bound is in the
option's --help (click shows the range).
"""

from __future__ import annotations

import math

import click

MAX_DURATION_S = 7 * 24 * 3600.0  # a week
MAX_THINK_MS = 60_000.0  # a minute inside every transaction
MAX_RETRIES = 1000
MAX_PG_MS = 2**31 - 1  # PostgreSQL's largest lock_timeout, statement_timeout, deadlock_timeout


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan (which compares false with every bound)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number.", param, ctx)
        return number


def seconds(min: float = 0, max: float = MAX_DURATION_S) -> FiniteFloat:
    return FiniteFloat(min=min, max=max, min_open=min == 0)


def think_ms() -> FiniteFloat:
    return FiniteFloat(min=0, max=MAX_THINK_MS)


def retries() -> click.IntRange:
    return click.IntRange(0, MAX_RETRIES)


def pg_ms(min: int = 0) -> click.IntRange:
    return click.IntRange(min, MAX_PG_MS)
