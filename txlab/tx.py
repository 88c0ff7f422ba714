"""`Tx`: what a strategy's body receives for one attempt of one transaction.

This is the hot path: every statement of every worker goes through it. It adds
no round trips (BEGIN travels with the first statement) and records micro-ops
by appending tuples to a plain list.

Arguments that are all non-negative ints (most statements of most scenarios) are
put in place with Python's `%`, which yields the very text psycopg2 would send
for a fraction of the cost of its adapters; anything else goes through psycopg2.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from random import Random
from typing import Any

from txlab.errors import Declined, VersionConflict


def _interpolate(sql: str, args) -> str | None:
    """`sql` with `args` in place when they are all ints >= 0, else None (psycopg2's job).

    The text is exactly psycopg2's: its int adapter is `str()` (with a space before
    a minus sign, hence negatives are left to it) and its placeholders are %s and
    %%, as for Python's `%`. Anything unusual (another % directive, a wrong count)
    is left to psycopg2 too, so that it raises its own error.
    """
    if type(args) is not tuple and type(args) is not list:
        return None
    for a in args:
        if type(a) is not int or a < 0:
            return None
    if not _only_s_placeholders(sql):
        return None
    try:
        return sql % tuple(args)
    except TypeError:
        return None


@functools.lru_cache(maxsize=256)  # a scenario has a handful of statements
def _only_s_placeholders(sql: str) -> bool:
    return "%" not in sql.replace("%%", "").replace("%s", "")


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): abandon this attempt."""


class Tx:
    """One attempt of one transaction.

    - `rng`: this transaction's own random generator; a retry gets the same
      sequence, so it retries the same work.
    - `params`: the scenario's knobs.
    - `query`/`one`/`execute` run SQL (psycopg2 placeholders: %s).
    - `read(key, version, value)` / `write(key, version, value)` record what
      the transaction read and installed, for the history;
      `predicate_read(predicate, rows)` records a read by predicate.
    - `think()` pauses for --think-ms inside the transaction.
    - `decline(reason)` ends it by business rule; `conflict()` ends it as an
      optimistic version conflict (retryable).
    - `connection`: the underlying psycopg2 connection, inside the transaction
      (for an ORM Session; see scenarios/limited_stock_cart.py).
    """

    __slots__ = ("_cur", "_begin", "rng", "params", "ops", "_think_s", "_stop")

    def __init__(
        self, cursor, begin_sql: str, rng: Random, params: Mapping[str, Any],
        think_s: float, stop: threading.Event,
    ):
        self._cur = cursor
        self._begin = begin_sql  # sent with the first statement, then None
        self.rng = rng
        self.params = params
        self.ops: list[tuple] = []
        self._think_s = think_s
        self._stop = stop

    @property
    def begun(self) -> bool:
        return self._begin is None

    def execute(self, sql: str, args: Iterable[Any] | None = None) -> None:
        if args:
            text = _interpolate(sql, args)
            if text is not None:
                sql, args = text, None
        if self._begin is not None:
            sql = self._begin + sql
            self._begin = None
        self._cur.execute(sql, args)

    def query(self, sql: str, args: Iterable[Any] | None = None) -> list[tuple]:
        self.execute(sql, args)
        return self._cur.fetchall()

    def one(self, sql: str, args: Iterable[Any] | None = None) -> tuple | None:
        self.execute(sql, args)
        return self._cur.fetchone()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def connection(self):
        """The worker's psycopg2 connection, for a library that needs one (e.g. an
        ORM Session). BEGIN is sent first if it has not been, so everything run on
        it belongs to this transaction. Never commit, roll back or close it."""
        if self._begin is not None:
            self._cur.execute(self._begin)
            self._begin = None
        return self._cur.connection

    def read(self, key: str, version: int, value: Any) -> None:
        self.ops.append(("r", key, version, value))

    def write(self, key: str, version: int, value: Any) -> None:
        self.ops.append(("w", key, version, value))

    def predicate_read(self, predicate: str, rows: Iterable[tuple[str, int, Any]]) -> None:
        """Record a read by predicate (e.g. `SELECT ... WHERE shift = 3`) and the
        (key, version, value) of every row it returned; an empty result is a read too."""
        self.ops.append(("pr", predicate, [list(r) for r in rows]))

    def think(self) -> None:
        if self._think_s <= 0:
            return
        if self._begin is not None:  # the pause must fall inside the transaction
            self._cur.execute(self._begin)
            self._begin = None
        if self._stop.wait(self._think_s):
            raise Interrupted

    def decline(self, reason: str):
        raise Declined(reason)

    def conflict(self, message: str = "row version changed since it was read"):
        raise VersionConflict(message)
