"""Dependency edges from the version index, and the anomalies read off directly.

Edge rules (vertex = committed transaction; T0 installed the initial versions):

- wr: Tj read (k, v) and Ti installed (k, v)                        Ti -> Tj
- ww: Ti's final write of k installed v; Tj installed the next version  Ti -> Tj
- rw: Ti read (k, v); Tj installed the next version of k             Ti -> Tj
- predicate rw: a predicate read is taken as an item read of every row it
  returned (so wr and rw edges as above, the rw edges marked "predicate").
  Rows it did not return give no edges: whether a row inserted or changed
  later would have matched the predicate is not knowable from the history,
  so phantoms through rows that were never returned are not detected.
- process: the same worker ran Ti and then Tj (consecutive committed ones).
- realtime: Ti completed before Tj was invoked; only Elle's minimal set: Tj
  gets an edge from each transaction on the "frontier" (completed, and not
  yet known to precede another completed one) when Tj is invoked.

Reads of a key the transaction itself wrote before give no edges; they are
checked for internal consistency instead (txlab: the version and the value it
last wrote). A read of an intermediate version (G1b) gives no edges either:
only a transaction's final write of a key is installed (Adya), though the
intermediate versions do take their place in the key's version chain.

Values (txlab's format only; Elle's values are its versions): a committed read
of (k, v) must return the value that v's committed installer wrote. When it
does not, the value tells what happened: a failed attempt that took the same
version number wrote it (G1a), or nobody did (garbage-read). Values are first
compared as loaded; only when they differ are tuples read as lists.
"""

from __future__ import annotations

from txlab.checker.loading import APPEND, OK, TXLAB, Txns
from txlab.checker.versions import Index, same_value

WW, WR, RW, PRW, PROC, RT = 1, 2, 4, 8, 16, 32
DATA = WW | WR | RW | PRW
RWS = RW | PRW
EDGE_NAMES = {WW: "ww", WR: "wr", RW: "rw", PRW: "rw", PROC: "process", RT: "realtime"}


def _bad_read(tx: Txns, idx: Index, i: int, k, v, value, found: list) -> None:
    """A committed read of a version no committed transaction installed."""
    if tx.format == APPEND:
        return  # list-append: G1a and elements nobody appended are found per element
    if (k, v) in idx.unknown:
        return  # an attempt of unknown outcome wrote it (one of several: which committed is open)
    fw = idx.failed.get((k, v))
    if fw:
        j = next((j for j, x in fw if same_value(x, value)), fw[0][0])
        found.append(("G1a", {"reader": i, "writer": j, "key": k, "version": v}))
    elif tx.format == TXLAB:
        found.append(("missing-versions", {"key": k, "version": v, "txns": [i],
                                           "why": "read a version that no transaction installed"}))
    elif idx.options.garbage_reads:
        found.append(("garbage-read", {"reader": i, "key": k, "version": v, "value": value,
                                       "why": "read a value that no transaction wrote"}))


def _wrong_value(idx: Index, i: int, w: int, k, v, value, installed, found: list) -> None:
    """txlab: i read (k, v) = value, but v's committed installer w wrote `installed`."""
    if same_value(value, installed):
        return
    for j, x in idx.failed.get((k, v), ()):  # a rolled-back attempt took the same number
        if same_value(x, value):
            found.append(("G1a", {"reader": i, "writer": j, "key": k, "version": v}))
            return
    if any(same_value(x, value) for x in idx.duplicates.get((k, v), ())):
        return  # another committed install of v: already duplicate-versions
    found.append(("garbage-read", {"reader": i, "writer": w, "key": k, "version": v,
                                   "value": value, "installed": installed}))


def _link_next(ai: list, i: int, nx) -> None:
    """Edges from i to the writer(s) `nx` of the next version (not to i itself). The
    hot loops below keep this inline; it serves the rarer list-append case."""
    if nx is None:
        return
    if type(nx) is int:
        if nx != i:
            ai.append(nx)
    else:
        ai.extend(x for x in nx if x != i)


def build(tx: Txns, idx: Index, process: bool = True, realtime: bool = True):
    """-> (adjacency lists over all edges, non-cycle findings)."""
    n = len(tx)
    status, ops_of = tx.status, tx.ops
    nextw, inter, values = idx.nextw, idx.inter, idx.values
    # key -> (version -> installer, version -> value installed (txlab) or None)
    keyed = {k: (d, None if values is None else values.get(k)) for k, d in idx.writer.items()}
    adj = [[] for _ in range(n)]
    found: list = []
    rmw: dict = {}  # k -> {v: transactions that read v of k, then wrote k} (lost updates)
    own = tx.format == TXLAB  # Elle formats: internal and future reads were found loading
    inter_edges = tx.format == APPEND  # Elle list-append: a read of an intermediate version
    # still shows who came before and after it; txlab and rw-register: no edges (Adya)
    for i in range(n):
        if status[i] != OK:
            continue
        ai = adj[i]
        written = None  # key -> this transaction's last write op of it
        reads = None  # (k, v) read before this transaction wrote k
        for op in ops_of[i]:
            f = op[0]
            if f == "w":
                if written is None:
                    written = {op[1]: op}
                else:
                    k = op[1]
                    if inter_edges and k in written:
                        # Elle list-append: every append is a version, so an earlier
                        # append of this key precedes whatever came right after it (the
                        # last one's successor is linked below, with the other keys')
                        _link_next(ai, i, nextw.get(k, {}).get(written[k][2]))
                    written[k] = op
                continue
            if f == "r":
                rows = (op,)
                off = 1
            else:
                rows = op[2]
                off = 0
            for row in rows:
                k = row[off]
                v = row[off + 1]
                if written is not None and k in written:
                    if own:
                        mine = written[k]
                        if mine[2] != v or (mine[3] != row[off + 2]
                                            and not same_value(mine[3], row[off + 2])):
                            found.append(("internal", {
                                "txn": i, "key": k, "expected": mine[2], "actual": v,
                                "expected_value": mine[3], "actual_value": row[off + 2]}))
                    continue
                if reads is None:
                    reads = [(k, v)]
                else:
                    reads.append((k, v))
                e = keyed.get(k)
                if e is None:
                    w = None
                else:
                    d, vd = e
                    w = d.get(v)
                if w is None:
                    _bad_read(tx, idx, i, k, v, row[off + 2], found)
                elif w != i:
                    if inter and (k, v) in inter:  # never installed
                        found.append(("G1b", {"reader": i, "writer": w, "key": k, "version": v}))
                        if not inter_edges:
                            continue
                    adj[w].append(i)
                    if vd is not None:
                        x = vd[v]
                        if x != row[off + 2]:
                            _wrong_value(idx, i, w, k, v, row[off + 2], x, found)
                elif own:  # it read the version it installs itself, later
                    found.append(("future-read", {"txn": i, "key": k, "element": v}))
                nd = nextw.get(k)
                if nd is None:
                    continue
                nx = nd.get(v)
                if nx is None:
                    continue
                if type(nx) is int:
                    if nx != i:
                        ai.append(nx)
                else:
                    ai.extend(x for x in nx if x != i)
        if written is not None:
            for k, mine in written.items():
                v = mine[2]
                nd = nextw.get(k)
                if nd is not None:
                    nx = nd.get(v)
                    if nx is not None:
                        if type(nx) is int:
                            if nx != i:
                                ai.append(nx)
                        else:
                            ai.extend(x for x in nx if x != i)
            if reads is not None:
                done = None
                for k, v in reads:
                    if k in written and (done is None or k not in done):
                        rk = rmw.get(k)
                        if rk is None:
                            rk = rmw[k] = {}
                        g = rk.get(v)
                        if g is None:
                            rk[v] = i
                        elif type(g) is int:
                            rk[v] = [g, i]
                        else:
                            g.append(i)
                        if done is None:
                            done = {k}
                        else:
                            done.add(k)
    for k, rk in rmw.items():
        for v, g in rk.items():
            if type(g) is list:
                found.append(("lost update", {"key": k, "version": v, "txns": g,
                                              "lost": len(g) - 1}))
    del rmw
    if process:
        _process_edges(tx, adj)
    if realtime:
        _realtime_edges(tx, adj)
    return adj, found


def first_reads(ops: list) -> dict:
    """key -> version of the transaction's reads that came before its own writes."""
    out: dict = {}
    written = set()
    for op in ops:
        if op[0] == "w":
            written.add(op[1])
        elif op[0] == "r" and op[1] not in written and op[1] not in out:
            out[op[1]] = op[2]
    return out


def _process_edges(tx: Txns, adj: list) -> None:
    last: dict = {}
    status, process = tx.status, tx.process
    for i in _invoke_order(tx):
        p = process[i]
        if p is None or status[i] != OK:
            continue
        j = last.get(p)
        if j is not None:
            adj[j].append(i)
        last[p] = i


def _invoke_order(tx: Txns):
    inv = tx.invoke
    n = len(inv)
    prev = None
    for i in range(1, n):
        t = inv[i]
        if t is None or (prev is not None and t < prev):
            return sorted(range(1, n), key=lambda j: (inv[j] is None, inv[j] or 0))
        prev = t
    return range(1, n)


def realtime_pairs(tx: Txns, vertices):
    """Elle's minimal realtime relation among `vertices` (committed, timed): yields (a, b)."""
    inv, comp = tx.invoke, tx.complete
    timed = [v for v in vertices if inv[v] is not None and comp[v] is not None]
    by_inv = sorted(timed, key=inv.__getitem__)
    by_comp = sorted(timed, key=comp.__getitem__)
    frontier: dict = {}
    preds: dict = {}
    ci, nc = 0, len(by_comp)
    for j in by_inv:
        t = inv[j]
        while ci < nc and comp[by_comp[ci]] < t:
            c = by_comp[ci]
            ci += 1
            for x in preds.pop(c, ()):
                frontier.pop(x, None)
            frontier[c] = None
        if frontier:
            fr = tuple(frontier)
            preds[j] = fr
            for x in fr:
                yield x, j


def _realtime_edges(tx: Txns, adj: list) -> None:
    status = tx.status
    committed = [i for i in range(1, len(status)) if status[i] == OK]
    for a, b in realtime_pairs(tx, committed):
        adj[a].append(b)


# ---------------------------------------------------------------- one component


def labelled_edges(tx: Txns, idx: Index, members: list, process: bool = True,
                   realtime: bool = True) -> dict:
    """{u: {v: mask}} for the edges with both ends in `members` (the slow, labelled path)."""
    inside = set(members)
    out: dict = {u: {} for u in members}
    writer, nextw = idx.writer, idx.nextw

    def add(a, b, bit):
        if a != b and a in inside and b in inside:
            e = out[a]
            e[b] = e.get(b, 0) | bit

    def nexts(k, v):
        nx = nextw.get(k, {}).get(v)
        return () if nx is None else (nx,) if type(nx) is int else nx

    append = tx.format == APPEND
    for u in members:
        written: dict = {}
        for op in tx.ops[u]:
            if op[0] == "w":
                if append and op[1] in written:  # an earlier append: a version too
                    for nx in nexts(op[1], written[op[1]]):
                        add(u, nx, WW)
                written[op[1]] = op[2]
                continue
            rows, bit = ((op[1:],), RW) if op[0] == "r" else (op[2], PRW)
            for k, v, *_ in rows:
                if k in written or (k, v) in idx.inter and tx.format != APPEND:
                    continue
                w = writer.get(k, {}).get(v)
                if w is not None:
                    add(w, u, WR)
                for nx in nexts(k, v):
                    add(u, nx, bit)
        for k, v in written.items():
            for nx in nexts(k, v):
                add(u, nx, WW)
    last: dict = {}
    order = sorted(members, key=lambda m: (tx.invoke[m] is None, tx.invoke[m] or 0, m))
    inv, comp = tx.invoke, tx.complete
    for u in order if process else ():
        p = tx.process[u]
        if p is not None:
            if p in last:
                a = last[p]
                # With real-time order on, a process's order is real-time order (Elle
                # then uses only the real-time graph, and names such cycles -realtime).
                timed = realtime and comp[a] is not None and inv[u] is not None \
                    and comp[a] < inv[u]
                add(a, u, RT if timed else PROC)
            last[p] = u
    if realtime:
        for a, b in realtime_pairs(tx, members):
            add(a, b, RT)
    return out
