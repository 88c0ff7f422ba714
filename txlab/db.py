"""Connections, isolation levels, DSN parsing and masking, txlab's schema.

Workers use psycopg2 directly (no ORM or SQL compilation on the hot path).
SQLAlchemy's URL type parses and masks URL-style DSNs for display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from txlab.errors import DatabaseError, UsageError

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
_ALIASES = {
    "ru": "read-uncommitted",
    "rc": "read-committed",
    "rr": "repeatable-read",
    "si": "repeatable-read",
    "snapshot": "repeatable-read",
    "s": "serializable",
    "ser": "serializable",
    "sr": "serializable",
    "serialisable": "serializable",
}


def parse_isolation(text: str) -> Isolation:
    """Accept `read-committed`, `READ COMMITTED`, `read_committed`, `rc`, ..."""
    key = re.sub(r"[\s_]+", "-", text.strip().lower())
    key = _ALIASES.get(key, key)
    if key not in LEVELS:
        choices = ", ".join(LEVELS)
        raise UsageError(
            f"unknown isolation level {text!r}; choose one of: {choices} "
            "(SQL spellings such as 'REPEATABLE READ' and short forms ru/rc/rr/ser also work)"
        )
    return LEVELS[key]


# ---------------------------------------------------------------- DSNs


def parse_dsn(dsn: str) -> dict[str, str]:
    """libpq's own parse of a URL or key=value DSN."""
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as exc:
        raise UsageError(f"cannot parse the database URL: {str(exc).strip()}") from None


def describe_target(dsn: str) -> str:
    """host, port and database of a DSN, for messages; never the password."""
    p = parse_dsn(dsn)
    host = p.get("host") or p.get("hostaddr") or "local socket"
    port = p.get("port") or "5432"
    return f"host {host}, port {port}, database {p.get('dbname') or p.get('user') or '(default)'}"


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, for display."""
    if "://" in dsn:
        from sqlalchemy.engine import make_url

        try:
            return make_url(dsn).render_as_string(hide_password=True)
        except Exception:  # not a URL SQLAlchemy understands: fall through
            pass
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


def mask_text(text: str, dsn: str) -> str:
    """Remove the DSN's password from any text (e.g. a driver error message)."""
    password = None
    try:
        password = parse_dsn(dsn).get("password")
    except UsageError:
        pass
    if password:
        text = text.replace(password, "***")
    return text


# ---------------------------------------------------------------- connections


def connect(dsn: str, application_name: str = "txlab", **options: str) -> psycopg2.extensions.connection:
    """Open an autocommit connection; txlab issues BEGIN itself.

    `options` become session settings (e.g. statement_timeout='30s').
    """
    pg_options = " ".join(f"-c {k}={v}" for k, v in options.items())
    try:
        conn = psycopg2.connect(
            dsn, application_name=application_name, options=pg_options or None, connect_timeout=10
        )
    except psycopg2.OperationalError as exc:
        reason = mask_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer", dsn)
        if "permission denied to set parameter" in reason:
            raise DatabaseError(
                f"PostgreSQL at {describe_target(dsn)} refused a session setting: {reason}. "
                "--deadlock-timeout-ms needs a superuser or GRANT SET ON PARAMETER deadlock_timeout."
            ) from None
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {describe_target(dsn)}: {reason}\n"
            "Start a local server with `txlab server start`, or pass --dsn / set TXLAB_DSN."
        ) from None
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


def prepare_schema(conn, schema: str) -> None:
    """Create txlab's schema, or accept it if txlab created it earlier.

    An existing schema that txlab did not create is refused: txlab never drops or
    alters anything it did not create.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (schema,),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            cur.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(schema), sql.Literal(SCHEMA_MARK)
                )
            )
        elif row[0] != SCHEMA_MARK:
            raise UsageError(
                f"schema {schema!r} already exists and was not created by txlab; "
                "txlab will not touch it. Choose another with --schema."
            )


def reset_schema(conn, schema: str) -> None:
    """Give a run an empty schema: drop and recreate it if txlab created it."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            drop_schema(conn, schema)
            prepare_schema(conn, schema)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


def first_line(exc: BaseException) -> str:
    """The primary message of a driver error, without DETAIL/HINT lines."""
    text = (getattr(exc, "pgerror", None) or str(exc) or type(exc).__name__).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.removeprefix("ERROR:").strip()


def drop_schema(conn, schema: str) -> bool:
    """Drop txlab's schema if txlab created it. Returns whether it existed."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (schema,),
        )
        row = cur.fetchone()
        if row is None:
            return False
        if row[0] != SCHEMA_MARK:
            raise UsageError(f"schema {schema!r} was not created by txlab; refusing to drop it")
        cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        return True
