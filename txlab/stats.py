"""Outcome counts and latency percentiles, computed from the history alone."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from txlab.history import ABORTED, COMMITTED, DECLINED, UNKNOWN, Attempt

INTERRUPTED_CAUSE = "interrupted"


@dataclass
class Outcomes:
    committed: int = 0
    declined: int = 0
    retries: int = 0
    aborted: Counter = field(default_factory=Counter)  # cause key -> attempts
    failed: int = 0  # transactions that ended aborted after all their tries
    unknown: int = 0  # COMMIT sent, connection lost: outcome unknown
    declined_reasons: Counter = field(default_factory=Counter)


def outcomes(attempts: list[Attempt]) -> Outcomes:
    out = Outcomes()
    last: dict[tuple[int, int], Attempt] = {}
    for a in attempts:
        if a.attempt > 0:
            out.retries += 1
        if a.outcome == COMMITTED:
            out.committed += 1
        elif a.outcome == DECLINED:
            out.declined += 1
            out.declined_reasons[a.cause or "declined"] += 1
        elif a.outcome == ABORTED:
            out.aborted[a.cause or "other"] += 1
        elif a.outcome == UNKNOWN:
            out.unknown += 1
        key = (a.worker, a.txn)
        prev = last.get(key)
        if prev is None or a.attempt > prev.attempt:
            last[key] = a
    out.failed = sum(
        1 for a in last.values() if a.outcome == ABORTED and a.cause != INTERRUPTED_CAUSE
    )
    return out


def committed_latencies_ns(attempts: list[Attempt]) -> list[int]:
    """Per committed transaction: first try's invoke to the committing try's completion."""
    first: dict[tuple[int, int], int] = {}
    lat: list[int] = []
    for a in attempts:
        key = (a.worker, a.txn)
        if a.attempt == 0:
            first[key] = a.invoke_ns
        if a.outcome == COMMITTED:
            lat.append(a.complete_ns - first.get(key, a.invoke_ns))
    return lat


def percentiles_ms(latencies_ns: list[int]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds (nearest-rank); None when nothing committed."""
    if not latencies_ns:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    xs = sorted(latencies_ns)
    n = len(xs)

    def rank(p: float) -> float:
        return xs[max(0, math.ceil(p / 100 * n) - 1)] / 1e6

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": xs[-1] / 1e6}
