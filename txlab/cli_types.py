"""Bounded option types shared by the commands: no NaN, no infinity, sane maxima.

A duration of `nan` or `1e999` would make a run never end; a timeout above
2^31-1 ms is refused by PostgreSQL at connection time. Each bound is in the
option's --help (click shows the range).
"""

from __future__ import annotations

import math
import re

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


class Seconds(FiniteFloat):
    """A number of seconds: `5`, `5s`, `1.5 s`, or milliseconds with `ms` (`500ms`).
    Anything else (`5m`, `five`) is refused with what to give instead."""

    name = "seconds"
    _UNIT = re.compile(r"\s*(?P<number>.*?)\s*(?P<unit>ms|s)?\s*", re.IGNORECASE)

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            m = self._UNIT.fullmatch(value)
            try:
                number = float(m["number"])
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds: give e.g. 5 (5s and 500ms "
                          "are taken too)", param, ctx)
            value = number / 1000 if (m["unit"] or "").lower() == "ms" else number
        return super().convert(value, param, ctx)


def seconds(min: float = 0, max: float | None = MAX_DURATION_S,
            min_open: bool | None = None) -> Seconds:
    """Seconds from `min` (excluded when it is 0, unless min_open says) to `max`."""
    return Seconds(min=min, max=max, min_open=min == 0 if min_open is None else min_open)


def think_ms() -> FiniteFloat:
    return FiniteFloat(min=0, max=MAX_THINK_MS)


def retries() -> click.IntRange:
    return click.IntRange(0, MAX_RETRIES)


def pg_ms(min: int = 0) -> click.IntRange:
    return click.IntRange(min, MAX_PG_MS)
