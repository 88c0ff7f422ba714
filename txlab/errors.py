"""txlab's own exceptions, exit codes, and SQLSTATE -> abort-cause classification.

Every rollback is classified by SQLSTATE, never by message text, except that the
two flavours of 40001 are told apart by their primary message (PostgreSQL gives
both the same code; see shared reference, section 4).
"""

from __future__ import annotations

import psycopg2.errorcodes

# Exit codes: documented in `txlab --help` and the README.
EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer `head` left


class TxlabError(Exception):
    """An error with a message meant for the user and an exit code."""

    exit_code = EXIT_RUNTIME


class UsageError(TxlabError):
    """Bad input: unknown scenario, bad option value, bad scenario file."""

    exit_code = EXIT_USAGE


class DatabaseError(TxlabError):
    """The database could not be reached, refused us, or failed at setup."""

    exit_code = EXIT_RUNTIME


# Cause keys used in reports and history. 40001 is split in two by message.
SERIALIZATION_CONCURRENT_UPDATE = "40001-concurrent-update"
SERIALIZATION_RW_DEPENDENCIES = "40001-rw-dependencies"
DEADLOCK = "40P01"
VERSION_CONFLICT = "version-conflict"  # optimistic strategy: no row had the version read
CONNECTION_LOST = "connection-lost"

_NAMES = {
    SERIALIZATION_CONCURRENT_UPDATE: "serialization failure: concurrent update",
    SERIALIZATION_RW_DEPENDENCIES: "serialization failure: read/write dependencies",
    "40001": "serialization failure",
    DEADLOCK: "deadlock detected",
    "55P03": "lock not available (lock timeout / NOWAIT)",
    "57014": "statement timeout / canceled",
    "25P02": "in failed transaction",
    "23505": "unique violation",
    "23514": "check violation",
    "23503": "foreign key violation",
    "23502": "not-null violation",
    "23P01": "exclusion violation",
    VERSION_CONFLICT: "optimistic version conflict (no row matched)",
    CONNECTION_LOST: "connection lost",
}

# Every cause key a report can name (txlab explain covers each; tests walk this).
CAUSE_NAMES = tuple(_NAMES)

# Causes after which the same transaction may be tried again (--retries).
RETRYABLE = frozenset(
    {SERIALIZATION_CONCURRENT_UPDATE, SERIALIZATION_RW_DEPENDENCIES, "40001", DEADLOCK,
     VERSION_CONFLICT}
)


def cause_name(cause: str) -> str:
    """A readable name for a cause key (an SQLSTATE or one of txlab's own keys)."""
    if cause in _NAMES:
        return _NAMES[cause]
    looked_up = psycopg2.errorcodes.lookup(cause) if len(cause) == 5 else None
    if looked_up:
        return looked_up.lower().replace("_", " ")
    return "other error"


def cause_sqlstate(cause: str) -> str | None:
    """The SQLSTATE behind a cause key, or None for txlab's own causes."""
    code = cause.split("-", 1)[0]
    return code if len(code) == 5 and code[:2].isalnum() and code.upper() == code else None


def classify(sqlstate: str | None, message: str | None) -> str:
    """Map an error to its cause key. `sqlstate` None means no server answer."""
    if not sqlstate:
        return CONNECTION_LOST
    if sqlstate == "40001":
        text = message or ""
        if "read/write dependencies" in text:
            return SERIALIZATION_RW_DEPENDENCIES
        if "concurrent update" in text or "concurrent delete" in text:
            return SERIALIZATION_CONCURRENT_UPDATE
        return "40001"
    return sqlstate


class Abort(Exception):
    """Raised inside a transaction to end it without effect.

    `cause` is a cause key; `retryable` says whether --retries may try again.
    """

    def __init__(self, cause: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.retryable = retryable


class Declined(Exception):
    """A business rule refused the transaction (e.g. insufficient funds).

    Not a failure: the transaction is rolled back and counted as declined.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class VersionConflict(Abort):
    """Optimistic concurrency: the row's version changed since it was read."""

    def __init__(self, message: str = "row version changed since it was read"):
        super().__init__(VERSION_CONFLICT, message, True)
