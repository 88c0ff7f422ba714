"""A run's attempts over time: what the run page draws, as plain data.

`summarize` takes attempt records in the history file's `txn` shape
(docs/history-format.md) and makes ONE pass over them, in any order that keeps
each worker's attempts in sequence (by invoke time, as the file has them, or by
completion). Its memory is bounded whatever the run's length:

- exact marks: every attempt while there are at most `max_marks`; past that a
  uniform random sample of `max_marks` (reservoir sampling, seeded), plus every
  attempt named in `keep_ids` (the anomaly examples' transactions);
- time bins per worker and outcome class, by completion time: the bin width
  starts at 1 ms and doubles whenever more than `max_bins` bins would be needed;
- committed, aborted (by cause), declined and unknown attempts per second per bin;
- a latency histogram of committed transactions (first try's invoke to the
  committing try's completion, as the report's percentiles), 4 buckets per octave.

`attempt_records(result)` is the one place that says where a finished run's
records come from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from random import Random

from txlab.errors import cause_name, cause_sqlstate
from txlab.history import ABORTED, COMMITTED, DECLINED, UNKNOWN
from txlab.stats import INTERRUPTED_CAUSE

MAX_MARKS = 3000
MAX_BINS = 120
MAX_OPS = 16  # ops kept per mark; the rest are counted
MAX_ROWS = 8  # rows kept per predicate read
_PER_OCTAVE = 4


def attempt_records(result) -> Iterator[dict]:
    """A finished run's attempts as history-file `txn` records, in invoke order.

    The adapter between the runner and the run page: the runner streams the
    attempts to a history file, and this reads them back one at a time
    (`result.history.iter_attempts()`).
    """
    isolation = result.history.meta.get("isolation", "")
    for i, a in enumerate(result.history.iter_attempts(), 1):
        yield {"type": "txn", "id": i, "worker": a.worker, "txn": a.txn, "attempt": a.attempt,
               "isolation": isolation, "invoke_ns": a.invoke_ns, "complete_ns": a.complete_ns,
               "outcome": a.outcome, "cause": a.cause, "sqlstate": a.sqlstate,
               "error": a.message, "ops": a.ops}


def outcome_class(rec: dict) -> str:
    """committed | declined | unknown | aborted:<cause key>."""
    outcome = rec["outcome"]
    if outcome == ABORTED:
        return f"aborted:{rec.get('cause') or 'other'}"
    return outcome if outcome in (COMMITTED, DECLINED, UNKNOWN) else "unknown"


def class_info(key: str) -> dict:
    """A class's outcome, readable label and SQLSTATE: the legend's words."""
    outcome, _, cause = key.partition(":")
    if outcome == ABORTED:
        name = "rolled back at interrupt" if cause == INTERRUPTED_CAUSE else cause_name(cause)
        return {"key": key, "outcome": outcome, "cause": cause, "label": f"aborted: {name}",
                "sqlstate": cause_sqlstate(cause)}
    label = {COMMITTED: "committed", DECLINED: "declined by a business rule",
             UNKNOWN: "unknown (connection lost in COMMIT)"}.get(outcome, outcome)
    return {"key": key, "outcome": outcome, "cause": None, "label": label, "sqlstate": None}


def _class_order(key: str, n: int) -> tuple:
    rank = {COMMITTED: 0, DECLINED: 1, ABORTED: 2, UNKNOWN: 3}.get(key.partition(":")[0], 4)
    return (rank, -n, key)


def _op(op) -> list:
    if op and op[0] == "pr":
        rows = [list(r) for r in op[2][:MAX_ROWS]]
        out = ["pr", op[1], rows]
        if len(op[2]) > MAX_ROWS:
            out.append(len(op[2]) - MAX_ROWS)  # rows not shown
        return out
    return list(op)


class _Summary:
    def __init__(self, keep_ids, max_marks: int, max_bins: int, seed: int):
        self.keep_ids = frozenset(keep_ids)
        self.max_marks, self.max_bins = max_marks, max_bins
        self.rng = Random(f"txlab:{seed}:timeline")
        self.sample: list = []
        self.kept: list = []
        self.seen = 0  # attempts offered to the sample
        self.total = 0
        self.t0 = self.end = None
        self.origin = None
        self.width = 1_000_000  # bin width, ns
        self.cells: dict = {}  # (bin, worker, class) -> attempts
        self.lo = self.hi = None  # bin index range
        self.current: dict = {}  # worker -> (txn, first try's invoke_ns)
        self.latency: dict = {}  # bucket -> committed transactions
        self.class_counts: dict = {}
        self.workers: set = set()

    def add(self, rec: dict) -> None:
        invoke, complete, worker = rec["invoke_ns"], rec["complete_ns"], rec["worker"]
        key = outcome_class(rec)
        self.total += 1
        self.workers.add(worker)
        self.class_counts[key] = self.class_counts.get(key, 0) + 1
        self.t0 = invoke if self.t0 is None else min(self.t0, invoke)
        self.end = complete if self.end is None else max(self.end, complete)
        self._bin(complete, worker, key)
        self._latency(rec, worker, invoke, complete)
        mark = (rec, key)
        if rec.get("id") in self.keep_ids:
            self.kept.append(mark)
            return
        self.seen += 1
        if len(self.sample) < self.max_marks:
            self.sample.append(mark)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.max_marks:
                self.sample[j] = mark

    def _bin(self, t: int, worker, key: str) -> None:
        if self.origin is None:
            self.origin = t
        b = (t - self.origin) // self.width
        self.lo = b if self.lo is None else min(self.lo, b)
        self.hi = b if self.hi is None else max(self.hi, b)
        cell = (b, worker, key)
        self.cells[cell] = self.cells.get(cell, 0) + 1
        while self.hi - self.lo + 1 > self.max_bins:
            self.width *= 2
            merged: dict = {}
            for (b, w, k), n in self.cells.items():
                c = (b // 2, w, k)
                merged[c] = merged.get(c, 0) + n
            self.cells = merged
            self.lo //= 2
            self.hi //= 2

    def _latency(self, rec: dict, worker, invoke: int, complete: int) -> None:
        txn = rec.get("txn")
        cur = self.current.get(worker)
        if rec.get("attempt", 0) == 0 or cur is None or cur[0] != txn:
            cur = self.current[worker] = (txn, invoke)
        if rec["outcome"] == COMMITTED:
            ms = max(complete - cur[1], 1) / 1e6
            b = math.floor(_PER_OCTAVE * math.log2(ms))
            self.latency[b] = self.latency.get(b, 0) + 1

    def result(self) -> dict:
        order = sorted(self.class_counts, key=lambda k: _class_order(k, self.class_counts[k]))
        index = {k: i for i, k in enumerate(order)}
        classes = [dict(class_info(k), count=self.class_counts[k]) for k in order]
        workers = sorted(self.workers)
        out = {"attempts": self.total, "workers": workers, "classes": classes,
               "exact": self.seen <= self.max_marks, "sampled": min(self.seen, self.max_marks),
               "kept": len(self.kept), "duration_ms": 0.0, "marks": [],
               "bins": {"width_ms": self.width / 1e6, "start_ms": [], "end_ms": [], "cells": []},
               "rates": [], "latency": []}
        if not self.total:
            return out
        t0 = self.t0
        ms = lambda ns: round((ns - t0) / 1e6, 3)  # noqa: E731
        out["duration_ms"] = ms(self.end)
        marks = []
        for rec, key in self.sample + self.kept:
            ops = rec.get("ops") or []
            m = {"id": rec.get("id"), "w": rec["worker"], "txn": rec.get("txn"),
                 "try": rec.get("attempt", 0), "s": ms(rec["invoke_ns"]), "e": ms(rec["complete_ns"]),
                 "c": index[key], "ops": [_op(op) for op in ops[:MAX_OPS]]}
            if rec.get("sqlstate"):
                m["sqlstate"] = rec["sqlstate"]
            if rec.get("error"):
                m["error"] = rec["error"]
            if rec["outcome"] == DECLINED and rec.get("cause"):
                m["reason"] = rec["cause"]
            if len(ops) > MAX_OPS:
                m["more_ops"] = len(ops) - MAX_OPS
            marks.append(m)
        marks.sort(key=lambda m: (m["s"], m["w"]))
        out["marks"] = marks
        nb = self.hi - self.lo + 1
        starts = [max(0.0, ms(self.origin + (self.lo + i) * self.width)) for i in range(nb)]
        ends = starts[1:] + [out["duration_ms"]]
        out["bins"].update(start_ms=starts, end_ms=ends, cells=sorted(
            [b - self.lo, w, index[k], n] for (b, w, k), n in self.cells.items()))
        per_bin = [[0] * nb for _ in order]
        for b, _w, c, n in out["bins"]["cells"]:
            per_bin[c][b] += n
        secs = [max(e - s, 1e-3) / 1000 for s, e in zip(starts, ends, strict=True)]
        out["rates"] = [{"class": k, "per_s": [round(n / s, 1) for n, s in
                                               zip(per_bin[i], secs, strict=True)]}
                        for i, k in enumerate(order)]
        if self.latency:
            lo, hi = min(self.latency), max(self.latency)
            out["latency"] = [{"lo_ms": round(2 ** (b / _PER_OCTAVE), 4),
                               "hi_ms": round(2 ** ((b + 1) / _PER_OCTAVE), 4),
                               "n": self.latency.get(b, 0)} for b in range(lo, hi + 1)]
        return out


def summarize(records: Iterable[dict], *, keep_ids: Iterable = (), max_marks: int = MAX_MARKS,
              max_bins: int = MAX_BINS, seed: int = 0) -> dict:
    """One pass over attempt records -> marks, bins, rates and latency histogram (see above).

    Times are milliseconds from the first attempt's invoke. A mark:
    {"id", "w" (worker), "txn", "try", "s" / "e" (invoke / complete ms), "c" (index
    into "classes"), "ops", and "sqlstate", "error", "reason", "more_ops" when set}.
    Bin cells: [bin, worker, class index, attempts].
    """
    s = _Summary(keep_ids, max_marks, max_bins, seed)
    for rec in records:
        s.add(rec)
    return s.result()
