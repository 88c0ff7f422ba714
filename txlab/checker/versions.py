"""Version orders: who installed each version of each key, and what came next.

The rules, per input format:

- txlab: every write installs (key, version) with the row's version counter;
  the order of a key's versions is their numeric order. Two committed writes
  of one (key, version) are `duplicate-versions`; a hole in the sequence of
  integers is `missing-versions`.
- Elle rw-register: values are unique per key and stand for versions. The
  order comes from what the history proves: the empty initial state precedes
  every write; a transaction that read a (or wrote a) and then wrote b shows
  a < b. A cycle in that order is `cyclic-versions` (the key then gets no
  ww/rw edges).
- Elle list-append: the longest read of a key is its version order; every other
  read must be a prefix of it (else `incompatible-order`); a version is the
  last element of a read. Appends that no read shows have no known position.

Transactions with an unknown outcome (txlab "unknown", Elle "info") are treated
as committed when some committed transaction read what they wrote (txlab: the
same version with the same value, since a version number that a rolled-back
attempt took may be installed again), or (txlab) when the chain needs them: a
later committed version exists and nobody else installed theirs. Otherwise they
are left out, like failed transactions.

txlab's format also records the value of every read and write, and a key's
value means the same thing everywhere, so the index keeps the value each
committed install wrote: a read is checked against it (G1a by value,
garbage-read; see infer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from txlab.checker.loading import APPEND, FAIL, INFO, OK, REGISTER, TXLAB, Txns


@dataclass
class Index:
    writer: dict  # key -> {version: vertex} for committed installs (final and intermediate)
    nextw: dict  # key -> {version: vertex of the next version's writer, or a tuple of them}
    inter: set  # (key, version): overwritten by its own writer in the same transaction
    failed: dict  # (key, version) -> [(vertex, value)] written by failed transactions
    findings: list = field(default_factory=list)  # (anomaly, data dict)
    values: dict | None = None  # txlab: key -> {version: value} of committed installs
    duplicates: dict = field(default_factory=dict)  # txlab: (k, v) -> [values] installed twice


def same_value(a, b) -> bool:
    """Two recorded values are the same: equal as loaded, or once tuples are read as lists
    (a value kept in memory as a tuple comes back from a JSON file as a list)."""
    return a == b or _plain(a) == _plain(b)


def _plain(x):
    if isinstance(x, (list, tuple)):
        return [_plain(e) for e in x]
    if isinstance(x, dict):
        return {k: _plain(e) for k, e in x.items()}
    return x


def _promote(tx: Txns) -> None:
    status, ops = tx.status, tx.ops
    by_value = tx.format == TXLAB
    pending: dict = {}  # (key, version) -> [(vertex, value)] written by unknown transactions
    for i in range(len(status)):
        if status[i] == INFO:
            for op in ops[i]:
                if op[0] == "w":
                    pending.setdefault((op[1], op[2]), []).append((i, op[3]))
    if not pending:
        return

    def saw(i, k, v, value):
        for j, x in pending.get((k, v), ()):
            if j != i and (not by_value or same_value(x, value)):
                status[j] = OK

    for i in range(len(status)):
        if status[i] != OK:
            continue
        for op in ops[i]:
            if op[0] == "r":
                if tx.format == APPEND and isinstance(op[3], list):
                    for v in op[3]:
                        saw(i, op[1], v, v)
                else:
                    saw(i, op[1], op[2], op[3])
            elif op[0] == "pr":
                for row in op[2]:
                    saw(i, row[0], row[1], row[2])
    if by_value:  # the chain needs them: a later committed version exists
        top: dict = {}
        taken = set()
        for i in range(len(status)):
            if status[i] == OK:
                for op in ops[i]:
                    if op[0] == "w":
                        taken.add((op[1], op[2]))
                        if op[1] not in top or op[2] > top[op[1]]:
                            top[op[1]] = op[2]
        for (k, v), js in pending.items():
            if (k, v) not in taken and k in top and top[k] > v:
                for j, _ in js[-1:]:  # the last attempt that took the version number
                    if status[j] == INFO:
                        status[j] = OK


def _writers(tx: Txns, idx: Index) -> None:
    """writer index (txlab: and the values installed), duplicate installs, intermediate
    versions, failed writes."""
    inter, failed, findings = idx.inter, idx.failed, idx.findings
    writer, values = idx.writer, idx.values
    keyed: dict = {}  # key -> (writer[key], values[key] or None): one look-up per write
    status, ops = tx.status, tx.ops
    for i in range(len(status)):
        s = status[i]
        if s == OK:
            first = seen = None  # this transaction's first write; then key -> version
            for op in ops[i]:
                if op[0] != "w":
                    continue
                k, v = op[1], op[2]
                e = keyed.get(k)
                if e is None:
                    e = keyed[k] = (writer.setdefault(k, {}),
                                    None if values is None else values.setdefault(k, {}))
                d, vd = e
                if v in d:
                    findings.append(("duplicate-versions", {"key": k, "version": v,
                                                            "txns": [d[v], i]}))
                    if vd is not None:
                        idx.duplicates.setdefault((k, v), [vd[v]]).append(op[3])
                d[v] = i
                if vd is not None:
                    vd[v] = op[3]
                if first is None:  # most transactions write once: no dict for them
                    first = op
                    continue
                if seen is None:
                    seen = {first[1]: first[2]}
                if k in seen:
                    inter.add((k, seen[k]))
                seen[k] = v
        elif s == FAIL:
            for op in ops[i]:
                if op[0] == "w":
                    failed.setdefault((op[1], op[2]), []).append((i, op[3]))


def _numeric_chains(idx: Index) -> None:
    nextw, findings = idx.nextw, idx.findings
    for k, d in idx.writer.items():
        try:
            vs = sorted(d)
        except TypeError:
            findings.append(("cyclic-versions", {"key": k, "versions": list(d)[:10],
                                                 "why": "versions are not comparable"}))
            continue
        if len(vs) > 1:
            nextw[k] = dict(zip(vs, [d[v] for v in vs[1:]], strict=False))
            if type(vs[0]) is int and vs[-1] - vs[0] + 1 != len(vs):
                for a, b in zip(vs, vs[1:], strict=False):
                    if b != a + 1:
                        findings.append(("missing-versions", {
                            "key": k, "after": a, "before": b, "txns": [d[a], d[b]],
                            "why": "no transaction installed version " + (
                                f"{a + 1}" if b == a + 2 else f"{a + 1}..{b - 1}")}))


def _register_chains(tx: Txns, idx: Index) -> None:
    succ: dict = {}  # key -> {a: set(b)}
    for i in range(len(tx.status)):
        if tx.status[i] != OK:
            continue
        last: dict = {}
        for op in tx.ops[i]:
            k, v = op[1], op[2]
            if op[0] == "w":
                if k in last and last[k] != v:
                    succ.setdefault(k, {}).setdefault(last[k], set()).add(v)
                last[k] = v
            elif op[0] == "r" and k not in last:
                last[k] = v
    for i in range(len(tx.status)):  # keys only ever read still start at nil
        if tx.status[i] == OK:
            for op in tx.ops[i]:
                if op[0] == "r" and op[1] not in idx.writer:
                    idx.writer[op[1]] = {}
    for k, d in idx.writer.items():
        d[None] = 0
        s = succ.setdefault(k, {})
        has_pred = {b for bs in s.values() for b in bs}
        for v in d:
            if v is not None and v not in has_pred:
                s.setdefault(None, set()).add(v)
        cycle = _find_cycle(s)
        if cycle:
            idx.findings.append(("cyclic-versions", {"key": k, "versions": cycle,
                                                     "txns": [d.get(v) for v in cycle]}))
            continue
        nx = idx.nextw[k] = {}
        for a, bs in s.items():
            ws = tuple(d[b] for b in bs if b in d)
            if ws:
                nx[a] = ws[0] if len(ws) == 1 else ws


def _find_cycle(succ: dict) -> list | None:
    color: dict = {}
    for root in list(succ):
        if root in color:
            continue
        color[root] = 1
        path = [root]
        stack = [iter(succ.get(root, ()))]
        while stack:
            for w in stack[-1]:
                c = color.get(w)
                if c == 1:
                    return path[path.index(w):] + [w]
                if c is None:
                    color[w] = 1
                    path.append(w)
                    stack.append(iter(succ.get(w, ())))
                    break
            else:
                stack.pop()
                color[path.pop()] = 2
    return None


def _append_chains(tx: Txns, idx: Index) -> None:
    longest: dict = {}
    reads = []
    for i in range(len(tx.status)):
        if tx.status[i] != OK:
            continue
        for op in tx.ops[i]:
            if op[0] == "r" and isinstance(op[3], list):
                reads.append((i, op[1], op[3]))
                cur = longest.get(op[1])
                if cur is None or len(op[3]) > len(cur[1]):
                    longest[op[1]] = (i, op[3])
    bad = set()
    for i, k, lst in reads:
        j, full = longest[k]
        if full[:len(lst)] != lst:
            if k not in bad:
                idx.findings.append(("incompatible-order", {"key": k, "txns": [i, j],
                                                            "reads": [lst, full]}))
            bad.add(k)
        elif lst and idx.failed:
            for e in lst[:-1]:  # the last element is checked with every read (G1a)
                if (k, e) in idx.failed:
                    idx.findings.append(("G1a", {"reader": i, "writer": idx.failed[(k, e)][0][0],
                                                 "key": k, "version": e}))
    for k, (j, full) in longest.items():
        d = idx.writer.setdefault(k, {})
        d[None] = 0
        if len(set(full)) != len(full):
            idx.findings.append(("duplicate-versions", {"key": k, "txns": [j],
                                                        "why": "an element appears twice"}))
            continue
        if k in bad:
            continue
        for e in full:
            if e not in d and (k, e) not in idx.failed:
                idx.findings.append(("missing-versions", {"key": k, "version": e, "txns": [j],
                                                          "why": "read an element nobody appended"}))
        order = [None] + full
        idx.nextw[k] = {a: d[b] for a, b in zip(order, order[1:], strict=False) if b in d}


def build(tx: Txns) -> Index:
    _promote(tx)
    idx = Index({}, {}, set(), {}, values={} if tx.format == TXLAB else None)
    _writers(tx, idx)
    if tx.format == TXLAB:
        _numeric_chains(idx)
    elif tx.format == REGISTER:
        _register_chains(tx, idx)
    else:
        _append_chains(tx, idx)
    return idx


# ---------------------------------------------------------------- Elle -> Txns


def normalise_elle(workload: str, txns: list[tuple]) -> Txns:
    """(index, status, process, t_invoke, t_complete, mops) -> Txns with T0 at 0."""
    if all(t[3] is not None or t[4] is not None for t in txns):  # else keep the file's order
        txns.sort(key=lambda t: t[3] if t[3] is not None else t[4])
    n = len(txns) + 1
    names, status, process, invoke, complete, ops, raw = ([None] * n for _ in range(7))
    names[0], status[0], ops[0], raw[0] = 0, OK, [], []
    internal = []
    for i, (name, s, p, ti, tc, mops) in enumerate(txns, 1):
        names[i], status[i], process[i], invoke[i], complete[i], raw[i] = name, s, p, ti, tc, mops
        out = []
        state: dict = {}  # key -> what this transaction should read now
        for f, k, v in mops:
            if f == "r":
                if s != OK:  # a failed or indeterminate read tells nothing
                    continue
                if workload == APPEND:
                    if not isinstance(v, list):
                        continue
                    out.append(("r", k, v[-1] if v else None, v))
                    exp = state.get(k)
                    if exp is not None:
                        whole, tail = exp
                        ok = v == tail if whole else (len(v) >= len(tail) and v[len(v) - len(tail):] == tail)
                        if not ok:
                            internal.append((i, k, (list(tail) if whole else ["...", *tail]), v))
                    state[k] = (True, list(v))
                else:
                    out.append(("r", k, v, v))
                    if k in state and state[k] != v:
                        internal.append((i, k, state[k], v))
                    state[k] = v
            elif f == "append":
                out.append(("w", k, v, v))
                whole, tail = state.get(k, (False, []))
                state[k] = (whole, tail + [v])
            else:
                out.append(("w", k, v, v))
                state[k] = v
        ops[i] = out
    tx = Txns(workload, names, status, process, invoke, complete, ops, {}, raw)
    tx.internal = internal
    return tx
