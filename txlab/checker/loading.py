"""Loading histories into the checker's one internal shape, `Txns`.

Accepted inputs (detected from the content, not the file name):

- txlab's history (JSON lines: a "run" record, an "init" record, "txn" records),
  as written by `txlab run --history`, or a `txlab.history.History` in memory.
  Versions are the rows' version counters; the version order of a key is the
  numeric order of its versions.
- Elle's rw-register and list-append histories in Jepsen's JSON form: one op per
  line, or one JSON array of ops. An op is an object with `type` (invoke / ok /
  fail / info), `process`, `value` (a list of micro-ops), and optionally `f`,
  `time`, `index`. Keys may be spelled `type` or `:type`, keywords `"ok"` or
  `":ok"`. Micro-ops are `[f, key, value]` with f in r / w / append (also
  `read` / `write`). A completion is paired with the pending invoke of its
  process; completions without invokes are accepted (no realtime order then).

Vertex 0 is always T0, the committed transaction that installed the initial
versions (txlab's setup writes; Elle's empty initial state).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "fail", "info"
TXLAB, REGISTER, APPEND = "txlab", "rw-register", "list-append"


class HistoryFormatError(ValueError):
    """The file is not a history the checker understands."""


@dataclass
class Txns:
    """Transactions as parallel lists indexed by vertex (0 = T0).

    ops are normalised micro-ops: ("r", key, version, value), ("w", key, version,
    value), ("pr", predicate, [[key, version, value], ...]). `names[i]` is the
    transaction's id in the history (txlab: attempt id; Elle: op index).
    """

    format: str
    names: list
    status: list
    process: list
    invoke: list
    complete: list
    ops: list
    meta: dict = field(default_factory=dict)
    raw: list | None = None  # Elle's original micro-ops, for explanations
    internal: list = field(default_factory=list)  # found while loading (Elle formats)

    def __len__(self) -> int:
        return len(self.status)


# ---------------------------------------------------------------- txlab


_TXLAB_STATUS = {"committed": OK, "declined": FAIL, "aborted": FAIL, "unknown": INFO}


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


def _read_txlab(path: Path) -> Txns:
    from txlab import history as txhistory

    try:
        h = txhistory.read(path)
    except (KeyError, TypeError, IndexError) as exc:
        raise HistoryFormatError(
            f"{path}: not a valid txlab history: missing or bad field {exc}") from None
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(f"{path}: a line is not JSON ({exc})") from None
    except ValueError as exc:
        raise HistoryFormatError(str(exc)) from None
    for i, a in enumerate(h.attempts, 1):
        for op in a.ops:
            if not op or op[0] not in ("r", "w", "pr") or len(op) != (3 if op[0] == "pr" else 4):
                raise HistoryFormatError(f"{path}: transaction {i}: bad micro-op {list(op)!r}")
    return from_history(h)


# ---------------------------------------------------------------- Elle (Jepsen JSON)


def _kw(x: Any) -> Any:
    return x[1:] if isinstance(x, str) and x.startswith(":") else x


def _field(op: dict, name: str, default=None):
    if name in op:
        return op[name]
    return op.get(":" + name, default)


_MOP = {"r": "r", "read": "r", "w": "w", "write": "w", "append": "append"}


def _elle_ops(records: list[dict], where: str) -> Txns:
    """Pair invokes with completions; normalise micro-ops per workload."""
    pending: dict[Any, dict] = {}
    txns: list[tuple] = []  # (name, status, process, invoke, complete, mops)
    for n, op in enumerate(records):
        if not isinstance(op, dict):
            raise HistoryFormatError(f"{where}: op {n + 1} is not a JSON object")
        typ = _kw(_field(op, "type"))
        if typ not in ("invoke", "ok", "fail", "info"):
            raise HistoryFormatError(f"{where}: op {n + 1}: type must be invoke/ok/fail/info, "
                                     f"got {typ!r}")
        f = _kw(_field(op, "f", "txn"))
        if f not in ("txn", None):
            continue  # not a transaction (e.g. a nemesis op)
        proc = _field(op, "process")
        t = _field(op, "time")
        if typ == "invoke":
            pending[proc] = op
            continue
        inv = pending.pop(proc, None)
        value = _field(op, "value")
        if value is None and inv is not None:
            value = _field(inv, "value")
        if not isinstance(value, list):
            raise HistoryFormatError(f"{where}: op {n + 1}: value must be a list of micro-ops")
        mops = []
        for m in value:
            if not isinstance(m, list) or len(m) != 3 or _MOP.get(_kw(m[0])) is None:
                raise HistoryFormatError(f"{where}: op {n + 1}: bad micro-op {m!r}; expected "
                                         "[r|w|append, key, value]")
            k = m[1]
            mops.append((_MOP[_kw(m[0])], tuple(k) if isinstance(k, list) else k, m[2]))
        index = _field(op, "index", n)
        t_inv = _field(inv, "time") if inv is not None else None
        txns.append((index, {"ok": OK, "fail": FAIL, "info": INFO}[typ], proc, t_inv, t, mops))
    for proc, inv in pending.items():  # invoked, never completed: unknown outcome
        txns.append((_field(inv, "index"), INFO, proc, _field(inv, "time"), None,
                     [(_MOP.get(_kw(m[0]), "r"), m[1], m[2]) for m in (_field(inv, "value") or [])
                      if isinstance(m, list) and len(m) == 3]))
    fs = {m[0] for t in txns for m in t[5]}
    reads_lists = any(m[0] == "r" and isinstance(m[2], list) for t in txns for m in t[5])
    if "append" in fs and "w" in fs:
        raise HistoryFormatError(f"{where}: mixes append and w micro-ops; "
                                 "give a list-append or an rw-register history")
    workload = APPEND if ("append" in fs or reads_lists) else REGISTER
    from txlab.checker import versions

    return versions.normalise_elle(workload, txns)


def _read_elle(path: Path, text: str) -> Txns:
    text = text.strip()
    try:
        if text.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(f"{path}: not JSON: {exc}") from None
    return _elle_ops(records, str(path))


# ---------------------------------------------------------------- detection


def load(source) -> Txns:
    """A path to a history file, a `txlab.history.History`, or a list of Elle ops."""
    if hasattr(source, "attempts"):
        return from_history(source)
    if isinstance(source, list):
        return _elle_ops(source, "<ops>")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HistoryFormatError(f"{path}: is a directory, not a history file") from None
    except UnicodeDecodeError:
        raise HistoryFormatError(f"{path}: not a text file") from None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        raise HistoryFormatError(f"{path}: empty file")
    if first.startswith("["):
        return _read_elle(path, text)
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        raise HistoryFormatError(
            f"{path}: neither a txlab history (JSON lines from `txlab run --history`) "
            "nor an Elle history in Jepsen's JSON form") from None
    if isinstance(rec, dict) and rec.get("type") in ("run", "init", "txn"):
        return _read_txlab(path)
    if isinstance(rec, dict) and _kw(_field(rec, "type")) in ("invoke", "ok", "fail", "info"):
        return _read_elle(path, text)
    raise HistoryFormatError(f"{path}: unrecognised first record; expected a txlab history "
                             "or Elle ops with type invoke/ok/fail/info")
