"""Loading histories into the checker's one internal shape, `Txns`, validating as it goes.

Accepted inputs (detected from the content, not the file name):

- txlab's history (JSON lines: a "run" record, an "init" record, "txn" records),
  as written by `txlab run --history`, or a `txlab.history.History` in memory.
  Versions are the rows' version counters (integers); the version order of a
  key is the numeric order of its versions.
- Elle's rw-register and list-append histories, in Jepsen's JSON form (one op
  per line, or one JSON array of ops) or in Jepsen's EDN (`history.edn`, one
  map per line): see `txlab.checker.elle` and `txlab.checker.edn`.

Files are read line by line and never held whole in memory; each record is
checked as it is read, and anything malformed is a `HistoryFormatError` naming
the file and the line. JSON is parsed with orjson when it is installed (several
times faster than the standard library's parser, which is the fallback).

Vertex 0 is always T0, the committed transaction that installed the initial
versions (txlab's setup writes; Elle's empty initial state).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

try:  # a C parser: loading is most of `txlab check FILE`
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it
    json_loads = json.loads


class _Exact(bytes):
    """A line with a run of 19 digits or more: an integer orjson would read as a float (it
    keeps 64 bits), so the standard library's parser reads it, exactly."""


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads_line(line: bytes):
    """One JSON value, exactly: orjson, or the standard parser for a line with huge integers."""
    if line.__class__ is _Exact:
        return json.loads(line, parse_constant=_no_constant)
    return json_loads(line)


_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ZEROS = b"0" * 19


def huge_integers(text: bytes) -> bool:
    return _ZEROS in text.translate(_DIGITS)

OK, FAIL, INFO = "ok", "fail", "info"
TXLAB, REGISTER, APPEND = "txlab", "rw-register", "list-append"


class HistoryFormatError(ValueError):
    """The file is not a history the checker understands (the message names file and line)."""


@dataclass
class Txns:
    """Transactions as parallel lists indexed by vertex (0 = T0).

    ops are micro-ops: txlab ["r"|"w", key, version, value] and ["pr", predicate,
    [[key, version, value], ...]]; Elle formats ("r"|"w", key, version, value),
    where a version is the value itself (rw-register), or the appended element
    and, for a read, the last element of the list read (list-append; a read of
    nil or [] has version None). `names[i]` is the transaction's id in the history
    (txlab: attempt id; Elle: the completion's index). invoke / complete are
    times (txlab: ns) or positions in the file (Elle, which takes real-time order
    from the order of events); None when unknown.
    """

    format: str
    names: list  # (or a range)
    status: list
    process: list
    invoke: list
    complete: list
    ops: list
    meta: dict = field(default_factory=dict)
    found: list = field(default_factory=list)  # (anomaly, data) found while loading

    def __len__(self) -> int:
        return len(self.status)


# ---------------------------------------------------------------- txlab

_TXLAB_STATUS = {"committed": OK, "declined": FAIL, "aborted": FAIL, "unknown": INFO}
_SCALAR_KEYS = (str, int)


def from_history(history) -> Txns:
    """A `txlab.history.History` -> Txns, sharing its op lists (no copies)."""
    atts = history.attempts
    n = len(atts) + 1
    status = [OK] * n
    process = [None] * n
    invoke = [None] * n
    complete = [None] * n
    ops = [None] * n
    ops[0] = [tuple(op) for op in history.initial]
    get = _TXLAB_STATUS.get
    for i, a in enumerate(atts, 1):
        s = get(a.outcome)
        if s is None:
            raise HistoryFormatError(f"attempt {i}: unknown outcome {a.outcome!r}")
        status[i] = s
        process[i] = a.worker
        invoke[i] = a.invoke_ns
        complete[i] = a.complete_ns
        ops[i] = a.ops
    return Txns(TXLAB, range(n), status, process, invoke, complete, ops, dict(history.meta))


def _bad_op(op) -> str | None:
    """Why a txlab micro-op is malformed, or None. Versions are integers, keys strings."""
    if type(op) is not list or not op:
        return "a micro-op must be a list"
    f = op[0]
    if f == "r" or f == "w":
        if len(op) != 4:
            return f"[{f!r}, key, version, value] has 4 elements"
        if type(op[1]) not in _SCALAR_KEYS:
            return "a key must be a string"
        if type(op[2]) is not int:
            return f"a version must be an integer, not {op[2]!r}"
        return None
    if f == "pr":
        if len(op) != 3 or type(op[2]) is not list:
            return "['pr', predicate, [[key, version, value], ...]]"
        for row in op[2]:
            if type(row) is not list or len(row) != 3:
                return "a predicate read's row is [key, version, value]"
            if type(row[0]) not in _SCALAR_KEYS:
                return "a key must be a string"
            if type(row[1]) is not int:
                return f"a version must be an integer, not {row[1]!r}"
        return None
    return f"unknown micro-op {f!r}; expected r, w or pr"


def _check_ops(ops, where: str, keys: dict, writes_only: bool = False) -> list:
    """Validate a record's micro-ops; every key becomes one shared string (keys)."""
    if type(ops) is not list:
        raise HistoryFormatError(f"{where}: ops must be a list of micro-ops")
    for op in ops:
        # the common case first: ["r"|"w", "key", int, value]
        if (type(op) is list and len(op) == 4 and (op[0] == "r" or op[0] == "w")
                and type(op[2]) is int and type(op[1]) is str):
            if writes_only and op[0] != "w":
                raise HistoryFormatError(f"{where}: the init record holds writes only")
            k = op[1]
            op[1] = keys.setdefault(k, k)
            continue
        why = _bad_op(op)
        if why is None and writes_only:
            why = "the init record holds writes only"
        if why:
            raise HistoryFormatError(f"{where}: bad micro-op {_short(op)}: {why}")
    return ops


def _short(x) -> str:
    s = repr(x)
    return s if len(s) <= 80 else s[:77] + "..."


def _int_or_none(rec: dict, name: str, where: str):
    x = rec.get(name)
    if x is not None and type(x) is not int:
        raise HistoryFormatError(f"{where}: {name} must be an integer, not {_short(x)}")
    return x


class _Where:
    """"file:line" for a message, formatted only when one is raised."""

    __slots__ = ("path", "n")

    def __init__(self, path, n):
        self.path, self.n = path, n

    def __str__(self) -> str:
        return f"{self.path}:{self.n}"


def read_txlab(path: Path, records) -> Txns:
    """txlab's JSON lines (history format txlab-history/1), streamed: one record at a time;
    `records` yields (line number, parsed line), as json_lines does."""
    status = [OK]
    process = [None]
    invoke = [None]
    complete = [None]
    ops = [[]]
    meta: dict = {}
    seen_init = False
    keys: dict = {}
    get_status = _TXLAB_STATUS.get
    for n, rec in records:
        where = _Where(path, n)
        if type(rec) is not dict:
            raise HistoryFormatError(f"{where}: a record must be a JSON object")
        kind = rec.get("type")
        if kind == "txn":
            outcome = rec.get("outcome")
            s = get_status(outcome) if type(outcome) is str else None
            if s is None:
                raise HistoryFormatError(
                    f"{where}: outcome must be committed, aborted, declined or unknown, "
                    f"not {_short(outcome)}")
            o = rec.get("ops")
            ops.append(_check_ops(o, where, keys) if o is not None else [])
            status.append(s)
            w = rec.get("worker")
            if w is not None and type(w) not in _SCALAR_KEYS:
                raise HistoryFormatError(f"{where}: worker must be an integer")
            process.append(w)
            invoke.append(_int_or_none(rec, "invoke_ns", where))
            complete.append(_int_or_none(rec, "complete_ns", where))
        elif kind == "init":
            if seen_init:
                raise HistoryFormatError(f"{where}: a second init record")
            seen_init = True
            ops[0] = _check_ops(rec.get("ops", []), where, keys, writes_only=True)
        elif kind == "run":
            meta = {k: v for k, v in rec.items() if k != "type"}
            if meta.get("isolation") is not None and type(meta["isolation"]) is not str:
                raise HistoryFormatError(f"{where}: isolation must be a string")
        else:
            raise HistoryFormatError(f"{where}: unknown record type {_short(kind)}; "
                                     "expected run, init or txn")
    n = len(status)
    return Txns(TXLAB, range(n), status, process, invoke, complete, ops, meta)


# ---------------------------------------------------------------- reading

BLOCK = 1 << 18  # bytes read at a time (a block and its copies stay in the CPU cache)


def blocks(f):
    """(lines before, block of whole lines ending in a newline, its number of lines) for
    a binary file, read BLOCK bytes at a time; then (lines before, last line, 0) when the
    file does not end in a newline."""
    n = 0
    rest = b""
    while True:
        data = f.read(BLOCK)
        if not data:
            break
        if rest:
            data = rest + data
        cut = data.rfind(b"\n") + 1
        if not cut:
            rest = data
            continue
        rest = data[cut:]
        text = data[:cut]
        k = text.count(b"\n")
        yield n, text, k
        n += k
    if rest:
        yield n, rest, 0


def block_lines(text: bytes, n: int):
    """(line number, line) for each non-blank line of a block whose first line is number
    n + 1; a line with a huge integer comes as an _Exact line."""
    big = huge_integers(text)
    for line in text.split(b"\n"):
        n += 1
        if line.strip():
            yield n, (_Exact(line) if big and huge_integers(line) else line)


def json_records(path: Path, lines):
    """(line number, value) for (line number, line) pairs of JSON lines."""
    for n, line in lines:
        try:
            yield n, loads_line(line)
        except ValueError as exc:
            raise HistoryFormatError(f"{path}:{n}: not JSON ({exc})") from None


def json_lines(path: Path, f):
    """(line number, value) for each non-blank line of a file of JSON lines open at its
    start. A block of lines is parsed in one call (its newlines made commas, the whole
    put in brackets); a block that does not come out as one value per line (a blank
    line, a line that is not one JSON value) or holds an integer beyond 64 bits is read
    line by line, exactly, with the same messages. An iterator of C iterators: nothing
    runs in Python per line of a block read whole."""
    return chain.from_iterable(_json_parts(path, f))


def _json_parts(path: Path, f):
    for n, text, k in blocks(f):
        if k and not huge_integers(text):
            try:
                recs = json_loads(b"[" + text[:-1].replace(b"\n", b",") + b"]")
            except ValueError:
                recs = None
            if recs is not None and len(recs) == k:
                yield zip(range(n + 1, n + k + 1), recs, strict=True)
                continue
        yield json_records(path, block_lines(text, n))


# ---------------------------------------------------------------- detection


def _numbered_lines(f):
    """(line number, line) for each non-empty line of a binary file, read a block at a
    time; a line with a huge integer comes as an _Exact line."""
    for n, text, _ in blocks(f):
        yield from block_lines(text, n)


def load(source, **elle_options) -> Txns:
    """A path to a history file, a `txlab.history.History`, or a list of Elle ops (dicts)."""
    from txlab.checker import elle

    if hasattr(source, "attempts"):
        return from_history(source)
    if isinstance(source, list):
        return elle.from_ops(((n, op) for n, op in enumerate(source, 1)), "<ops>")
    path = Path(source)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, whatever happens
    except FileNotFoundError:
        raise HistoryFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HistoryFormatError(f"{path}: is a directory, not a history file") from None
    except OSError as exc:
        raise HistoryFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    with f:
        try:
            return _load_file(path, f)
        except HistoryFormatError:
            f.seek(0)
            kind = _report_kind(f)
            if kind is None:
                raise
            raise HistoryFormatError(
                f"{path}: this is {kind}, not a history. `txlab check` reads the history a run"
                " records (`txlab run ... --history FILE`, JSON lines) or an Elle history"
                " (Jepsen's JSON or EDN)") from None
        except UnicodeDecodeError:
            raise HistoryFormatError(f"{path}: not a UTF-8 text file") from None
        except OSError as exc:
            raise HistoryFormatError(f"{path}: cannot read it ({exc.strerror})") from None


def _load_file(path: Path, f) -> Txns:
    from txlab.checker import edn, elle

    lines = _numbered_lines(f)
    first = next(lines, None)
    if first is None:
        raise HistoryFormatError(f"{path}: empty file")
    n, line = first
    text = line.strip()
    if b"\x00" in text:
        raise HistoryFormatError(f"{path}:{n}: not a text file")

    def again():
        yield first
        yield from lines

    if text[:1] == b"[" and _looks_edn(text[1:].lstrip()):
        # Elle's tests hand h/history one vector of ops: `[{:process 0, ...} ...]`
        return elle.from_ops(_vector_items(edn.read_records(path, again())), str(path))
    if text[:1] == b"[":
        return elle.from_json_array(path, again, f)
    if text[:1] == b";" or _looks_edn(text):
        if f.seekable():  # read again from the start, a block at a time
            f.seek(0)
            return elle.from_ops(edn.read_file(path, f), str(path))
        return elle.from_ops(edn.read_records(path, again()), str(path))
    try:
        rec = loads_line(text)
    except ValueError:
        raise HistoryFormatError(
            f"{path}:{n}: neither a txlab history (JSON lines from `txlab run --history`) "
            "nor an Elle history (Jepsen's JSON or EDN)") from None
    if f.seekable():  # read again from the start, a block at a time
        f.seek(0)
        records = json_lines(path, f)
    else:
        records = json_records(path, again())
    if isinstance(rec, dict) and rec.get("type") in ("run", "init", "txn"):
        return read_txlab(path, records)
    if isinstance(rec, dict) and elle.op_type(rec) is not None:
        return elle.from_ops(records, str(path))
    raise HistoryFormatError(f"{path}:{n}: unrecognised first record; expected a txlab history "
                             "or Elle ops with type invoke/ok/fail/info")


REPORT_MAX_BYTES = 64 << 20  # a larger file is not looked at as a report


def _report_kind(f) -> str | None:
    """What a file that is not a history is, when it is one of txlab's own JSON
    outputs (read when loading it as a history failed): a run's report, a
    matrix's rows, a check's report, or a demo's. None for anything else."""
    import json

    data = f.read(REPORT_MAX_BYTES + 1)
    if len(data) > REPORT_MAX_BYTES:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or too deep for it
        return None
    if isinstance(doc, dict):
        if "checker" in doc and "verdict" in doc:
            return "the report of `txlab check --format json`"
        if "scenario" in doc and "outcomes" in doc:
            return "the report of `txlab run --format json`"
        if "demo" in doc and "levels" in doc:
            return "the report of `txlab demo --format json`"
    if (isinstance(doc, list) and doc and isinstance(doc[0], dict)
            and {"scenario", "strategy", "isolation"} <= doc[0].keys()):
        return "the rows of `txlab matrix --format json`"
    return None


def _looks_edn(text: bytes) -> bool:
    """`{:type :ok, ...}` (or a `#jepsen.history.Op{...}` record) rather than
    `{"type": "ok", ...}`."""
    if text[:1] == b"#":
        return True
    return text[:1] == b"{" and text[1:].lstrip()[:1] not in (b'"', b"}")


def _vector_items(values):
    """(line, op) for each op of top-level vectors of ops, numbered by the vector's line."""
    for n, value in values:
        if isinstance(value, (list, tuple)):
            for op in value:
                yield n, op
        else:
            yield n, value
