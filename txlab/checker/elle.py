"""Elle's histories (Jepsen's rw-register and list-append workloads) -> Txns.

An op is a map with `type` (invoke / ok / fail / info), `process`, `value` (a
list of micro-ops) and optionally `f` (ops whose f is not txn are skipped, e.g. a
nemesis's), `index` and `time`. Keys may be spelled `type` or `:type` and
keywords `"ok"` or `":ok"`. Micro-ops are `[f, key, value]` with f `r` / `read`,
`w` / `write` or `append`; a read may be written `[r, key]` (no value yet, as in
an invocation). A list key is taken as a tuple.

- A completion is paired with the pending invoke of its process (whose value it
  takes when it has none); a completion without an invoke is accepted (no
  real-time order for it); an invoke that never completes is an `info`.
- Real-time order comes from the order of events in the file, as in Elle: a
  transaction's invoke and completion times are the positions of its invoke and
  completion records; `time` fields are not needed (nor used).
- A history with `append`, or with a read returning a list, is list-append;
  otherwise rw-register. A list-append read of nil is a read of the empty list.
- Reads of failed or indeterminate transactions tell nothing and are dropped.
- While loading, each committed transaction is checked against itself, as Elle
  does: `internal` (a read disagreeing with the transaction's own earlier write
  or read of the key) and `future-read` (a read showing a write the transaction
  itself makes only later).
- Transactions are named by the completion's `index`, else by its position in
  the file (from 0, as Elle numbers ops).
"""

from __future__ import annotations

from pathlib import Path

from txlab.checker.loading import (
    APPEND,
    FAIL,
    INFO,
    OK,
    REGISTER,
    HistoryFormatError,
    Txns,
    _Exact,
    _short,
    huge_integers,
    loads_line,
)

_TYPES = {"invoke": "invoke", ":invoke": "invoke", "ok": OK, ":ok": OK, "fail": FAIL,
          ":fail": FAIL, "info": INFO, ":info": INFO}
_MOP = {"r": "r", "read": "r", "w": "w", "write": "w", "append": "append"}
_MOP.update({":" + k: v for k, v in list(_MOP.items())})
_TXN_F = {None, "txn", ":txn"}
_HASHABLE = (str, int, float, bool, type(None), tuple)


def op_type(op: dict):
    """invoke / ok / fail / info, or None when op has no such type."""
    t = op.get("type", op.get(":type"))
    return _TYPES.get(t) if type(t) is str else None


def from_json_array(path: Path, again, f) -> Txns:
    """One JSON array of ops. Written one op per line (as Jepsen and elle-cli do), it is
    streamed; otherwise the whole array is parsed at once."""

    def per_line():
        for n, line in again():
            s = line.strip()
            if s[:1] == b"[":
                s = s[1:].lstrip()
            if s[-1:] == b"]" and not s.endswith(b"]]"):
                s = s[:-1].rstrip()
            elif s[-2:] == b"]]" and s.count(b"[") < s.count(b"]"):
                s = s[:-1].rstrip()
            if s[-1:] == b",":
                s = s[:-1]
            if s[:1] == b",":
                s = s[1:]
            if not s.strip():
                continue
            try:
                yield n, loads_line(_Exact(s) if line.__class__ is _Exact else s)
            except ValueError:
                raise _NotPerLine from None

    try:
        return from_ops(per_line(), str(path))
    except _NotPerLine:
        pass
    f.seek(0)
    try:
        data = f.read()
        records = loads_line(_Exact(data) if huge_integers(data) else data)
    except ValueError as exc:
        raise HistoryFormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(records, list):
        raise HistoryFormatError(f"{path}: expected a JSON array of ops")
    return from_ops(((n, op) for n, op in enumerate(records, 1)), f"{path} op")


class _NotPerLine(Exception):
    pass


def _key(k, where):
    if type(k) in _HASHABLE:
        return k
    if type(k) is list:
        try:
            t = tuple(_key(x, where) for x in k)
            hash(t)
            return t
        except HistoryFormatError:
            pass
    raise HistoryFormatError(f"{where}: a key must be a number, string or list, "
                             f"not {_short(k)}")


def _scalar(v, where, what):
    if type(v) in _HASHABLE:
        return v
    if type(v) is list:
        return _key(v, where)
    raise HistoryFormatError(f"{where}: {what} must be a number, string or list, not {_short(v)}")


def _bad(where, n, what):
    return HistoryFormatError(f"{where}:{n}: {what}")


def _mops(value, where, n, status):
    """[f, k, v] micro-ops -> (r|w, key, version, value) and what kinds were seen:
    (ops, appends?, list reads?, single-value reads?). Reads of a non-ok op are dropped."""
    if type(value) is not list:
        raise _bad(where, n, f"value must be a list of micro-ops, not {_short(value)}")
    out = []
    appends = lists = scalars = False
    ok = status is OK
    mop = _MOP
    for m in value:
        f = None
        if type(m) is list:
            lm = len(m)
            if lm == 3:
                f, k, v = m
            elif lm == 2:
                f, k = m
                v = None
            f = mop.get(f) if type(f) is str else None
        if f is None:
            raise _bad(where, n, f"bad micro-op {_short(m)}; expected [r|w|append, key, value]")
        if type(k) is not int and type(k) is not str:
            k = _key(k, f"{where}:{n}")
        if f == "r":
            if not ok:
                continue
            tv = type(v)
            if tv is list:
                lists = True
                for e in v:
                    if type(e) is not int and type(e) not in _HASHABLE:
                        v = [_scalar(x, f"{where}:{n}", "a list element") for x in v]
                        break
                out.append(("r", k, v[-1] if v else None, v))
            else:
                if v is not None:
                    scalars = True
                    if tv is not int and tv not in _HASHABLE:
                        v = _scalar(v, f"{where}:{n}", "a value")
                out.append(("r", k, v, v))
        else:
            if v is None:
                raise _bad(where, n, f"bad micro-op {_short(m)}; a write has a value")
            if type(v) is not int and type(v) not in _HASHABLE:
                v = _scalar(v, f"{where}:{n}", "a written value")
            if f == "append":
                appends = True
            elif appends is False:
                appends = None  # a w: an rw-register op
            out.append(("w", k, v, v))
    return out, appends, lists, scalars


def _freeze(x):
    return _key(x, "") if type(x) is list else x


def from_ops(records, where: str) -> Txns:
    """(line number, op) pairs -> Txns, streaming: only in-flight invokes are kept."""
    names, status, process, invoke, complete, ops = [0], [OK], [None], [None], [None], [[]]
    found: list = []
    pending: dict = {}  # process -> (position, line, value) of its invoke, or a list of them
    saw_append = saw_w = False
    scalar_read = list_read = None  # the line of the first such read
    types = _TYPES
    for pos, (n, op) in enumerate(records):
        if type(op) is not dict:
            raise HistoryFormatError(f"{where}:{n}: an op must be a map, not {_short(op)}")
        if "type" in op:
            t, f, proc, value, index = (op["type"], op.get("f"), op.get("process"),
                                        op.get("value"), op.get("index"))
        else:
            t, f, proc, value, index = (op.get(":type"), op.get(":f"), op.get(":process"),
                                        op.get(":value"), op.get(":index"))
        typ = types.get(t) if type(t) is str else None
        if typ is None:
            raise HistoryFormatError(f"{where}:{n}: type must be invoke, ok, fail or info, "
                                     f"not {_short(t)}")
        if f is not None and (type(f) is not str or f not in _TXN_F):
            continue  # not a transaction (e.g. a nemesis op)
        if proc is not None and type(proc) is not int and type(proc) not in _HASHABLE:
            raise HistoryFormatError(f"{where}:{n}: process must be a number or a name")
        if typ == "invoke":
            q = pending.get(proc)
            if q is None:
                pending[proc] = (pos, n, value)
            elif type(q) is tuple:  # invoked again before completing (Elle's own tests do
                pending[proc] = [q, (pos, n, value)]  # this): completions pair in order
            else:
                q.append((pos, n, value))
            continue
        inv = pending.pop(proc, None)
        if type(inv) is list:
            inv, rest = inv[0], inv[1:]
            pending[proc] = rest[0] if len(rest) == 1 else rest
        if value is None and inv is not None:
            value = inv[2]
        if value is None:
            value = []
        out, appends, lists, scalars = _mops(value, where, n, typ)
        if lists and scalars:
            raise _bad(where, n, "a read returns a list (list-append) and another a single "
                                 "value (rw-register) in one transaction")
        if appends and scalars:
            raise _bad(where, n, "an append (list-append) and a read that returns a single "
                                 "value (rw-register) in one transaction: list-append reads "
                                 "return lists")
        i = len(status)
        names.append(index if type(index) is int or (index is not None
                                                     and type(index) in _HASHABLE) else pos)
        status.append(typ)
        process.append(proc)
        invoke.append(inv[0] if inv is not None else None)
        complete.append(pos if typ is not INFO else None)
        ops.append(out)
        if appends:
            saw_append = True
        elif appends is None:
            saw_w = True
        if lists and list_read is None:
            list_read = n
        if scalars and scalar_read is None:
            scalar_read = n
        if typ is OK and len(out) > 1 and (
                out[0][1] == out[1][1] if len(out) == 2 else len({m[1] for m in out}) < len(out)):
            # a transaction that touches each key once can read neither its own writes
            # nor a value it writes later: only one that repeats a key is checked
            if appends or lists:
                _append_self_check(i, out, found)
            else:
                _register_self_check(i, out, found)
    for proc, q in pending.items():  # invoked, never completed: unknown outcome
        for inv in (q if type(q) is list else [q]):
            _add_info(inv, proc, names, status, process, invoke, complete, ops)
    if saw_append and saw_w:
        raise HistoryFormatError(f"{where}: mixes append and w micro-ops; "
                                 "give a list-append or an rw-register history")
    workload = APPEND if (saw_append or list_read is not None) else REGISTER
    if workload == APPEND and scalar_read is not None:
        raise HistoryFormatError(f"{where}:{scalar_read}: a list-append read returns a list "
                                 "(or nil), not a single value")
    return Txns(workload, names, status, process, invoke, complete, ops, {}, found)


def _add_info(inv, proc, names, status, process, invoke, complete, ops) -> None:
    pos, n, value = inv
    try:
        mops = _mops(value if value is not None else [], "line", n, INFO)[0]
    except HistoryFormatError:
        mops = []
    names.append(pos)
    status.append(INFO)
    process.append(proc)
    invoke.append(pos)
    complete.append(None)
    ops.append(mops)


def _register_self_check(i: int, ops: list, found: list) -> None:
    """Elle's rw-register internal check: a read must equal the transaction's own last
    write or read of the key (the first disagreement is reported); and a read of a value
    that the transaction itself writes only later is a future read."""
    state: dict = {}
    for f, k, v, _ in ops:
        if f == "w":
            state[k] = v
            continue
        s = state.get(k)
        if s is not None and s != v:
            found.append(("internal", {"txn": i, "key": k, "expected": s, "actual": v}))
            break
        state[k] = v
    writes = {(m[1], m[2]) for m in ops if m[0] == "w"}
    if not writes:
        return
    written: set = set()
    for f, k, v, _ in ops:
        if f == "w":
            written.add(k)
        elif v is not None and k not in written and (k, v) in writes:
            found.append(("future-read", {"txn": i, "key": k, "element": v}))
            break


def _append_self_check(i: int, ops: list, found: list) -> None:
    """Elle's list-append internal check (a read must equal the transaction's last read of
    the key plus its own appends since, or end with those appends when it had not read the
    key), and future reads (a read showing an element the transaction appends later)."""
    state: dict = {}  # key -> (whole list known?, list)
    for f, k, v, x in ops:
        if f == "r":
            lst = x if x is not None else []
            exp = state.get(k)
            if exp is not None:
                whole, tail = exp
                if whole:
                    bad = lst != tail
                else:
                    bad = len(lst) < len(tail) or lst[len(lst) - len(tail):] != tail
                if bad:
                    found.append(("internal", {"txn": i, "key": k, "actual": lst,
                                               "expected": tail if whole else ["...", *tail]}))
                    break
            state[k] = (True, list(lst))
        else:
            whole, tail = state.get(k, (False, []))
            state[k] = (whole, tail + [v])
    seen: dict = {}  # key -> elements read so far
    for f, k, v, x in ops:
        if f == "r":
            if x:
                seen.setdefault(k, set()).update(x)
        elif k in seen and v in seen[k]:
            found.append(("future-read", {"txn": i, "key": k, "element": v}))
            break
