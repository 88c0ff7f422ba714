"""The application's database, as the application reaches it: a SQLAlchemy Engine
(or sessionmaker) whose functions get a Session, or a DSN whose functions get a
psycopg2 connection. Opens what each thread hands to the app, checks invariants,
and gives txlab a control connection of its own."""

from __future__ import annotations

import contextlib
import dis
from collections.abc import Callable, Iterator
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


def _asserts(fn: Callable) -> bool:
    """`fn` checks with `assert` (so returning None means it held), as far as its own
    bytecode shows; a callable without Python code (a functools.partial, say) is given
    the benefit of the doubt."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return True
    return any(i.opname == "LOAD_ASSERTION_ERROR" or i.argval == "AssertionError"
               for i in dis.get_instructions(code))


def _check_sql(query: str, control) -> Verdict:
    import psycopg2

    try:
        with control.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
    except psycopg2.Error as exc:
        return Verdict(None, f"the invariant query failed: {observe.message(exc)}")
    if row is None:
        return Verdict(False, "the invariant query returned no row")
    return Verdict(bool(row[0]), "" if row[0] else f"returned {row[0]!r}")


def name_of(fn) -> str:
    """A function's name for messages (a partial's function; an SQL invariant's text)."""
    if fn is None:
        return "no invariant"
    if isinstance(fn, str):
        return fn
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__name__", None) or type(inner).__name__
