"""The dependency graphs of cyclic components, as data small enough to draw.

A strongly connected component can hold thousands of transactions; what a
reader can look at is a few dozen. For each component that holds an example
cycle (then the smallest others, up to `max_components`), this gives the whole
component when it has at most `limit` transactions, else the neighbourhood of
its example cycles: breadth-first from the cycles' transactions along edges in
either direction, until `limit` transactions. Every edge is justified in one
sentence, as the examples' steps are (`explain.edge_reason`).
"""

from __future__ import annotations

from collections import deque

from txlab.checker import explain
from txlab.checker.infer import labelled_edges

LIMIT = 30
MAX_COMPONENTS = 8


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low
        mask ^= low


def _neighbourhood(ladj: dict, seeds: list, limit: int) -> list:
    back: dict = {}
    for u, es in ladj.items():
        for v in es:
            back.setdefault(v, []).append(u)
    seen = list(dict.fromkeys(seeds))[:limit]
    inside = set(seen)
    queue = deque(seen)
    while queue and len(seen) < limit:
        u = queue.popleft()
        for v in sorted(set(ladj.get(u, ())) | set(back.get(u, ()))):
            if v not in inside:
                inside.add(v)
                seen.append(v)
                queue.append(v)
                if len(seen) >= limit:
                    break
    return seen


def describe(tx, idx, comps: list, examples: dict, process: bool, realtime: bool,
             limit: int = LIMIT, max_components: int = MAX_COMPONENTS) -> list[dict]:
    """examples: kind -> [cycle as [(a, b, bit), ...]] (cycles.find's). See the module doc."""
    where: dict = {}  # vertex -> [(kind, example number)]
    for kind, cycles in examples.items():
        for n, cyc in enumerate(cycles, 1):
            for a, _b, _bit in cyc:
                where.setdefault(a, []).append((kind, n))
    with_examples, others = [], []
    for comp in comps:
        (with_examples if any(v in where for v in comp) else others).append(comp)
    chosen = (with_examples + sorted(others, key=len))[:max_components]
    out = []
    for comp in chosen:
        seeds = [v for v in comp if v in where] or [min(comp)]
        if len(comp) <= limit:
            members = sorted(comp)
        else:
            members = sorted(_neighbourhood(labelled_edges(tx, idx, comp, process, realtime),
                                            seeds, limit))
        ladj = labelled_edges(tx, idx, members, process, realtime)
        edges = []
        for a in members:
            for b, mask in sorted(ladj[a].items()):
                for bit in _bits(mask):
                    r = explain.edge_reason(tx, idx, a, b, bit)
                    edges.append({"from": explain.tname(tx, a), "to": explain.tname(tx, b), **r})
        kinds = sorted({f"{k} #{n}" for v in comp if v in where for k, n in where[v]})
        out.append({"size": len(comp), "shown": len(members), "complete": len(members) == len(comp),
                    "examples": kinds,
                    "in_examples": [explain.tname(tx, v) for v in members if v in where],
                    "transactions": [explain.txn_data(tx, v) for v in members], "edges": edges})
    return out
