"""Version orders: who installed each version of each key, and what came next.

The rules, per input format (docs/checker.md, "Version orders"):

- txlab: every write installs (key, version) with the row's version counter;
  the order of a key's versions is their numeric order. Two committed writes
  of one (key, version) are `duplicate-versions`; a hole in the sequence of
  integers is `missing-versions`.
- Elle rw-register: values are unique per key and stand for versions. The
  version order is a graph built as Elle builds it, from sources taken in turn:
  the initial state (nil precedes every value), the transactions' own order of
  writes and, with `wfr_keys` (writes follow reads), a read of a followed by a
  write of b (a < b); with `sequential_keys` the process order, with
  `linearizable_keys` the real-time order (the last value one transaction saw
  or wrote precedes the first the next one saw or wrote). A source that would
  make a key's order cyclic is `cyclic-versions` and is left out for that key.
  Each edge a -> b of the graph gives ww edges from a's writer and rw edges
  from a's readers to b's writer.
- Elle list-append: the longest read of a key is its version order (its
  distinct elements, in order: even when another read is not a prefix of it,
  `incompatible-order`, or it holds an element twice, `duplicate-elements`);
  a version is the last element of a read. Appends that no read shows come
  after the longest read (Elle does the same), in no known order among
  themselves.

Transactions with an unknown outcome (txlab "unknown", Elle "info") are treated
as committed when some committed transaction read what they wrote (txlab: the
same version with the same value, since a version number that a rolled-back
attempt took may be installed again), or (txlab) when the chain needs them: a
later committed version exists. Only when exactly one unknown transaction wrote
that version and no committed one installed it: otherwise it stays open (see
_promote). Otherwise they are left out, like failed transactions.

txlab's format also records the value of every read and write, and a key's
value means the same thing everywhere, so the index keeps the value each
committed install wrote: a read is checked against it (G1a by value,
garbage-read; see infer.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from txlab.checker.loading import APPEND, FAIL, INFO, OK, REGISTER, TXLAB, Txns

EMPTY: tuple = ()


class Options(NamedTuple):
    """How much to infer from an Elle history (Elle's own option names, docs/checker.md).

    wfr_keys: within a transaction, writes follow reads (a read of a, then a write
    of b, shows a < b); on by default in txlab (Elle's default is off).
    sequential_keys / linearizable_keys: each key is sequentially consistent /
    linearizable, so the process / real-time order orders its versions (Elle).
    garbage_reads: report a read of a value that no transaction wrote (Elle does
    not); on by default.
    """

    wfr_keys: bool = True
    sequential_keys: bool = False
    linearizable_keys: bool = False
    garbage_reads: bool = True


@dataclass
class Index:
    writer: dict  # key -> {version: vertex} for committed installs (final and intermediate)
    nextw: dict  # key -> {version: vertex of the next version's writer, or a tuple of them}
    inter: set  # (key, version): overwritten by its own writer in the same transaction
    failed: dict  # (key, version) -> [(vertex, value)] written by failed transactions
    findings: list = field(default_factory=list)  # (anomaly, data dict)
    values: dict | None = None  # txlab: key -> {version: value} of committed installs
    duplicates: dict = field(default_factory=dict)  # txlab: (k, v) -> [values] installed twice
    unknown: dict = field(default_factory=dict)  # (k, v) -> vertex written by an unknown outcome
    options: Options = Options()
    # Elle list-append: key -> {element: the element appended right after it}, from the
    # longest read (an element no read shows follows the last one shown, unnamed here)
    after: dict = field(default_factory=dict)


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


def _promote(tx: Txns, idx: Index) -> None:
    """Unknown-outcome transactions that must have committed become committed.

    - Read: a committed transaction read a version (txlab: with the same value) that
      exactly one unknown transaction wrote: that writer committed. Unless a committed
      transaction installed that version with that value: then it is what was read
      (a version is installed once, so the unknown writer of the same value need not
      have committed). Several unknown writers of one version leave it open (one of
      them committed, which one cannot be told).
    - Chain (txlab): a later version of the key was committed, so this one was too;
      again only when exactly one unknown transaction wrote it.
    Repeated until nothing changes: a promoted transaction's reads count too. What
    stays open stays unknown (left out, like a failed transaction), never a guess:
    a wrong guess would make a duplicate version, a forbidden anomaly that never
    happened."""
    status, ops = tx.status, tx.ops
    by_value = tx.format == TXLAB
    lists = tx.format == APPEND
    pending: dict = {}  # (key, version) -> [(vertex, value)] written by unknown transactions
    for i in range(len(status)):
        if status[i] == INFO:
            for op in ops[i]:
                if op[0] == "w":
                    pending.setdefault((op[1], op[2]), []).append((i, op[3]))
                    idx.unknown[(op[1], op[2])] = i
    if not pending:
        return
    taken: dict = {}  # (key, version) a committed transaction installed -> its value
    top: dict = {}  # key -> its highest committed version (txlab)
    promoted: list = []

    def installs(i) -> None:
        for op in ops[i]:
            if op[0] == "w":
                taken.setdefault((op[1], op[2]), op[3])
                if by_value and (op[1] not in top or op[2] > top[op[1]]):
                    top[op[1]] = op[2]

    def promote(j) -> None:
        status[j] = OK
        installs(j)
        promoted.append(j)

    def only(cands: list) -> None:
        if len(cands) == 1:
            promote(cands[0])

    def saw(i, k, v, value):
        if (k, v) in taken and (not by_value or same_value(taken[(k, v)], value)):
            return  # the committed install explains the read
        only([j for j, x in pending.get((k, v), ()) if j != i and status[j] == INFO
              and (not by_value or same_value(x, value))])

    readers = [i for i in range(len(status)) if status[i] == OK]
    for i in readers:
        installs(i)
    while readers:
        for i in readers:
            for op in ops[i]:
                if op[0] == "r":
                    if lists:
                        for v in op[3] or EMPTY:
                            saw(i, op[1], v, v)
                    else:
                        saw(i, op[1], op[2], op[3])
                elif op[0] == "pr":
                    for row in op[2]:
                        saw(i, row[0], row[1], row[2])
        if by_value:  # the chain needs them: a later committed version exists
            for (k, v), js in pending.items():
                if (k, v) not in taken and k in top and top[k] > v:
                    only([j for j, _ in js if status[j] == INFO])
        readers, promoted[:] = list(promoted), []


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
                    # a hole that unknown-outcome writers fill (which of several
                    # committed is not known) is not a missing version
                    if b != a + 1 and not all((k, x) in idx.unknown for x in range(a + 1, b)):
                        findings.append(("missing-versions", {
                            "key": k, "after": a, "before": b, "txns": [d[a], d[b]],
                            "why": "no transaction installed version " + (
                                f"{a + 1}" if b == a + 2 else f"{a + 1}..{b - 1}")}))


# ---------------------------------------------------------------- Elle rw-register


def _first_final(ops: list, committed: bool) -> dict:
    """key -> (first value, last value) the transaction saw or wrote, as Elle's process and
    real-time sources take them: first = its first read before writing the key, else its
    final write; last = its final write, else its first read. An unknown-outcome
    transaction counts only its writes."""
    out: dict = {}
    for op in ops:
        f, k, v = op[0], op[1], op[2]
        if f == "w":
            e = out.get(k)
            out[k] = (v, v, True) if e is None else (e[0], v, True)
        elif committed and k not in out:
            out[k] = (v, v, False)
    return out


def _order_sources(tx: Txns, opts: Options) -> list:
    """[(source name, {key: set of (a, b)})] beyond the initial state, in Elle's order."""
    status, ops = tx.status, tx.ops
    own: dict = {}
    it = zip(status, ops, strict=True)
    next(it)  # T0
    for s, o in it:
        if s != OK:
            continue
        if len(o) < 2 or (o[0][1] != o[1][1] if len(o) == 2
                          else len({op[1] for op in o}) == len(o)):
            continue  # each key once: no order of its own between two values
        last: dict = {}
        for op in o:
            f, k, v = op[0], op[1], op[2]
            if f == "w":
                a = last.get(k)
                if a is not None and a != v:
                    own.setdefault(k, set()).add((a, v))
                last[k] = v
            elif opts.wfr_keys and k not in last and v is not None:
                last[k] = v
    sources = [("wfr-keys" if opts.wfr_keys else "transaction order", own)]
    if opts.sequential_keys or opts.linearizable_keys:
        vals = [None] * len(status)
        for i in range(1, len(status)):
            if status[i] == OK or (status[i] == INFO):
                vals[i] = _first_final(ops[i], status[i] == OK)
        if opts.sequential_keys:
            sources.append(("sequential-keys", _process_order(tx, vals)))
        if opts.linearizable_keys:
            sources.append(("linearizable-keys", _realtime_order(tx, vals)))
    return sources


def _link(edges: dict, k, a, b) -> None:
    if a != b:
        edges.setdefault(k, set()).add((a, b))


def _process_order(tx: Txns, vals: list) -> dict:
    """Each key sequentially consistent: a process's consecutive transactions on a key
    order the last value the earlier one saw or wrote before the first of the later."""
    edges: dict = {}
    last: dict = {}  # (process, key) -> last value
    inv = tx.invoke
    order = sorted((i for i in range(1, len(vals)) if vals[i] is not None),
                   key=lambda i: (inv[i] is None, inv[i] or 0, i))
    for i in order:
        p = tx.process[i]
        for k, (first, final, _) in vals[i].items():
            a = last.get((p, k), _NONE)
            if a is not _NONE:
                _link(edges, k, a, first)
            last[(p, k)] = final
    return edges


_NONE = object()


def _realtime_order(tx: Txns, vals: list) -> dict:
    """Each key linearizable: when T completed before U began, and no transaction on the
    key lies between them in real time, T's last value of the key precedes U's first."""
    edges: dict = {}
    by_key: dict = {}
    inv, comp = tx.invoke, tx.complete
    for i in range(1, len(vals)):
        if vals[i] is not None and inv[i] is not None:
            for k in vals[i]:
                by_key.setdefault(k, []).append(i)
    inf = float("inf")
    for k, ts in by_key.items():
        ts.sort(key=inv.__getitem__)
        invs = [inv[t] for t in ts]
        sufmin = [inf] * (len(ts) + 1)
        for j in range(len(ts) - 1, -1, -1):
            c = comp[ts[j]]
            sufmin[j] = min(sufmin[j + 1], inf if c is None else c)
        for a in ts:
            ca = comp[a]
            if ca is None or tx.status[a] != OK:
                continue
            j = bisect_right(invs, ca)
            m = sufmin[j]
            final = vals[a][k][1]
            while j < len(ts) and invs[j] <= m:
                _link(edges, k, final, vals[ts[j]][k][0])
                j += 1
    return edges


def _register_chains(tx: Txns, idx: Index) -> None:
    writer = idx.writer
    status, ops = tx.status, tx.ops
    values: dict = defaultdict(set)  # key -> values the initial state precedes
    for i in range(1, len(status)):
        s = status[i]
        if s == OK:
            for op in ops[i]:
                values[op[1]].add(op[2])
        elif s == INFO:
            for op in ops[i]:
                if op[0] == "w":
                    values[op[1]].add(op[2])
    for k in values:
        writer.setdefault(k, {})
    for d in writer.values():
        d[None] = 0
    succ = {k: {None: {v for v in vs if v is not None}} for k, vs in values.items()}
    used = {k: ["initial-state"] for k in succ}
    for name, edges in _order_sources(tx, idx.options):
        for k, pairs in edges.items():
            sk = succ.setdefault(k, {None: set()})
            added = []
            for a, b in pairs:
                bs = sk.setdefault(a, set())
                if b not in bs:
                    bs.add(b)
                    added.append((a, b))
            if not added:
                continue
            cycle = _find_cycle(sk) if _may_cycle(sk) else None
            if cycle:
                d = writer.get(k, {})
                idx.findings.append(("cyclic-versions", {
                    "key": k, "versions": cycle, "txns": [d.get(v) for v in cycle],
                    "sources": used.get(k, ["initial-state"]) + [name]}))
                for a, b in added:
                    sk[a].discard(b)
            else:
                used.setdefault(k, ["initial-state"]).append(name)
    for k, sk in succ.items():
        d = writer.get(k)
        if not d:
            continue
        nx = idx.nextw[k] = {}
        for a, bs in sk.items():
            if len(bs) == 1:  # most versions have one successor
                for b in bs:
                    w = d.get(b)
                    if w is not None:
                        nx[a] = w
                continue
            ws = dict.fromkeys(map(d.get, bs))  # their writers, in order, once each
            ws.pop(None, None)  # (a version nobody committed has none)
            if ws:
                ws = tuple(ws)
                nx[a] = ws[0] if len(ws) == 1 else ws


def _may_cycle(succ: dict) -> bool:
    """False when the version graph of a key is certainly acyclic, found cheaply: the
    initial state (None) precedes every value, so a walk from it visits them all; but
    with no edge into it, it lies on no cycle, and the rest is searched without it."""
    if any(None in bs for bs in succ.values()):
        return True
    return _find_cycle({a: bs for a, bs in succ.items() if a is not None}) is not None


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


# ---------------------------------------------------------------- Elle list-append


def _append_chains(tx: Txns, idx: Index) -> None:
    status, ops = tx.status, tx.ops
    findings, failed, writer = idx.findings, idx.failed, idx.writer
    longest: dict = {}  # key -> (reader, the longest list read)
    for i in range(1, len(status)):
        if status[i] != OK:
            continue
        for op in ops[i]:
            if op[0] == "r" and op[3]:
                cur = longest.get(op[1])
                if cur is None or len(op[3]) > len(cur[1]):
                    longest[op[1]] = (i, op[3])
    bad: set = set()
    dup_seen: set = set()
    garbage = idx.options.garbage_reads
    shown = {k: set(full) for k, (_, full) in longest.items()}
    stray: dict = {k_e: j for k, (j, full) in longest.items() for k_e in
                   ((k, e) for e in dict.fromkeys(full))} if garbage else {}
    for i in range(1, len(status)):
        if status[i] != OK:
            continue
        for op in ops[i]:
            if op[0] != "r" or not op[3]:
                continue
            k, lst = op[1], op[3]
            j, full = longest[k]
            if full[:len(lst)] != lst:
                if k not in bad:
                    bad.add(k)
                    findings.append(("incompatible-order", {"key": k, "txns": [i, j],
                                                            "reads": [lst, full]}))
                if garbage:
                    for e in dict.fromkeys(lst):
                        if e not in shown[k]:
                            stray.setdefault((k, e), i)
            if len(set(lst)) != len(lst) and (i, k) not in dup_seen:
                dup_seen.add((i, k))
                findings.append(("duplicate-elements", {
                    "key": k, "txns": [i], "read": lst,
                    "why": "an element appears twice: "
                           + ", ".join(repr(e) for e in dict.fromkeys(lst) if lst.count(e) > 1)}))
            if failed:
                for e in lst:
                    fw = failed.get((k, e))
                    if fw:
                        findings.append(("G1a", {"reader": i, "writer": fw[0][0], "key": k,
                                                 "version": e}))
    appended: dict = {}  # key -> committed appenders of elements no read shows
    for k, d in writer.items():
        order = list(dict.fromkeys(longest[k][1])) if k in longest else []
        shown = set(order)
        for e, w in d.items():
            if e not in shown:
                appended.setdefault(k, []).append(w)
    for k in set(longest) | set(writer):
        d = writer.setdefault(k, {})
        d[None] = 0
        j, full = longest.get(k, (None, []))
        order = list(dict.fromkeys(full))
        chain = [None] + order
        nx = {a: d[b] for a, b in zip(chain, chain[1:], strict=False) if b in d}
        idx.after[k] = dict(zip(order, order[1:], strict=False))
        late = appended.get(k)
        if late:
            ws = tuple(dict.fromkeys(late))
            nx[chain[-1]] = ws[0] if len(ws) == 1 else ws
        idx.nextw[k] = nx
        _dirty_updates(tx, idx, k, order)
    for (k, e), j in stray.items():  # elements read that no transaction appended
        if e not in writer[k] and (k, e) not in failed and (k, e) not in idx.unknown:
            findings.append(("garbage-read", {"reader": j, "key": k, "version": e, "value": e}))


def _dirty_updates(tx: Txns, idx: Index, k, order: list) -> None:
    """Elle's dirty update: in a key's version order, a committed append follows a failed
    one (perhaps through appends of unknown outcome)."""
    if not idx.failed:
        return
    d = idx.writer[k]
    prev, vs, prev_w = OK, [], None
    for e in order:
        if (k, e) in idx.unknown:
            t, w = INFO, idx.unknown[(k, e)]
        elif e in d:
            t, w = OK, d[e]
        elif (k, e) in idx.failed:
            t, w = FAIL, idx.failed[(k, e)][0][0]
        else:
            continue
        if t == OK:
            if prev == FAIL:
                idx.findings.append(("dirty-update", {"key": k, "values": vs + [e],
                                                      "txns": [prev_w, w]}))
            prev, vs, prev_w = OK, [e], w
        elif t == FAIL:
            if prev == FAIL:
                vs = vs + [e]
            else:
                prev, vs, prev_w = FAIL, [e], w
        else:
            vs = vs + [e]


DEFAULTS = Options()


def build(tx: Txns, options: Options = DEFAULTS) -> Index:
    idx = Index({}, {}, set(), {}, values={} if tx.format == TXLAB else None, options=options)
    _promote(tx, idx)
    _writers(tx, idx)
    if tx.format == TXLAB:
        _numeric_chains(idx)
    elif tx.format == REGISTER:
        _register_chains(tx, idx)
    else:
        _append_chains(tx, idx)
    return idx
