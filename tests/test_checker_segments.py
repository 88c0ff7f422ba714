"""A long txlab history is checked a part at a time (checker/segments.py): the verdict,
the anomalies and their counts must be exactly those of the whole. Pure: no database.

The histories are made to be hard to cut: records in the order transactions began but
of random lengths (so they complete out of order), stale and future reads, aborted
writes that others read, duplicate and skipped versions, values nobody wrote."""

from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab import checker
from txlab.checker import segments


def messy(seed: int, n: int, keys: int, faults: float, unknown: bool = False) -> list[dict]:
    rng = random.Random(seed)
    names = [f"k{j}" for j in range(keys)]
    latest = {k: 1 for k in names}
    value = {(k, 1): 0 for k in names}
    aborted: list = []
    recs = [{"type": "run", "format": "txlab-history/1", "scenario": "messy",
             "isolation": rng.choice(["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"])},
            {"type": "init", "id": 0, "ops": [["w", k, 1, 0] for k in names]}]
    t = 0
    for i in range(1, n + 1):
        t += rng.randint(0, 3)
        ops, mine = [], {}
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(names)
            if rng.random() < 0.5:
                v = mine.get(k, latest[k])
                x = rng.random()
                if k not in mine and x < faults:  # stale: an older version
                    v = rng.randint(1, latest[k])
                elif k not in mine and x < 2 * faults:  # a version written later (or never)
                    v = latest[k] + rng.randint(1, 2)
                elif k not in mine and x < 2.5 * faults and aborted:  # an aborted write
                    ak, av, aval = rng.choice(aborted)
                    k, v = ak, av
                    value.setdefault((k, v), aval)
                val = value.get((k, v), -1 if rng.random() < 0.5 else 10**6 + i)
                if k in mine:
                    val = value[(k, v)]
                ops.append(["r", k, v, val])
            else:
                base = mine.get(k, latest[k])
                x = rng.random()
                v = base if x < faults / 2 else base + 2 if x < faults else base + 1
                ops.append(["w", k, v, i * 10 + len(ops)])
                mine[k] = v
                value[(k, v)] = i * 10 + len(ops) - 1
        outcome = "committed" if rng.random() < 0.8 else "aborted"
        if unknown and rng.random() < 0.05:
            outcome = "unknown"
        if outcome == "committed":
            for k, v in mine.items():
                latest[k] = max(latest[k], v)
        else:
            aborted += [(k, v, value[(k, v)]) for k, v in mine.items()]
        recs.append({"type": "txn", "id": i, "worker": i % 4, "txn": i, "attempt": 0,
                     "invoke_ns": t, "complete_ns": t + rng.randint(1, 25), "outcome": outcome,
                     "ops": ops})
    return recs


def write(tmp_path, recs) -> str:
    p = tmp_path / "h.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return str(p)


def summary(r) -> tuple:
    return (r.verdict, {k: a["count"] for k, a in r.anomalies.items()}, r.history,
            sorted(r.unknown))


@settings(max_examples=int(os.environ.get("TXLAB_SEGMENT_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), n=st.integers(5, 120), keys=st.integers(1, 5),
       faults=st.sampled_from([0.0, 0.02, 0.1, 0.3]), segment=st.integers(2, 12),
       window=st.sampled_from([3, 30, 30_000]))
def test_parts_give_the_verdict_and_counts_of_the_whole(tmp_path, monkeypatch, seed, n, keys,
                                                        faults, segment, window):
    p = write(tmp_path, messy(seed, n, keys, faults))
    monkeypatch.setattr(segments, "WINDOW", window)
    whole = checker.check(p, segment=0)
    parts = checker.check(p, segment=segment)
    assert summary(parts) == summary(whole)
    if parts.stats.get("parts"):  # each part checked alone: a forbidden find is the same
        assert parts.forbidden == whole.forbidden


@pytest.mark.parametrize("seed,n,keys,faults,segment", [
    (534229, 138, 5, 0.03, 18),  # two read-modify-writes of one version, parts apart
    (82996, 242, 1, 0.01, 6),  # a transaction that installs one version twice
    (490667, 266, 1, 0.01, 11),  # a future read beside a duplicated version
    (1268, 5, 1, 0.1, 2),  # an aborted write read by a transaction that completed before it
    (92432, 5, 5, 0.02, 2),  # its only dependency a forward rw edge across a cut: no graph
])
def test_histories_that_were_once_cut_wrongly(tmp_path, monkeypatch, seed, n, keys, faults,
                                              segment):
    monkeypatch.setattr(segments, "WINDOW", 3)
    p = write(tmp_path, messy(seed, n, keys, faults))
    assert summary(checker.check(p, segment=segment)) == summary(checker.check(p, segment=0))


def test_a_clean_history_is_cut_and_checked_in_parts(tmp_path):
    p = write(tmp_path, messy(7, 400, 40, 0.0))
    r = checker.check(p, segment=20)
    assert r.stats["parts"] > 5
    assert summary(r) == summary(checker.check(p, segment=0))


def test_a_stale_read_far_back_keeps_its_cycle_in_one_part(tmp_path):
    # 200 clean transactions on k1; then one reads k0 at v1 long after T1 installed v2,
    # and T1 read what the stale reader's worker wrote: G-single across the history
    recs = messy(3, 1, 2, 0.0)
    recs[2]["ops"] = [["r", "k1", 1, 0], ["w", "k0", 2, 10]]
    for i in range(2, 200):
        recs.append({"type": "txn", "id": i, "worker": 1, "txn": i, "attempt": 0,
                     "invoke_ns": 100 + i, "complete_ns": 101 + i, "outcome": "committed",
                     "ops": [["r", "k1", i - 1 + 1, 0 if i == 2 else (i - 1) * 10],
                             ["w", "k1", i + 1, i * 10]][1:]})
    recs.append({"type": "txn", "id": 200, "worker": 2, "txn": 1, "attempt": 0,
                 "invoke_ns": 1, "complete_ns": 400, "outcome": "committed",
                 "ops": [["r", "k0", 1, 0], ["w", "k1", 1 + 199, 2000]]})
    p = write(tmp_path, recs)
    whole = checker.check(p, "serializable", segment=0)
    assert whole.verdict == "invalid"
    for window in (5, 30_000):
        segments.WINDOW, old = window, segments.WINDOW
        try:
            assert summary(checker.check(p, "serializable", segment=10)) == summary(whole)
        finally:
            segments.WINDOW = old


def test_an_unknown_outcome_or_a_duplicate_version_is_checked_whole(tmp_path):
    recs = messy(5, 200, 3, 0.0, unknown=True)
    assert any(r.get("outcome") == "unknown" for r in recs)
    assert segments.plan(write(tmp_path, recs), 10) is None
    recs = messy(5, 200, 3, 0.0)
    for n, rec in enumerate(recs[2:4]):  # two committed installs of k0 v2
        rec.update(outcome="committed", ops=[["w", "k0", 2, 7 + n]], invoke_ns=0,
                   complete_ns=1 + n)
    assert segments.plan(write(tmp_path, recs), 10) is None
    assert segments.plan(write(tmp_path, messy(5, 200, 3, 0.0)), 10)


@pytest.mark.parametrize("flag", [{"process": True}, {"realtime": True}, {"graphs": True}])
def test_edges_that_cross_every_cut_are_checked_whole(tmp_path, flag):
    p = write(tmp_path, messy(7, 300, 30, 0.0))
    assert "parts" not in checker.check(p, segment=10, **flag).stats
    r = checker.check(p, "strict-serializable", segment=10)
    assert "parts" not in r.stats and r.stats["realtime_edges"]


def test_a_malformed_record_is_named_by_its_line_as_in_the_whole_check(tmp_path):
    recs = messy(7, 300, 30, 0.0)
    recs[250]["worker"] = {"not": "an integer"}  # line 251: parsed fine, refused by the loader
    p = write(tmp_path, recs)
    messages = []
    for segment in (0, 10):
        with pytest.raises(checker.HistoryFormatError) as e:
            checker.check(p, segment=segment)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and ":251: worker must be an integer" in messages[0]


def test_a_parts_context_holds_only_the_keys_it_uses(tmp_path):
    """A history that keeps making new keys (tickets, bookings): each part's context is
    the latest versions of its own keys, not of every key so far."""
    recs = [{"type": "run", "format": "txlab-history/1", "isolation": "READ COMMITTED"},
            {"type": "init", "id": 0, "ops": [["w", "event", 1, 0]]}]
    for i in range(1, 401):
        recs.append({"type": "txn", "id": i, "worker": i % 4, "txn": i, "attempt": 0,
                     "invoke_ns": i * 10, "complete_ns": i * 10 + 5, "outcome": "committed",
                     "ops": [["r", "event", i, i - 1], ["w", "event", i + 1, i],
                             ["w", f"ticket:{i}", 1, i]]})
    p = write(tmp_path, recs)
    cuts = segments.plan(p, 40)
    assert cuts and len(cuts) >= 5
    for records, names, _ in list(segments.parts(p, cuts))[1:]:
        context = [r for n, r in records if n == 0]
        mine = names[len(names) - sum(1 for n, r in records if n and r["type"] == "txn"):]
        written = [op[1] for r in context for op in r.get("ops", [])]
        assert set(written) <= {"event"} | {f"ticket:{i}" for i in mine}, written
    assert summary(checker.check(p, segment=40)) == summary(checker.check(p, segment=0))
