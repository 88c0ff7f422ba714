"""The application's database, as the application reaches it: a SQLAlchemy Engine
(or sessionmaker) whose functions get a Session, or a DSN whose functions get a
psycopg2 connection. Opens what each thread hands to the app, checks invariants,
and gives txlab a control connection of its own."""

from __future__ import annotations

import contextlib
import dis
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from txlab import db
from txlab.errors import UsageError
from txlab.testing import observe

# Nothing went through the engine or DSN given: the functions reached the database some
# other way (an engine of the application's own), so no schedule was controlled.
UNWATCHED = ("{what}: no statement of {fns} went through the engine (or dsn) it was given, "
             "so nothing was tested: the functions must run their SQL on the session (or "
             "connection) they receive, not on an engine or connection of their own")


@dataclass(frozen=True)
class Verdict:
    """What an invariant said: held True/False, or None when it could not run."""

    held: bool | None
    detail: str = ""


class Target:
    def __init__(self, engine=None, dsn: str | None = None, isolation: str | None = None):
        if (engine is None) == (dsn is None):
            raise UsageError("pass exactly one of engine= (a SQLAlchemy Engine or "
                             "sessionmaker) or dsn= (a PostgreSQL URL for psycopg2)")
        if dsn is not None and not isinstance(dsn, str):
            raise UsageError(f"dsn= takes a PostgreSQL URL (a str), not a {type(dsn).__name__}: "
                             "pass a SQLAlchemy Engine or sessionmaker as engine=")
        if dsn is not None and re.match(r"\s*postgres(?:ql)?\+\w+://", dsn, re.I):
            dsn = _from_sqlalchemy(dsn)
        self.level = db.parse_isolation(isolation) if isolation else None
        self.dsn = dsn
        self.hooks = observe.Hooks()
        self.session_factory = None
        if engine is not None:
            from sqlalchemy.orm import Session, sessionmaker

            if isinstance(engine, sessionmaker):
                self.session_factory, engine = engine, engine.kw.get("bind")
                if engine is None:
                    raise UsageError("the sessionmaker has no bind: give it an engine")
            if getattr(engine, "dialect", None) is None or engine.dialect.driver != "psycopg2":
                raise UsageError("txlab.testing watches psycopg2 connections: create the engine "
                                 "with a postgresql+psycopg2:// URL (or pass dsn=)")
            self.engine = engine
            self.app_engine = (engine.execution_options(isolation_level=self.level.sql)
                               if self.level else engine)
            self.session_factory = self.session_factory or Session
        else:
            self.engine = self.app_engine = None

    @property
    def level_text(self) -> str:
        return self.level.sql if self.level else "the application's own level"

    @staticmethod
    def default_level(control) -> str:
        """The server's default level, as a BEGIN without one gets it (Call.begin_sql)."""
        with control.cursor() as cur:
            cur.execute("SHOW default_transaction_isolation")
            return cur.fetchone()[0].upper()

    def level_of(self, begins: Iterable[str]) -> str:
        """The level the calls ran at: the one asked for, else the one every BEGIN the
        application sent named, else level_text (several levels, or no BEGIN seen)."""
        if self.level:
            return self.level.sql
        levels = {b.removeprefix("BEGIN ISOLATION LEVEL ") for b in begins}
        if len(levels) == 1:
            return f"{levels.pop()} (the application's own level)"
        return self.level_text

    @contextlib.contextmanager
    def observing(self) -> Iterator[None]:
        if self.engine is None:
            yield
            return
        with observe.engine_hooks(self.engine, self.hooks):
            yield

    # ----------------------------------------------------------- what the app gets

    def open(self):
        """A Session (engine) or a psycopg2 connection (dsn) for one thread."""
        if self.engine is not None:
            return self.session_factory(bind=self.app_engine)
        conn = observe.connect(self.dsn, self.hooks, application_name="txlab-app")
        if self.level:
            conn.set_session(isolation_level=self.level.sql)
        return conn

    def release(self, conn):
        """A psycopg2 connection back to its worker after a call, as a pool takes it
        back: what the call left open is rolled back; None if it cannot be kept (the
        call closed it, or it broke), and then it is closed."""
        try:
            if not conn.closed and conn.info.transaction_status != 0:
                conn.rollback()
            if not conn.closed and conn.info.transaction_status == 0:
                return conn
        except Exception:  # a broken connection: a new one for the next call
            pass
        with contextlib.suppress(Exception):
            conn.close()
        return None

    def close(self, handle) -> None:
        """End what the app left open (rolled back, as a pool would) and close."""
        if self.engine is not None:
            handle.close()
            return
        try:
            if not handle.closed and handle.info.transaction_status != 0:
                handle.rollback()
        finally:
            handle.close()

    # ----------------------------------------------------------- txlab's own access

    @contextlib.contextmanager
    def control(self) -> Iterator[Any]:
        """An autocommit psycopg2 connection with the app's settings (search_path)."""
        if self.engine is None:
            conn = db.connect(self.dsn, "txlab-control")
            try:
                yield conn
            finally:
                conn.close()
            return
        raw = self.engine.raw_connection()
        conn = raw.dbapi_connection
        try:
            conn.rollback()
            conn.autocommit = True
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.autocommit = False
            raw.close()

    def check(self, invariant: Callable | str | None, control=None) -> Verdict:
        """Run the invariant on a fresh session (or as SQL on the control connection)."""
        if invariant is None:
            return Verdict(None, "no invariant given")
        if isinstance(invariant, str):
            return _check_sql(invariant, control)
        if self.engine is not None:
            handle = self.session_factory(bind=self.engine)
        else:
            import psycopg2

            handle = psycopg2.connect(self.dsn, application_name="txlab-invariant")
        try:
            held = invariant(handle)
        except AssertionError as exc:
            return Verdict(False, observe.message(exc) if str(exc) else "assertion failed")
        except Exception as exc:
            return Verdict(None, f"the invariant raised {type(exc).__name__}: "
                                 f"{observe.message(exc)}")
        finally:
            with contextlib.suppress(Exception):
                handle.rollback()
            handle.close()
        if held is None and not _asserts(invariant):
            raise UsageError(f"the invariant {name_of(invariant)} returned None: return "
                             "True when it holds and False when it does not (or check with "
                             "assert); a forgotten return would pass every test")
        return Verdict(True if held is None else bool(held),
                       "" if held is None or held else f"returned {held!r}")


def _from_sqlalchemy(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg2://..., an engine's url as a string) as a
    libpq DSN: its driver part dropped and its query decoded as SQLAlchemy encodes it
    (a space is `+` there, which libpq would keep)."""
    import psycopg2.extensions
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
             "dbname": u.database}
    kw = {k: v for k, v in parts.items() if v is not None}
    for k, v in u.query.items():
        kw[k] = v if isinstance(v, str) else v[-1]
    return psycopg2.extensions.make_dsn(**kw)


def _asserts(fn: Callable, depth: int = 2) -> bool:
    """`fn` checks with `assert` (so returning None means it held), as far as its
    bytecode shows: its own, or that of a function of its module it calls (a helper
    that asserts), `depth` calls deep. A functools.partial is looked through, a
    callable object's __call__ is read; a callable with no Python code at all (a
    builtin) is given the benefit of the doubt."""
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None and not isinstance(fn, type) and callable(fn):
        target = type(fn).__call__
        code = getattr(target, "__code__", None)
    if code is None:
        return True
    called = set()
    for i in dis.get_instructions(code):
        if i.opname == "LOAD_ASSERTION_ERROR" or i.argval == "AssertionError":
            return True
        if i.opname == "LOAD_GLOBAL" and isinstance(i.argval, str):
            called.add(i.argval)
    if depth <= 0:
        return False
    scope = getattr(target, "__globals__", {})
    return any(_asserts(scope[name], depth - 1) for name in called
               if callable(scope.get(name)) and getattr(scope[name], "__code__", None))


def _check_sql(query: str, control) -> Verdict:
    """A boolean SQL query: every row's one value must be true (a query over many rows,
    `SELECT balance >= 0 FROM accounts`, checks each). No row, a NULL or a false value:
    it did not hold. Anything but booleans is a UsageError: Python's truth of a string
    or a number ('broken', 42) would pass what it meant to catch."""
    import psycopg2

    try:
        with control.cursor() as cur:
            cur.execute(query)
            if cur.description is None:
                raise UsageError(f"the invariant query {query!r} returns no rows (it is not "
                                 "a SELECT): give a query that returns one boolean column")
            if len(cur.description) != 1:
                raise UsageError(f"the invariant query {query!r} returns "
                                 f"{len(cur.description)} columns: give one boolean column "
                                 "(combine checks with AND)")
            rows = cur.fetchall()
    except psycopg2.Error as exc:
        if (exc.pgcode or "").startswith("42"):  # a typo, a missing table: the test's bug
            raise UsageError(f"the invariant query {query!r} is wrong: "
                             f"{observe.message(exc)}") from None
        return Verdict(None, f"the invariant query failed: {observe.message(exc)}")
    if not rows:
        return Verdict(False, "returned no row")
    for n, (value,) in enumerate(rows, 1):
        if value is not None and not isinstance(value, bool):
            raise UsageError(f"the invariant query {query!r} returned {value!r} "
                             f"({type(value).__name__}), not a boolean: write the condition "
                             "itself, e.g. SELECT count(*) <= 1 FROM ...")
        if value is not True:
            where = f" (row {n} of {len(rows)})" if len(rows) > 1 else ""
            return Verdict(False, f"returned {'NULL' if value is None else 'false'}{where}")
    return Verdict(True)


def name_of(fn) -> str:
    """A function's name for messages (a partial's function; an SQL invariant's text)."""
    if fn is None:
        return "no invariant"
    if isinstance(fn, str):
        return fn
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__name__", None) or type(inner).__name__
