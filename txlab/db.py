"""Connections, isolation levels, txlab's schema: creating, owning, resetting it.

Workers use psycopg2 directly (no ORM or SQL compilation on the hot path).
DSN parsing and masking live in txlab.dsn.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from txlab import levels

# DSN parsing and masking live in txlab.dsn; the rest of txlab uses them through db.
from txlab.dsn import describe_target, is_bad_value, mask_dsn, mask_text, parse_dsn  # noqa: F401
from txlab.errors import DatabaseError, TxlabError, UsageError

T = TypeVar("T")

# ---------------------------------------------------------------- isolation


@dataclass(frozen=True)
class Isolation:
    key: str  # read-committed
    sql: str  # READ COMMITTED

    @property
    def note(self) -> str | None:
        if self.key == "read-uncommitted":
            return "PostgreSQL runs READ UNCOMMITTED exactly as READ COMMITTED (no dirty reads)."
        return None


LEVELS = {
    "read-uncommitted": Isolation("read-uncommitted", "READ UNCOMMITTED"),
    "read-committed": Isolation("read-committed", "READ COMMITTED"),
    "repeatable-read": Isolation("repeatable-read", "REPEATABLE READ"),
    "serializable": Isolation("serializable", "SERIALIZABLE"),
}
# Level names where the full ones do not fit (matrix rows, narrow demo tables).
SHORT = {"read-uncommitted": "RU", "read-committed": "RC", "repeatable-read": "RR",
         "serializable": "SER"}


def parse_isolation(text: str) -> Isolation:
    """Accept `read-committed`, `READ COMMITTED`, `read_committed`, `readcommitted`,
    `rc`, `serialisable` ... (txlab.levels: the spellings `txlab check` takes too)."""
    key = levels.level_key(text)
    if key is None:
        raise UsageError(f"unknown isolation level {text!r}; choose one of: "
                         f"{', '.join(LEVELS)} ({levels.SPELLINGS})")
    return LEVELS[key]


# ---------------------------------------------------------------- connections


class ConnectError(DatabaseError):
    """The database could not be reached; `server.open_database` adds a hint that fits
    where the DSN came from."""


def connect_error(dsn: str, reason: str) -> TxlabError:
    """The error for a failed connection attempt, every DSN-derived part masked."""
    try:
        parse_dsn(dsn)
    except UsageError as exc:  # a DSN that does not parse is a usage error
        return exc
    reason = mask_text(reason.strip().splitlines()[0] if reason.strip() else "no answer", dsn)
    if is_bad_value(reason):
        return UsageError(f"bad database URL ({mask_dsn(dsn)}): {reason}")
    if "permission denied to set parameter" in reason:
        return DatabaseError(
            f"PostgreSQL at {describe_target(dsn)} refused a session setting: {reason}. "
            "--deadlock-timeout-ms needs a superuser or GRANT SET ON PARAMETER deadlock_timeout.")
    if any(m in reason for m in _NO_SLOTS):
        return DatabaseError(
            f"PostgreSQL at {describe_target(dsn)} has no connection left: {reason}. txlab needs "
            "one per worker and two more (its control session and its schema lock): use "
            "fewer --workers, end other sessions, or raise the server's max_connections.")
    return ConnectError(f"cannot connect to PostgreSQL at {describe_target(dsn)}: {reason}")


# The server's answers when it is out of connection slots (SQLSTATE 53300, which libpq
# does not hand over for a connection that never opened).
_NO_SLOTS = ("too many clients already", "remaining connection slots are reserved",
             "too many connections for")  # ... role "x", ... database "y": their CONNECTION LIMIT


def connect(dsn: str, application_name: str = "txlab", **options: str) -> psycopg2.extensions.connection:
    """Open an autocommit connection; txlab issues BEGIN itself.

    `options` become session settings (e.g. statement_timeout='30s').
    """
    parse_dsn(dsn)  # a DSN that does not parse is a usage error, with its secrets masked
    pg_options = " ".join(f"-c {k}={v}" for k, v in options.items())
    try:
        conn = psycopg2.connect(
            dsn, application_name=application_name, options=pg_options or None, connect_timeout=10
        )
    except psycopg2.OperationalError as exc:
        raise connect_error(dsn, str(exc)) from None
    conn.autocommit = True
    return conn


def server_version(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        return "PostgreSQL " + cur.fetchone()[0].split()[0]


# ---------------------------------------------------------------- the schema

SCHEMA_MARK = "created by txlab; txlab may drop and recreate the tables in it"


def check_schema_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise UsageError(
            f"invalid schema name {name!r}: use lower-case letters, digits and underscores"
        )
    return name


def _mark(conn, schema: str) -> tuple[int, str | None] | None:
    """(oid, comment) of the schema, or None if it does not exist."""
    with conn.cursor() as cur:
        cur.execute("SELECT oid, obj_description(oid, 'pg_namespace') FROM pg_namespace "
                    "WHERE nspname = %s", (schema,))
        return cur.fetchone()


def prepare_schema(conn, schema: str) -> None:
    """Create txlab's schema, or accept it if txlab created it earlier.

    An existing schema that txlab did not create is refused: txlab never drops or
    alters anything it did not create.
    """
    row = _mark(conn, schema)
    with conn.cursor() as cur:
        if row is None:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            cur.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(schema), sql.Literal(SCHEMA_MARK)
                )
            )
        elif row[1] != SCHEMA_MARK:
            raise UsageError(
                f"schema {schema!r} already exists and was not created by txlab; "
                "txlab will not touch it. Choose another with --schema."
            )


def reset_schema(conn, schema: str) -> None:
    """Give a run an empty schema: drop and recreate it if txlab created it."""
    with _transaction(conn):
        drop_schema(conn, schema)
        prepare_schema(conn, schema)


def first_line(exc: BaseException) -> str:
    """The primary message of a driver error, without DETAIL/HINT lines."""
    text = (getattr(exc, "pgerror", None) or str(exc) or type(exc).__name__).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.removeprefix("ERROR:").strip()


@contextlib.contextmanager
def _transaction(conn) -> Iterator[None]:
    """BEGIN ... COMMIT on an autocommit connection, unless one is already open."""
    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        yield
        return
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            yield
        except BaseException:
            if not conn.closed:
                cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


def drop_schema(conn, schema: str) -> bool:
    """Drop txlab's schema if txlab created it and nothing outside it depends on it.

    Returns whether it existed. `DROP SCHEMA ... CASCADE` would also drop other
    people's objects that depend on txlab's (a view, a foreign key, a function in
    `public`): those are looked for first, with txlab's tables locked so that none
    can appear meanwhile, and their existence is a UsageError naming them.
    """
    row = _mark(conn, schema)
    if row is None:
        return False
    if row[1] != SCHEMA_MARK:
        raise UsageError(f"schema {schema!r} was not created by txlab; txlab works only in a "
                         "schema it created itself (and recreates it before each run): give "
                         "another --schema (a new name is fine)")
    with _transaction(conn), conn.cursor() as cur:
        _lock_tables(cur, row[0], schema)
        outside = dependents_outside(cur, row[0])
        if outside:
            raise UsageError(
                f"schema {schema!r} cannot be reset or dropped: "
                f"{len(outside)} object{'s' if len(outside) > 1 else ''} outside it depend"
                f"{'' if len(outside) > 1 else 's'} on what txlab created there, and DROP "
                f"SCHEMA ... CASCADE would drop {'them' if len(outside) > 1 else 'it'} too: "
                f"{'; '.join(outside)}. txlab never drops what it did not create: drop or "
                "change these yourself, or use another --schema."
            )
        cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return True


class SchemaLocked(DatabaseError):
    """Another session holds a lock on the schema's tables (an open transaction)."""


def _lock_tables(cur, oid: int, schema: str) -> None:
    """Lock the schema's tables so no view or foreign key on them appears while we look."""
    cur.execute("SELECT format('%%I.%%I', %s, relname) FROM pg_class "
                "WHERE relnamespace = %s AND relkind IN ('r', 'p') ORDER BY relname",
                (schema, oid))
    tables = [r[0] for r in cur.fetchall()]
    if not tables:
        return
    cur.execute("SET LOCAL lock_timeout = '10s'")
    try:
        cur.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
    except psycopg2.errors.LockNotAvailable:
        raise SchemaLocked(
            f"schema {schema!r} is in use: another session has held a lock on its tables for "
            "10 s (an open transaction in psql?); end it and try again") from None


# Everything that DROP SCHEMA ... CASCADE would drop, walking pg_depend from the
# schema. A view's rewrite rule counts as the view, a column default as its
# column. Each object's namespace: its own, or for objects that have none, that
# of what they belong to (a trigger's or policy's table, an operator class
# member's family, an extension's schema); NULL (outside) for anything else, such
# as a publication's membership. The walk stops at objects outside the schema
# (or pg_toast, where its tables' TOAST tables live): they are the answer.
_DEPENDENTS = """
WITH RECURSIVE walk(classid, objid, objsubid, inside) AS (
    SELECT classid, objid, objsubid, true
      FROM pg_depend
     WHERE refclassid = 'pg_namespace'::regclass AND refobjid = %(oid)s
  UNION
    SELECT m.classid, m.objid, m.objsubid,
           coalesce(ns.oid IN (%(oid)s, 'pg_toast'::regnamespace), false)
      FROM walk w
      JOIN pg_depend d ON d.refclassid = w.classid AND d.refobjid = w.objid
      LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
      LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
      CROSS JOIN LATERAL (
        SELECT CASE WHEN r.oid IS NOT NULL OR ad.oid IS NOT NULL THEN 'pg_class'::regclass
                    ELSE d.classid END AS classid,
               coalesce(r.ev_class, ad.adrelid, d.objid) AS objid,
               coalesce(ad.adnum::int, CASE WHEN r.oid IS NULL THEN d.objsubid END, 0) AS objsubid
      ) m
      CROSS JOIN LATERAL (
        SELECT CASE m.classid
          WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
                                              JOIN pg_class c ON c.oid = t.tgrelid
                                             WHERE t.oid = m.objid)
          WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p
                                             JOIN pg_class c ON c.oid = p.polrelid
                                            WHERE p.oid = m.objid)
          WHEN 'pg_amop'::regclass THEN (SELECT f.opfnamespace FROM pg_amop a
                                           JOIN pg_opfamily f ON f.oid = a.amopfamily
                                          WHERE a.oid = m.objid)
          WHEN 'pg_amproc'::regclass THEN (SELECT f.opfnamespace FROM pg_amproc a
                                             JOIN pg_opfamily f ON f.oid = a.amprocfamily
                                            WHERE a.oid = m.objid)
          WHEN 'pg_extension'::regclass THEN (SELECT extnamespace FROM pg_extension
                                                WHERE oid = m.objid)
          ELSE (SELECT to_regnamespace(quote_ident(i.schema))::oid
                  FROM pg_identify_object(m.classid, m.objid, m.objsubid) i)
        END AS oid
      ) ns
     WHERE w.inside
)
SELECT DISTINCT i.type || ' ' || i.identity
  FROM walk w, LATERAL pg_identify_object(w.classid, w.objid, w.objsubid) i
 WHERE NOT w.inside
 ORDER BY 1
"""


def dependents_outside(cur, oid: int) -> list[str]:
    """Objects outside schema `oid` that DROP SCHEMA ... CASCADE would drop with it,
    named as PostgreSQL names them ("view public.balances", "table constraint
    t_a_fkey on public.t", "function public.f(txlab.accounts)")."""
    cur.execute("SELECT nspname FROM pg_namespace WHERE oid = %s", (oid,))
    schema = cur.fetchone()[0]
    cur.execute(_DEPENDENTS, {"oid": oid, "schema": schema})
    return [r[0] for r in cur.fetchall()]


# ---------------------------------------------------------------- owning a schema


def _lock_key(schema: str) -> int:
    """The advisory lock key for a schema name (per database, like the schema)."""
    digest = hashlib.sha256(f"txlab schema {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SchemaBusy(DatabaseError):
    """Another txlab (run, demo, acid or clean) owns the schema right now."""


@dataclass
class SchemaLock:
    """A schema owned by this txlab; `release()` (or closing `conn`) gives it up."""

    conn: psycopg2.extensions.connection
    key: int
    dsn: str = ""
    schema: str = ""
    purpose: str = ""

    def intact(self, probe: bool = False) -> bool:
        """The lock's connection is alive, so the lock is still held. Cheap: the socket
        is only looked at (a backend that was terminated, or a server that restarted,
        leaves it readable), unless `probe` asks the server."""
        conn = self.conn
        if conn.closed:
            return False
        try:
            if not probe and not select.select([conn], [], [], 0)[0]:
                return True
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except (psycopg2.Error, OSError, ValueError):
            with contextlib.suppress(psycopg2.Error):
                conn.close()
            return False

    def retake(self) -> None:
        """Own the schema again on a new connection, after the old one died: SchemaBusy
        if another txlab took it meanwhile, DatabaseError if the server is not back."""
        self.conn = own_schema(self.dsn, self.schema, self.purpose).conn

    def release(self) -> None:
        """Unlock, then close. The unlock is explicit because a closed connection's
        lock lingers until its backend has noticed, and the next owner (the next
        permutation of a demo, say) may already be asking."""
        if not self.conn.closed:
            with contextlib.suppress(psycopg2.Error):
                with self.conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self.conn.close()


def own_schema(dsn: str, schema: str, purpose: str) -> SchemaLock:
    """Own `schema` until released: a session advisory lock on a connection of its
    own, whose application_name names this txlab.

    A second run, demo, acid or clean on the same schema is refused at once
    (SchemaBusy, exit 3) naming the holder. The lock goes with the connection, so
    a killed txlab releases it too.
    """
    me = f"txlab {purpose} (pid {os.getpid()} on {socket.gethostname()})"[:63]
    conn = connect(dsn, me)
    key = _lock_key(schema)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            if not cur.fetchone()[0]:
                raise SchemaBusy(f"schema {schema!r} is in use by {_holder(cur, key)}; wait for "
                                 "it to finish, or give this one another --schema")
    except BaseException:
        conn.close()
        raise
    return SchemaLock(conn, key, dsn, schema, purpose)


@contextlib.contextmanager
def schema_owner(dsn: str, schema: str, purpose: str) -> Iterator[SchemaLock]:
    """`own_schema` for the duration of a `with` block."""
    lock = own_schema(dsn, schema, purpose)
    try:
        yield lock
    finally:
        lock.release()


def _holder(cur, key: int) -> str:
    cur.execute(
        """SELECT a.application_name, a.pid, coalesce(a.client_hostname, host(a.client_addr)),
                  to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid::bigint = %s AND l.objid::bigint = %s""",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    )
    row = cur.fetchone()
    if row is None:
        return "another session (it may just have finished)"
    app, pid, client, since = row
    where = f"from {client}" if client else "over the local socket"
    return f"{app or 'another session'} [server backend pid {pid}, {where}, since {since}]"


def drop_owned_schema(dsn: str, schema: str) -> bool:
    """`txlab clean`: own the schema, then drop it (see drop_schema)."""
    with schema_owner(dsn, schema, "clean") as lock:
        return drop_schema(lock.conn, schema)


# ---------------------------------------------------------------- interruptible statements


def cancellable(conn, fn: Callable[..., T], *args, stop: Callable[[], bool] | None = None) -> T:
    """Run `fn(*args)`, which works on `conn`, so that an interrupt can stop it.

    `fn` runs on a helper thread while the main thread waits; an interrupt there
    (Ctrl-C, SIGTERM, SIGHUP: KeyboardInterrupt, or `stop()` turning true, polled
    every 0.2 s when the interrupts are deferred: txlab.signals) cancels the
    statement `conn` is running, again every 0.2 s while `fn` goes on (a cancel
    between two statements is lost), for up to 10 s, and KeyboardInterrupt is then
    raised. No global wait callback is installed, so the workers' connections are
    not slowed.
    """
    box: dict = {}
    done = threading.Event()  # not Thread.join: an interrupted join marks the thread dead

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="txlab-cancellable", daemon=True).start()
    try:
        while not done.wait(0.2):
            if stop is not None and stop():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        deadline = time.monotonic() + 10.0
        while not done.is_set() and time.monotonic() < deadline:
            try:
                if not conn.closed:
                    conn.cancel()
                done.wait(0.2)
            except KeyboardInterrupt:  # a second interrupt: keep stopping
                continue
            except psycopg2.Error:
                break
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
