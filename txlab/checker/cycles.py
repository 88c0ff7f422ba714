"""Cycle anomalies: Tarjan over the whole graph, then per component a search for
the shortest cycle of each kind, most severe first, under a time cap.

The kinds are data (`SPECS`): one state machine per kind over edge labels. A
cycle of the -process / -realtime kinds must need at least one process /
realtime edge (one that no ww / wr edge between the same two transactions
explains), and such a variant is only looked for in a component where the
plain kind was not found. The count of a kind is the number of strongly connected
components of the kind's own edge set (e.g. ww only for G0) that contain such
a cycle; one example cycle is kept for each, up to max_examples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from txlab.checker import graph
from txlab.checker.graph import CycleSpec, TimedOut
from txlab.checker.infer import DATA, PROC, RT, RWS, WR, WW, labelled_edges


def _spec(name, allowed, start, min_rw=0, max_rw=0, adjacent=None, need_wr=False):
    return CycleSpec(name, allowed, start, RWS, WR, 0, min_rw, max_rw, adjacent, need_wr, False)


_BASE = (
    _spec("G0", WW, WW),
    _spec("G1c", WW | WR, WR, need_wr=True),
    _spec("G-single", DATA, RWS, 1, 1),
    _spec("G-nonadjacent", DATA, RWS, 2, -1, adjacent=False),
    # rw edges from rows a predicate read returned are item anti-dependencies too
    _spec("G2-item", DATA, RWS, 2, -1, adjacent=True),
)
SPECS: tuple[CycleSpec, ...] = _BASE + tuple(
    s._replace(name=f"{s.name}-{suffix}", allowed=s.allowed | extra_allowed, extra=extra,
               need_extra=True)
    for suffix, extra, extra_allowed in (("process", PROC, PROC), ("realtime", RT, PROC | RT))
    for s in _BASE
)


PLAIN = frozenset(s.name for s in _BASE)


def view_for(ladj: dict, spec: CycleSpec) -> dict:
    """For a -process / -realtime kind, the labelled graph in which an extra edge
    exists only where it is needed: a process or realtime edge between two
    transactions that also have a ww / wr edge allowed by the kind is dropped
    (the data edge explains the order), and so is a realtime edge beside a
    process edge."""
    if not spec.need_extra:
        return ladj
    plain = spec.allowed & (WW | WR)
    out = {}
    for u, es in ladj.items():
        d = {}
        for v, m in es.items():
            if m & plain:
                m &= ~(PROC | RT)
            elif m & PROC and spec.extra == RT:
                m &= ~RT
            if m:
                d[v] = m
        out[u] = d
    return out


def needs_extra(spec: CycleSpec, base: CycleSpec, ladj: dict, cycle: list) -> bool:
    """False when relabelling the extra steps with rw edges of the same pairs
    would make the cycle a plain `base` cycle (then it is reported as that)."""
    steps = [(a, b, bit) for a, b, bit in cycle]
    choices = [i for i, (a, b, bit) in enumerate(steps)
               if bit & spec.extra or bit & PROC]
    alt = [i for i in choices if ladj[steps[i][0]][steps[i][1]] & base.allowed]
    if len(alt) < len([i for i in choices if steps[i][2] & spec.extra]) or len(alt) > 6:
        return True
    for mask in range(1, 1 << len(alt)):
        trial = list(steps)
        for j, i in enumerate(alt):
            if mask >> j & 1:
                a, b, _ = trial[i]
                m = ladj[a][b] & base.allowed
                trial[i] = (a, b, m & -m)
        if graph.satisfies(base, trial):
            return False
    return True


@dataclass
class CycleFindings:
    counts: dict = field(default_factory=dict)  # name -> number of components with one
    examples: dict = field(default_factory=dict)  # name -> [cycle, ...]
    unknown: set = field(default_factory=set)  # kinds whose search ran out of time somewhere
    components: int = 0
    largest: int = 0


# Cycle length limits tried in turn: in a large component, many short searches
# around each start edge find a short cycle long before one unbounded search
# from a start edge that has none has explored the whole component.
LENGTH_LIMITS = (4, 8, None)


def _search_component(ladj: dict, spec: CycleSpec, deadline: float):
    """Yield a shortest-found cycle in each sub-component of spec's edge set."""
    for sc in graph.sub_components(ladj, spec.allowed):
        inside = set(sc)
        starts = [(u, v, b) for u in sc for v, m in ladj[u].items()
                  if v in inside and m & spec.start for b in graph._bits(m & spec.start)]
        for limit in LENGTH_LIMITS if len(sc) > 16 else (None,):
            best = _best_cycle(ladj, spec, starts, deadline, inside, limit)
            if best is not None:
                yield best
                break


def _best_cycle(ladj, spec, starts, deadline, inside, limit):
    best = None
    tries_after = 0
    for u, v, b in starts:
        cyc = graph.shortest_cycle_through(ladj, spec, u, v, b, deadline, inside, limit)
        if cyc and (best is None or len(cyc) < len(best)):
            best = cyc
        if best is not None:
            tries_after += 1
            if len(best) == 2 or tries_after > 8:
                break
    return best


def find(tx, idx, comps: list, max_examples: int, time_limit: float,
         process: bool = True, realtime: bool = True, forbidden=PLAIN) -> CycleFindings:
    out = CycleFindings(components=len(comps), largest=max((len(c) for c in comps), default=0))
    specs = [s for s in SPECS if (realtime or not s.name.endswith("-realtime"))
             and (process or not s.name.endswith("-process"))]
    if realtime:  # Elle's precedence: a cycle with a real-time edge is -realtime
        specs.sort(key=lambda s: s.name.endswith("-process"))
    base = {s.name: s for s in _BASE}
    plain = PLAIN & set(forbidden)
    for comp in sorted(comps, key=len):
        deadline = time.monotonic() + time_limit
        ladj = labelled_edges(tx, idx, comp, process, realtime)
        views: dict = {}
        here: set = set()  # kinds found in this component
        for n, spec in enumerate(specs):
            if spec.need_extra and here & plain:
                continue  # a cycle the model forbids is already here; as in Elle, the
                # -process / -realtime variants (weaker claims) are not looked for then
            key = (spec.allowed, spec.extra)
            if key not in views:
                views[key] = view_for(ladj, spec)
            view = views[key]
            try:
                for cyc in _search_component(view, spec, deadline):
                    if spec.need_extra and not needs_extra(
                            spec, base[spec.name.rsplit("-", 1)[0]], ladj, cyc):
                        continue
                    name = spec.name
                    here.add(spec.name)
                    out.counts[name] = out.counts.get(name, 0) + 1
                    ex = out.examples.setdefault(name, [])
                    if len(ex) < max_examples:
                        ex.append(cyc)
            except TimedOut:
                for s in specs[n:]:
                    out.unknown.add(s.name)
                break
    return out


__all__ = ["SPECS", "CycleFindings", "find"]
