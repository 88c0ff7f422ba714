"""`Tx`: what a strategy's body receives for one attempt of one transaction.

This is the hot path: every statement of every worker goes through it. It adds
no round trips (BEGIN travels with the first statement) and records micro-ops
by appending tuples to a plain list. A statement whose result the body does not
need can be deferred (`execute_later`): it travels with the next statement, or
with the COMMIT, saving a round trip.

Arguments that are all non-negative ints (most statements of most scenarios) are
put in place with Python's `%`, which yields the very text psycopg2 would send
for a fraction of the cost of its adapters; anything else goes through psycopg2.
"""

from __future__ import annotations

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
    plain = _PLAIN.get(sql)
    if plain is None:
        plain = _PLAIN[sql] = _only_s_placeholders(sql)
    if not plain:
        return None
    try:
        return sql % tuple(args)
    except TypeError:
        return None


def _only_s_placeholders(sql: str) -> bool:
    return "%" not in sql.replace("%%", "").replace("%s", "")


# statement text -> it has only %s and %% placeholders. A scenario has a handful of
# statements; a dict lookup of a constant string is the cheapest test there is.
# Bounded: cleared if some scenario builds statement texts on the fly.
_PLAIN: dict[str, bool] = {}
_PLAIN_MAX = 1024


# Between statements sent in one round trip: the newline ends a trailing `--` comment.
JOIN = "\n;\n"


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): abandon this attempt."""


class Tx:
    """One attempt of one transaction.

    - `rng`: this transaction's own random generator; a retry gets the same
      sequence, so it retries the same work.
    - `params`: the scenario's knobs.
    - `query`/`one`/`execute` run SQL (psycopg2 placeholders: %s).
    - `execute_later` queues a statement whose result is not needed; it is sent
      in the same round trip as the next statement (or the COMMIT), and an error
      it raises surfaces there, still inside this attempt.
    - `read(key, version, value)` / `write(key, version, value)` record what
      the transaction read and installed, for the history;
      `predicate_read(predicate, rows)` records a read by predicate.
    - `think()` pauses for --think-ms inside the transaction.
    - `decline(reason)` ends it by business rule; `conflict()` ends it as an
      optimistic version conflict (retryable).
    - `connection`: the underlying psycopg2 connection, inside the transaction
      (for an ORM Session; see scenarios/limited_stock_cart.py).
    """

    __slots__ = ("_cur", "_head", "_begin_sql", "begun", "sent", "rng", "params", "ops",
                 "_think_s", "_stop")

    def __init__(
        self, cursor, begin_sql: str, rng: Random, params: Mapping[str, Any],
        think_s: float, stop: threading.Event,
    ):
        self._cur = cursor
        self._begin_sql = begin_sql
        # What goes in front of the next statement: BEGIN until it is sent, then the
        # statements queued by execute_later (BEGIN first if it was still unsent).
        self._head: str | None = begin_sql
        # BEGIN was sent, or is queued with a deferred statement: there is something to end.
        self.begun = False
        self.sent = False  # something reached the server: a ROLLBACK is needed to end it
        self.rng = rng
        self.params = params
        self.ops: list[tuple] = []
        self._think_s = think_s
        self._stop = stop

    def _restart(self, seed: int) -> None:
        """Ready for the next attempt (the runner reuses one Tx per worker): nothing
        sent, no operations, the generator back at `seed` (a retry repeats its draws).
        `rng` is a TxRandom: its reset(seed) is written out here (one call fewer for
        every attempt)."""
        self._head = self._begin_sql
        self.begun = self.sent = False
        self.ops = []
        rng = self.rng
        rng._state = rng._bits = seed
        rng._nbits = 64
        rng.gauss_next = None

    def _text(self, sql: str, args) -> str:
        """`sql` with `args` in place, exactly as psycopg2 would send it."""
        if len(_PLAIN) > _PLAIN_MAX:
            _PLAIN.clear()
        text = _interpolate(sql, args)
        return text if text is not None else self._cur.mogrify(sql, args).decode()

    def _send(self, sql: str, args, later: bool = False) -> None:
        """Send `sql` with `args` in place and whatever is queued in front of it (BEGIN,
        deferred statements); with `later`, queue it instead (execute_later). This runs
        for every statement of every worker: a tuple of non-negative ints into a
        statement already known to hold only %s and %% (a dict lookup) is put in place
        right here."""
        if args is not None:
            if type(args) is tuple and _PLAIN.get(sql):
                for a in args:
                    if type(a) is not int or a < 0:
                        sql = self._text(sql, args)
                        break
                else:
                    try:
                        sql = sql % args
                    except TypeError:  # a wrong count: psycopg2 says so in its own words
                        sql = self._text(sql, args)
            else:
                sql = self._text(sql, args)
        head = self._head
        if later:
            self._head = sql if head is None else head + JOIN + sql
            self.begun = True
            return
        if head is not None:
            sql = head + JOIN + sql
            self._head = None
            self.begun = True
        self.sent = True
        self._cur.execute(sql)

    def execute(self, sql: str, args: Iterable[Any] | None = None) -> None:
        self._send(sql, args)

    def execute_later(self, sql: str, args: Iterable[Any] | None = None) -> None:
        """Queue a statement whose result is not needed (no rows, no rowcount): it is
        sent with the next statement or the COMMIT, one round trip fewer. Its errors
        surface there, inside this attempt, so the attempt still aborts with them."""
        self._send(sql, args, True)

    def flush(self) -> None:
        """Send BEGIN and deferred statements now (before a pause, or before handing
        the connection to a library)."""
        head = self._head
        if head is not None:
            self._head = None
            self.begun = self.sent = True
            self._cur.execute(head)

    def end_sql(self, command: str) -> str:
        """`command` (COMMIT) with any deferred statements in front: one round trip.
        The caller sends it: from here on a ROLLBACK may be needed."""
        self.sent = True
        head = self._head
        if head is None:
            return command
        self._head = None
        self.begun = True
        return head + JOIN + command

    def query(self, sql: str, args: Iterable[Any] | None = None) -> list[tuple]:
        self._send(sql, args)
        return self._cur.fetchall()

    def one(self, sql: str, args: Iterable[Any] | None = None) -> tuple | None:
        self._send(sql, args)
        return self._cur.fetchone()

    @property
    def rowcount(self) -> int:
        """Rows the last statement run (not a deferred one) returned or changed."""
        return self._cur.rowcount

    @property
    def connection(self):
        """The worker's psycopg2 connection, for a library that needs one (e.g. an
        ORM Session). BEGIN is sent first if it has not been, so everything run on
        it belongs to this transaction. Never commit, roll back or close it."""
        self.flush()
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
        self.flush()  # the pause falls inside the transaction, after what it did so far
        if self._stop.wait(self._think_s):
            raise Interrupted

    def decline(self, reason: str):
        raise Declined(reason)

    def conflict(self, message: str = "row version changed since it was read"):
        raise VersionConflict(message)
