"""A long txlab history checked a segment at a time, in bounded memory, with the verdict
of the whole.

Take the records in one order (`ordered`: the order they completed). A cycle needs an
edge that runs backwards in that order, from a later transaction to an earlier one.
So a cut between two records that no such edge (and no other finding) crosses splits
the history into parts that can be checked one by one: every cycle, and every
finding, lies inside one part. `plan` finds such cuts in one streaming pass, keeping
per key only the latest committed version and a window of recent ones:

- a read of (k, v) by record q: its rw edge goes to the installer of the version
  after v. A cut at p is safe for it only if v is still the latest committed version
  of k at p (else that installer lies before p, a backward edge). So the records
  from the one that first raised k above v up to q stay together.
- a committed write of (k, v) below k's latest version (completed out of commit
  order): the same, for v - 1 (its ww edge from the previous version's installer,
  which may come later).
- a read of a version not written yet (its writer comes later: a wr edge backwards),
  or one an aborted attempt wrote later (G1a): reader and writer stay together.
- two transactions that read one version of a key and then wrote the key (a lost
  update): they stay together.
- a second committed install of one version (or an install out of order further back
  than the window), or a transaction of unknown outcome: no cut at all (the history
  is checked whole).

Each part is checked with a context in place of what came before it: for each key,
the transaction that installed its latest version (with those writes only), and the
failed writes of the latest version or beyond (so an aborted read is still named
G1a). A cut safe by the rules above leaves nothing else for a later part to refer to.
Process and real-time edges cross every cut; a check that wants them (or graphs) is
done whole.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from heapq import heappop, heappush
from pathlib import Path

from txlab.checker.loading import json_lines

SEGMENT = 10_000  # transactions per part (about 15 MB of the checker's structures)
WINDOW = 30_000  # records: how far back a stale read is traced (older: no cut before it)
READS = 300_000  # (key, version) reads remembered at most (predicate reads return many rows)
GRID = 32  # candidate cuts per part's length (a cut is looked for every SEGMENT / GRID records)


class _Whole(Exception):
    """The history is to be checked whole."""


def ordered(records):
    """(position in the file, line, record) for a txlab history's records in the order of
    their completion (run and init first, position 0): a txn record is held until a
    record invoked after it completed comes, so the wait is about one transaction's
    length. Both passes cut this one order, so any order would be sound; this one keeps
    edges short (txlab writes attempts in the order they began, and a transaction that
    waited for a lock reads what later ones wrote)."""
    heap: list = []
    q = 0
    for line, rec in records:
        if type(rec) is not dict or rec.get("type") != "txn":
            yield 0, line, rec
            continue
        q += 1
        done, began = rec.get("complete_ns"), rec.get("invoke_ns")
        if type(done) is not int or type(began) is not int:
            raise _Whole
        heappush(heap, (done, q, line, rec))
        while heap and heap[0][0] <= began:
            yield heappop(heap)[1:]
    while heap:
        yield heappop(heap)[1:]


def plan(path: Path, segment: int = SEGMENT, window: int | None = None) -> list[int] | None:
    """The positions (in `ordered`'s order, 1 = the first txn) at which the parts after
    the first begin, or None when the history cannot be cut (or is too short to need it)."""
    window = WINDOW if window is None else window
    try:
        with open(path, "rb") as f:
            cands, n = _candidates(ordered(json_lines(path, f)), window,
                                   max(1, segment // GRID))
    except (_Whole, ValueError, TypeError, KeyError, IndexError, OSError):
        return None  # checked whole: a malformed file gets the loader's own message
    cuts: list[int] = []
    last = 1
    for c in cands:
        if c - last >= segment and n + 1 - c >= segment // 4:
            cuts.append(c)
            last = c
    return cuts or None


class _Recent:
    """(key, version) -> the first record that used it, for the records of the window
    (and at most `cap` pairs). Older pairs are forgotten; a version at or below the
    highest one forgotten for its key then answers 0: maybe, further back."""

    def __init__(self, cap: int | None = None):
        self.first: dict = {}
        self.order: deque = deque()  # (record, key, version), oldest first
        self.gone: dict = {}  # key -> the highest version forgotten
        self.cap = cap

    def get(self, k, v) -> int | None:
        r = self.first.get((k, v))
        if r is None and k in self.gone and v <= self.gone[k]:
            return 0
        return r

    def add(self, k, v, q: int) -> None:
        if (k, v) not in self.first:
            self.first[(k, v)] = q
            self.order.append((q, k, v))

    def forget(self, old: int) -> None:
        first, order, gone, cap = self.first, self.order, self.gone, self.cap
        while order and (order[0][0] < old or (cap is not None and len(first) > cap)):
            _, k, v = order.popleft()
            del first[(k, v)]
            gone[k] = max(gone.get(k, v), v)


def _candidates(records, window: int, stride: int = 1) -> tuple[list[int], int]:
    latest: dict = {}  # key -> latest committed version so far
    raises: dict = {}  # key -> deque of (latest after, record) for the last `window` records
    raise_order: deque = deque()  # (record, key) of raises, oldest first, to forget them
    floor: dict = {}  # key -> latest before the oldest raise kept (when raises were dropped)
    pending: dict = {}  # (key, version) written by nobody yet -> first record that read it
    installs = _Recent()  # committed installs
    rmw = _Recent()  # read, and then the key written (a lost update's readers)
    reads = _Recent(READS)  # reads (an aborted write's readers)
    cands: list[int] = []
    q = 0
    every = max(1, min(1024, window))

    def first_above(k, x) -> int:
        """The record that first raised k's latest version above x (0: the start)."""
        if k in floor and x < floor[k]:
            return 0  # further back than the window keeps
        dq = raises.get(k)
        if not dq:
            return 0
        i = bisect_right(dq, x, key=_latest_after)
        return dq[i][1] if i < len(dq) else q

    for _, _, rec in records:
        kind = rec["type"]
        if kind == "run":
            continue
        if kind == "init":
            for op in rec.get("ops") or ():
                latest[op[1]] = op[2]
                installs.add(op[1], op[2], 0)
            continue
        if kind != "txn":
            raise _Whole
        q += 1
        if q % stride == 0:
            cands.append(q)
        outcome = rec["outcome"]
        ops = rec.get("ops") or ()
        if outcome == "unknown":
            raise _Whole
        back = q
        if outcome != "committed":  # a failed write: a reader before it stays with it (G1a)
            for op in ops:
                if op[0] == "w":
                    if type(op[2]) is not int:
                        raise _Whole
                    r = reads.get(op[1], op[2])
                    if r is not None and r < back:
                        back = r
        else:
            own: dict = {}
            seen: dict = {}  # key -> the first version read of it (lost updates)
            for op in ops:
                f = op[0]
                if f == "w":
                    k, v = op[1], op[2]
                    if type(v) is not int:
                        raise _Whole
                    if installs.get(k, v) is not None:
                        raise _Whole  # two installs of one version (or maybe: too old)
                    cur = latest.get(k)
                    if k not in own and cur is not None and v < cur:
                        back = min(back, first_above(k, v - 1))
                    installs.add(k, v, q)
                    r = pending.pop((k, v), None)
                    if r is not None and r < back:
                        back = r
                    if k not in own or v > own[k]:
                        own[k] = v  # its highest version of the key
                    continue
                rows = (op[1:3],) if f == "r" else [row[:2] for row in op[2]] if f == "pr" else ()
                for k, v in rows:
                    if k in own:
                        continue  # its own write: no edge
                    if type(v) is not int:
                        raise _Whole
                    seen.setdefault(k, v)
                    reads.add(k, v, q)
                    cur = latest.get(k)
                    if cur is None or v > cur:
                        pending.setdefault((k, v), q)
                    elif v < cur:
                        back = min(back, first_above(k, v))
            for k, v in seen.items():  # read, then wrote: a lost update's readers together
                if k in own:
                    r = rmw.get(k, v)
                    rmw.add(k, v, q)
                    if r is not None and r < back:
                        back = r
            for k, top in own.items():
                cur = latest.get(k)
                if cur is None or top > cur:
                    latest[k] = top
                    raises.setdefault(k, deque()).append((top, q))
                    raise_order.append((q, k))
        if back < q:
            del cands[bisect_right(cands, back):]
        if q % every == 0:  # forget what is older than the window
            old = q - window
            while raise_order and raise_order[0][0] < old:
                k = raise_order.popleft()[1]
                dq = raises[k]
                floor[k] = dq.popleft()[0]
                if not dq:
                    del raises[k]
            for recent in (installs, rmw, reads):
                recent.forget(old)
    return cands, q


def _latest_after(raise_: tuple) -> int:
    return raise_[0]


def parts(path: Path, cuts: list[int]):
    """(records, names, context) for each part, in order. records: the run record, an
    init record and `context` txns standing for what came before (for the keys the part
    uses), then the part's own txn records; names: the txn ids, context first."""
    latest: dict = {}  # key -> (version, value, record that installed it)
    failed: dict = {}  # key -> [(version, value, record)] at or beyond the latest version
    run = None
    head: list = []  # the first part's run and init records
    own: list = []  # this part's own txn records: (position, line, record)
    bounds = iter(cuts + [None])
    nxt = next(bounds)
    first = True
    q = 0
    with open(path, "rb") as f:
        for i, n, rec in ordered(json_lines(path, f)):
            kind = rec.get("type") if type(rec) is dict else None
            if kind == "run":
                run = (n, rec)
                continue
            if kind == "init":
                for op in rec.get("ops") or []:
                    latest[op[1]] = (op[2], op[3] if len(op) > 3 else None, 0)
                head.append((n, rec))
                continue
            q += 1
            if nxt is not None and q == nxt:
                yield _part(run, head if first else None, own, latest, failed)
                first, own = False, []
                nxt = next(bounds)
            own.append((i, n, rec))
    yield _part(run, head if first else None, own, latest, failed)


def _part(run, head, own: list, latest: dict, failed: dict) -> tuple[list, list, int]:
    """One part's records and names: the context for the keys its records use (or, for
    the first part, the history's own init), then its own; `latest` and `failed` then
    move past them."""
    if head is not None:
        recs, names = list(head), []
    else:
        keys = set()
        for _, _, rec in own:
            for op in rec.get("ops") or ():
                if op[0] == "pr":
                    keys.update(row[0] for row in op[2])
                else:
                    keys.add(op[1])
        recs, names = _context(latest, failed, keys)
    context = len(names)
    for i, n, rec in own:
        recs.append((n, rec))
        names.append(i)
        _advance(rec, i, latest, failed)
    return ([run] if run is not None else []) + recs, names, context


def _advance(rec: dict, q: int, latest: dict, failed: dict) -> None:
    ops = rec.get("ops") or ()
    if rec.get("outcome") == "committed":
        for op in ops:
            if op[0] == "w":
                k, v = op[1], op[2]
                cur = latest.get(k)
                if cur is None or v > cur[0]:
                    latest[k] = (v, op[3] if len(op) > 3 else None, q)
                    fw = failed.get(k)
                    if fw:
                        failed[k] = [x for x in fw if x[0] >= v]
    else:
        for op in ops:
            if op[0] == "w":
                cur = latest.get(op[1])
                if cur is None or op[2] >= cur[0]:
                    failed.setdefault(op[1], []).append((op[2], op[3] if len(op) > 3 else None,
                                                         q))


def _context(latest: dict, failed: dict, keys: set) -> tuple[list, list]:
    """Records standing for the parts before, for `keys`: T0 with the initial versions
    still latest, one committed txn per installer of a latest version (those writes
    only), one failed txn per attempt with a write at or beyond a latest version."""
    init: list = []
    by: dict = {}
    keys = sorted(keys, key=repr)  # the same context, whatever the hash seed
    for k in keys:
        e = latest.get(k)
        if e is None:
            continue
        v, val, who = e
        op = ["w", k, v, val]
        if who == 0:
            init.append(op)
        else:
            by.setdefault(who, []).append(op)
    bad: dict = {}
    for k in keys:
        for v, val, who in failed.get(k, ()):
            bad.setdefault(who, []).append(["w", k, v, val])
    recs: list = [(0, {"type": "init", "ops": init})]
    names: list = []
    for who in sorted(by):
        recs.append((0, {"type": "txn", "outcome": "committed", "ops": by[who]}))
        names.append(who)
    for who in sorted(bad):
        recs.append((0, {"type": "txn", "outcome": "aborted", "ops": bad[who]}))
        names.append(who)
    return recs, names
