"""Generic graph algorithms over vertices 0..n-1 and labelled edges (bit masks).

Nothing here knows about transactions: an iterative Tarjan for strongly
connected components, and a breadth-first search for the shortest cycle
through a given edge in which the sequence of edge labels satisfies a small
state machine (`CycleSpec`).
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple


def strongly_connected(n: int, adj) -> list[list[int]]:
    """Tarjan's algorithm without recursion; returns components of two or more vertices.

    adj[v] is an iterable of successors (duplicates and self-loops are fine).
    """
    index = [0] * n  # 0 = not yet visited; else visit number
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] or not adj[root]:
            continue
        counter += 1
        index[root] = low[root] = counter
        stack.append(root)
        on[root] = True
        work = [(root, iter(adj[root]))]
        while work:
            v, it = work[-1]
            for w in it:
                if not index[w]:
                    counter += 1
                    index[w] = low[w] = counter
                    stack.append(w)
                    on[w] = True
                    work.append((w, iter(adj[w])))
                    break
                if on[w] and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                lv = low[v]
                if work:
                    u = work[-1][0]
                    if lv < low[u]:
                        low[u] = lv
                if lv == index[v]:
                    w = stack.pop()
                    on[w] = False
                    if w != v:
                        comp = [w]
                        while w != v:
                            w = stack.pop()
                            on[w] = False
                            comp.append(w)
                        comps.append(comp)
    return comps


def sub_components(ladj: dict, mask: int) -> list[list]:
    """SCCs of a labelled graph {u: {v: bits}} keeping only edges with bits in `mask`."""
    verts = list(ladj)
    pos = {v: i for i, v in enumerate(verts)}
    adj = [[pos[w] for w, m in ladj[v].items() if m & mask and w in pos] for v in verts]
    return [[verts[i] for i in c] for c in strongly_connected(len(verts), adj)]


# ---------------------------------------------------------------- cycle search

# Path state bits.
RW1, RW2, LAST_RW, ADJ, HAS_WR, HAS_EXTRA = 1, 2, 4, 8, 16, 32


class CycleSpec(NamedTuple):
    """Which label sequences make a cycle of one kind.

    allowed: edge bits the cycle may use; start: bits its first edge has;
    rw/wr/extra: which bits count as anti-dependency, as wr, as "extra"
    (process / realtime); min_rw / max_rw: how many rw edges; adjacent: None
    (don't care), False (no two rw edges adjacent, cyclically), True (some
    two adjacent); need_wr; need_extra.
    """

    name: str
    allowed: int
    start: int
    rw: int
    wr: int
    extra: int
    min_rw: int
    max_rw: int  # -1 = unbounded
    adjacent: bool | None
    need_wr: bool
    need_extra: bool


def _step(spec: CycleSpec, state: int, bit: int) -> int:
    if bit & spec.rw:
        if state & LAST_RW:
            if spec.adjacent is False:
                return -1
            state |= ADJ
        if state & RW1:
            if spec.max_rw == 1:
                return -1
            state |= RW2
        elif spec.max_rw == 0:
            return -1
        return state | RW1 | LAST_RW
    state &= ~LAST_RW
    if bit & spec.wr:
        state |= HAS_WR
    if bit & spec.extra:
        state |= HAS_EXTRA
    return state


def _accepts(spec: CycleSpec, state: int, first_rw: bool) -> bool:
    n_rw = 2 if state & RW2 else 1 if state & RW1 else 0
    if n_rw < spec.min_rw:
        return False
    wrap = first_rw and bool(state & LAST_RW)  # the last edge and the first are adjacent
    if spec.adjacent is False and wrap:
        return False
    if spec.adjacent is True and not (state & ADJ or wrap):
        return False
    if spec.need_wr and not state & HAS_WR:
        return False
    if spec.need_extra and not state & HAS_EXTRA:
        return False
    return True


def satisfies(spec: CycleSpec, cycle: list) -> bool:
    """Does the labelled cycle [(a, b, bit), ...] fit `spec`?"""
    state = 0
    for _, _, b in cycle:
        if not b & spec.allowed:
            return False
        state = _step(spec, state, b)
        if state < 0:
            return False
    return _accepts(spec, state, bool(cycle[0][2] & spec.rw))


def _bits(mask: int):
    while mask:
        b = mask & -mask
        yield b
        mask ^= b


def _on_path(parent: dict, node, y) -> bool:
    """Is vertex y already on the path that reached `node`? (Cycles stay simple.)"""
    while node is not None:
        if node[0] == y:
            return True
        p = parent[node]
        node = p[0] if p is not None else None
    return False


class TimedOut(Exception):
    pass


def shortest_cycle_through(ladj: dict, spec: CycleSpec, u, v, bit: int, deadline: float,
                           inside: set | None = None, max_len: int | None = None):
    """The shortest cycle that starts with edge u -> v labelled `bit` and fits `spec`.

    Returns [(a, b, bit), ...] or None; with max_len, only cycles of at most that
    many edges are looked for. Raises TimedOut past `deadline`.
    A breadth-first search over (vertex, state) that never revisits a vertex of
    its own path, so the cycle is simple; like Elle's, it is a heuristic that
    can in rare cases miss a longer cycle hidden behind a shorter visited state.
    """
    s0 = _step(spec, 0, bit)
    if s0 < 0:
        return None
    first_rw = bool(bit & spec.rw)
    if v == u:
        return None
    start = (v, s0)
    parent = {start: None}
    queue = deque([(start, 2)])  # (node, edges in the cycle if it closed from node)
    allowed = spec.allowed
    steps = 0
    while queue:
        node, length = queue.popleft()
        x, s = node
        steps += 1
        if not steps & 1023 and time.monotonic() > deadline:
            raise TimedOut
        deeper = max_len is None or length < max_len
        for y, m in ladj[x].items():
            m &= allowed
            if not m or (inside is not None and y not in inside):
                continue
            for b in _bits(m):
                s2 = _step(spec, s, b)
                if s2 < 0:
                    continue
                if y == u:
                    if _accepts(spec, s2, first_rw):
                        path = [(x, u, b)]
                        cur = node
                        while parent[cur] is not None:
                            prev, pb = parent[cur]
                            path.append((prev[0], cur[0], pb))
                            cur = prev
                        path.append((u, v, bit))
                        path.reverse()
                        return path
                    continue
                nxt = (y, s2)
                if deeper and nxt not in parent and not _on_path(parent, node, y):
                    parent[nxt] = (node, b)
                    queue.append((nxt, length + 1))
    return None
