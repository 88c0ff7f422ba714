"""Outcome counts and latency percentiles.

During a run each worker keeps a `Tally` (counters and a latency `Histogram`,
bounded in size whatever the run's length) and the runner merges them at the
end. The same figures can be computed from a history afterwards (`outcomes`,
`committed_latencies_ns`, `percentiles_ms`); both give the same counts, and
percentiles within 0.4% of each other (max exact).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from txlab.history import ABORTED, COMMITTED, DECLINED, UNKNOWN, Attempt

INTERRUPTED_CAUSE = "interrupted"

QUANTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


@dataclass
class Outcomes:
    committed: int = 0
    declined: int = 0
    retries: int = 0
    aborted: Counter = field(default_factory=Counter)  # cause key -> attempts
    failed: int = 0  # transactions that ended aborted after all their tries
    unknown: int = 0  # COMMIT sent, connection lost: outcome unknown
    declined_reasons: Counter = field(default_factory=Counter)


# ---------------------------------------------------------------- from a history


def outcomes(attempts) -> Outcomes:
    """Counts over an iterable of `Attempt`s (a worker's attempts in order)."""
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


def committed_latencies_ns(attempts) -> list[int]:
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
    """p50/p95/p99/max in milliseconds (nearest-rank, exact); None when nothing committed."""
    if not latencies_ns:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    xs = sorted(latencies_ns)
    n = len(xs)
    out: dict[str, float | None] = {
        name: xs[max(0, math.ceil(p / 100 * n) - 1)] / 1e6 for name, p in QUANTILES}
    out["max"] = xs[-1] / 1e6
    return out


# ---------------------------------------------------------------- bounded, mergeable


class Histogram:
    """Non-negative integers (latencies in ns) in log-linear buckets: HdrHistogram's layout.

    Values below 256 are counted exactly; above, each power of two is split into
    128 buckets, so a bucket spans less than 1/128 of its values and its midpoint
    is within 0.4% of any value in it. Its size is bounded by the range of the
    values (about 128 buckets per doubling), not by how many there are; the max
    is exact. Histograms merge by adding counts.
    """

    SUB_BITS = 7  # 2**7 = 128 buckets per power of two

    __slots__ = ("counts", "max")

    def __init__(self):
        self.counts: dict[int, int] = {}  # bucket index -> values in it
        self.max = -1  # the largest value (exact); -1 while empty

    def record(self, v: int) -> None:
        """Count `v` (an int >= 0). Runs once per committed transaction: kept lean."""
        b = v.bit_length()
        i = ((b - 8) << 7) + (v >> (b - 8)) if b > 8 else v  # SUB_BITS = 7
        counts = self.counts
        counts[i] = counts.get(i, 0) + 1
        if v > self.max:
            self.max = v

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @staticmethod
    def _bounds(i: int) -> tuple[int, int]:
        """The lowest value of bucket `i` and its width."""
        if i < 256:
            return i, 1
        shift = (i >> 7) - 1
        return (i - (shift << 7)) << shift, 1 << shift

    def merge(self, other: Histogram) -> Histogram:
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.max = max(self.max, other.max)
        return self

    def quantile(self, p: float) -> float | None:
        """The nearest-rank `p`th percentile (0 < p <= 100), within 0.4%; None when empty."""
        count = self.count
        if not count:
            return None
        rank = max(1, math.ceil(p / 100 * count))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                lo, width = self._bounds(i)
                return float(min(lo + (width - 1) / 2, self.max))
        return float(self.max)

    def percentiles_ms(self) -> dict[str, float | None]:
        """p50/p95/p99 (within 0.4%) and max (exact) in milliseconds, as `percentiles_ms`."""
        out: dict[str, float | None] = {}
        for name, p in QUANTILES:
            q = self.quantile(p)
            out[name] = None if q is None else q / 1e6
        out["max"] = None if self.max < 0 else self.max / 1e6
        return out


class Tally:
    """One worker's counts: updated by that worker alone, read by the progress line,
    merged at the end. Same definitions as `outcomes` and `committed_latencies_ns`."""

    __slots__ = ("committed", "declined", "retries", "unknown", "failed", "interrupted",
                 "aborted", "declined_reasons", "latency")

    def __init__(self):
        self.committed = self.declined = self.retries = self.unknown = 0
        self.failed = 0
        self.interrupted = 0  # transactions whose last try the run's interrupt abandoned
        self.aborted: dict[str, int] = {}
        self.declined_reasons: dict[str, int] = {}
        self.latency = Histogram()

    @property
    def aborted_total(self) -> int:
        return sum(self.aborted.values())

    @property
    def finished(self) -> int:
        """Transactions done with, whatever the outcome of their last try."""
        return self.committed + self.declined + self.unknown + self.failed + self.interrupted


def merge(tallies) -> tuple[Outcomes, Histogram]:
    out, hist = Outcomes(), Histogram()
    for t in tallies:
        out.committed += t.committed
        out.declined += t.declined
        out.retries += t.retries
        out.unknown += t.unknown
        out.failed += t.failed
        out.aborted.update(dict(t.aborted))
        out.declined_reasons.update(dict(t.declined_reasons))
        hist.merge(t.latency)
    return out, hist
