"""Statement-level hooks on the application's own database objects.

txlab watches the application; it never wraps it or takes over its transactions.
Two ways in, one interface out:

- a SQLAlchemy Engine: listeners for the engine's own events (before_cursor_execute,
  after_cursor_execute, handle_error, commit, rollback), removed afterwards;
- a DSN: a psycopg2 connection made with a `connection_factory` whose commit() and
  rollback(), and whose cursors' execute() and executemany(), report before and after.

Every event goes to the Observer bound to the calling thread (`Hooks.bound`);
threads without one (the test's own, other users of the engine) pass through.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg2
import psycopg2.extensions as ext
import psycopg2.sql

# psycopg2's isolation_level values, as SQL
LEVEL_SQL = {
    ext.ISOLATION_LEVEL_READ_UNCOMMITTED: "READ UNCOMMITTED",
    ext.ISOLATION_LEVEL_READ_COMMITTED: "READ COMMITTED",
    ext.ISOLATION_LEVEL_REPEATABLE_READ: "REPEATABLE READ",
    ext.ISOLATION_LEVEL_SERIALIZABLE: "SERIALIZABLE",
}
_IN_TRANSACTION = (ext.TRANSACTION_STATUS_ACTIVE, ext.TRANSACTION_STATUS_INTRANS,
                   ext.TRANSACTION_STATUS_INERROR)

# The session's own default level, as the application set it in SQL: `SET SESSION
# CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ...` or `SET default_transaction_isolation`.
_SETS_DEFAULT = re.compile(
    r"^\s*SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+TRANSACTION\s+ISOLATION\s+LEVEL\s+"
    r"(?P<words>READ\s+UNCOMMITTED|READ\s+COMMITTED|REPEATABLE\s+READ|SERIALIZABLE)"
    r"|(?:SESSION\s+)?default_transaction_isolation\s*(?:=|TO)\s*'?(?P<value>[a-z ]+?)'?)"
    r"\s*;?\s*$", re.I)
_SESSION_LEVEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # conn -> SQL level


def note_session_level(conn, sql) -> None:
    """Remember the default level a statement the application ran set on `conn`."""
    if not isinstance(sql, str):
        return
    m = _SETS_DEFAULT.match(sql)
    if m is None:
        return
    level = " ".join((m.group("words") or m.group("value") or "").upper().split())
    if level in LEVEL_SQL.values():
        with contextlib.suppress(TypeError):  # a connection that takes no weak reference
            _SESSION_LEVEL[conn] = level


@dataclass
class Call:
    """A statement, COMMIT or ROLLBACK the application is about to send."""

    kind: str  # "statement" | "commit" | "rollback"
    conn: Any  # the psycopg2 connection it goes through
    cursor: Any = None
    sql: Any = None
    params: Any = None
    many: bool = False

    @property
    def pid(self) -> int | None:
        try:
            return self.conn.info.backend_pid
        except psycopg2.Error:
            return None

    def in_transaction(self) -> bool:
        try:
            return self.conn.info.transaction_status in _IN_TRANSACTION
        except psycopg2.Error:
            return False

    def opens_transaction(self) -> bool:
        """psycopg2 sends BEGIN in front of this statement."""
        return self.kind == "statement" and not self.conn.autocommit and not self.in_transaction()

    def begin_sql(self, default_level: str) -> str:
        """The BEGIN psycopg2 sends for this connection's settings."""
        own = _SESSION_LEVEL.get(self.conn) if self.conn.isolation_level is None else None
        words = ["BEGIN ISOLATION LEVEL",
                 LEVEL_SQL.get(self.conn.isolation_level, own or default_level)]
        if self.conn.readonly:
            words.append("READ ONLY")
        if self.conn.deferrable:
            words.append("DEFERRABLE")
        return " ".join(words)

    def text(self) -> str:
        """The SQL with its parameters as literals: what the server receives."""
        if self.kind != "statement":
            return self.kind.upper()
        if self.many:
            return "; ".join(self._literal(p) for p in self.params)
        return self._literal(self.params)

    def _literal(self, params) -> str:
        encoding = ext.encodings.get(self.conn.encoding, "utf-8")
        try:
            out = self.cursor.mogrify(self.sql, params)
        except Exception:  # e.g. a '%' in SQL sent without parameters
            out = self.sql
            if isinstance(out, psycopg2.sql.Composable):
                out = out.as_string(self.conn)
        return out.decode(encoding) if isinstance(out, bytes) else str(out)


class Observer(Protocol):
    def before(self, call: Call) -> None: ...

    def after(self, call: Call, cursor) -> None: ...  # cursor is None for COMMIT/ROLLBACK

    def failed(self, call: Call, exc: BaseException) -> None: ...


class Hooks:
    """Routes statement events to the observer bound to the calling thread, and
    pairs each `before` with its `after` or `failed`."""

    def __init__(self):
        self._local = threading.local()

    @contextlib.contextmanager
    def bound(self, observer: Observer) -> Iterator[None]:
        self._local.observer, self._local.call = observer, None
        try:
            yield
        finally:
            self.finish()
            self._local.observer = None

    def _observer(self) -> Observer | None:
        return getattr(self._local, "observer", None)

    def before(self, call: Call) -> None:
        observer = self._observer()
        if observer is None:
            return
        if call.kind != "statement" and not call.in_transaction():
            return  # psycopg2 sends nothing: there is no transaction to end
        self.finish()
        self._local.call = call
        observer.before(call)

    def after(self, cursor=None) -> None:
        observer, call = self._observer(), getattr(self._local, "call", None)
        if observer is not None and call is not None:
            self._local.call = None
            if call.kind == "statement":
                note_session_level(call.conn, call.sql)
            observer.after(call, cursor)

    def failed(self, exc: BaseException) -> None:
        observer, call = self._observer(), getattr(self._local, "call", None)
        if observer is not None and call is not None:
            self._local.call = None
            observer.failed(call, exc)

    def finish(self) -> None:
        """A COMMIT or ROLLBACK sent through SQLAlchemy has no after-event: it
        succeeded once the thread does anything else."""
        if getattr(self._local, "call", None) is not None:
            self.after(None)


# ---------------------------------------------------------------- SQLAlchemy


@contextlib.contextmanager
def engine_hooks(engine, hooks: Hooks) -> Iterator[None]:
    """Listen to `engine`'s events (and so to engines derived from it with
    execution_options) while the block runs."""
    from sqlalchemy import event

    def dbapi(conn):
        if conn.invalidated or conn.closed:
            return None
        return conn.connection.dbapi_connection

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        hooks.before(Call("statement", cursor.connection, cursor, statement, parameters,
                          executemany))

    def after_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        hooks.after(cursor)

    def handle_error(ctx):
        hooks.failed(ctx.original_exception)

    def end(kind):
        def listener(conn):
            raw = dbapi(conn)
            if raw is not None:
                hooks.before(Call(kind, raw))
        return listener

    listeners = [("before_cursor_execute", before_cursor_execute),
                 ("after_cursor_execute", after_cursor_execute),
                 ("handle_error", handle_error),
                 ("commit", end("commit")), ("rollback", end("rollback"))]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


# ---------------------------------------------------------------- psycopg2


class ObservedConnection(ext.connection):
    """A psycopg2 connection whose commit, rollback and cursors report to `txlab_hooks`."""

    txlab_hooks: Hooks | None = None

    def cursor(self, *args, **kwargs):
        base = kwargs.pop("cursor_factory", None) or self.cursor_factory or ext.cursor
        return super().cursor(*args, cursor_factory=_observed_cursor(base), **kwargs)

    def commit(self):
        _report(self, Call("commit", self), super().commit)

    def rollback(self):
        _report(self, Call("rollback", self), super().rollback)


def _report(conn, call: Call, method, *args):
    hooks = conn.txlab_hooks
    if hooks is None:
        return method(*args)
    hooks.before(call)
    try:
        out = method(*args)
    except BaseException as exc:
        hooks.failed(exc)
        raise
    hooks.after(call.cursor)
    return out


@functools.cache
def _observed_cursor(base: type) -> type:
    class Observed(base):
        def execute(self, query, vars=None):
            call = Call("statement", self.connection, self, query, vars)
            return _report(self.connection, call, super().execute, query, vars)

        def executemany(self, query, vars_list):
            vars_list = list(vars_list)
            call = Call("statement", self.connection, self, query, vars_list, many=True)
            return _report(self.connection, call, super().executemany, query, vars_list)

    Observed.__name__ = Observed.__qualname__ = f"Observed{base.__name__}"
    return Observed


def connect(dsn: str, hooks: Hooks, **kwargs) -> ObservedConnection:
    """An application connection (not autocommit, as psycopg2 makes them) that reports
    to `hooks`."""
    conn = psycopg2.connect(dsn, connection_factory=ObservedConnection, **kwargs)
    conn.txlab_hooks = hooks
    return conn


# ---------------------------------------------------------------- results and errors


def peek_rows(cursor, limit: int = 3) -> tuple | None:
    """The first rows of a statement's result, leaving the cursor where it was
    (client-side cursors hold the whole result). None: the statement returns no rows."""
    if cursor is None or cursor.description is None or getattr(cursor, "name", None):
        return None
    if cursor.rowcount <= 0 or cursor.rownumber != 0:
        return ()
    rows = cursor.fetchmany(limit)
    cursor.scroll(0, mode="absolute")
    return tuple(tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error, found on it, on SQLAlchemy's `orig`, or along
    its chain of causes (an app error raised from a database error)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for candidate in (exc, getattr(exc, "orig", None)):
            code = getattr(candidate, "pgcode", None)
            if code:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def message(exc: BaseException) -> str:
    """The first line of an error (a driver error's primary message)."""
    for candidate in (getattr(exc, "orig", None), exc):
        if isinstance(candidate, psycopg2.Error):
            diag = candidate.diag.message_primary
            if diag:
                return diag
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
