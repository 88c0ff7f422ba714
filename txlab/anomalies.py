"""Anomalies that can be read directly off the history, without a dependency graph.

Lost update (P4): two committed transactions read the same version of a row and
both wrote that row; the later write silently overwrote the earlier one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from txlab.history import COMMITTED, Attempt


@dataclass(frozen=True)
class Anomaly:
    kind: str
    count: int
    example: str


def lost_updates(attempts: list[Attempt]) -> Anomaly | None:
    # (key, version read) -> [(attempt id, version it installed)] for committed read-then-write
    groups: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for i, a in enumerate(attempts, 1):
        if a.outcome != COMMITTED:
            continue
        read: dict[str, int] = {}
        written: dict[str, int] = {}
        for op in a.ops:
            f, key, version = op[0], op[1], op[2]
            if f == "r" and key not in read and key not in written:
                read[key] = version
            elif f == "w":
                written[key] = version
        for key, version in read.items():
            if key in written:
                groups[(key, version)].append((i, written[key]))
    lost = {g: ws for g, ws in groups.items() if len(ws) > 1}
    if not lost:
        return None
    count = sum(len(ws) - 1 for ws in lost.values())
    (key, version), writers = min(lost.items(), key=lambda kv: kv[1][0][0])
    writers = sorted(writers, key=lambda w: w[1])[:3]
    names = " and ".join(f"T{i}" for i, _ in writers)
    installs = ", ".join(f"T{i} installed v{v}" for i, v in writers)
    last = f"T{writers[-1][0]}"
    example = (
        f"{names} both read {key} at v{version} and both wrote it ({installs}): "
        f"{last} overwrote a committed write it never saw"
    )
    return Anomaly("lost update", count, example)


def observe(attempts: list[Attempt]) -> list[Anomaly]:
    found = [lost_updates(attempts)]
    return [a for a in found if a is not None]
