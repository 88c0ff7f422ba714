"""ticket-sales against the real server: overselling (predicate write skew, G2)
where it is possible, and none where a strategy, a constraint or the level forbids it."""

from __future__ import annotations

import json

import pytest

from txlab.scenario import resolve

SCENARIO = resolve("ticket-sales", env={})
# One event of four seats, three buyers limited to two tickets each, eight workers
# pausing 30 ms between the checks and the insert: the first wave of eight
# requests (each for 1-2 seats) all see an empty event. If they all sell, that is
# at least 8 tickets for 4 seats, seat 1 sold many times, and a buyer holding at
# least 3 (pigeonhole): an unsafe combination cannot get lucky.
CONTENDED = ("-p", "events=1", "-p", "capacity=4", "-p", "buyers=3", "-p", "max_seats=2",
             "-p", "per_buyer_limit=2", "-w", "8", "--think-ms", "30", "-n", "24",
             "--format", "json")
SAFE = [(s.name, level) for s in SCENARIO.strategies for level in s.safe_at]
UNSAFE = [(s.name, level) for s in SCENARIO.strategies
          for level in ("read-committed", "repeatable-read") if level not in s.safe_at]


def run(txlab, strategy, level, *extra):
    r = txlab("run", "ticket-sales", "-s", strategy, "-i", level, *CONTENDED, *extra)
    assert r.stdout.startswith("{"), r.stdout + r.stderr
    return r.exit_code, json.loads(r.stdout)


def holds(rep):
    return {i["name"]: i["holds"] for i in rep["invariants"]}


def test_the_catalog_declares_the_expected_safety():
    assert UNSAFE == [("naive", "read-committed"), ("naive", "repeatable-read"),
                      ("for-update", "repeatable-read")]


@pytest.mark.parametrize("strategy,level", SAFE)
def test_safe_combinations_never_oversell(txlab, strategy, level):
    code, rep = run(txlab, strategy, level, "--seed", "5")
    assert code == 0 and rep["verdict"] == "HOLDS", rep["invariants"]
    assert rep["outcomes"]["committed"] >= 1


@pytest.mark.parametrize("strategy,level", UNSAFE)
def test_unsafe_combinations_oversell(txlab, strategy, level):
    code, rep = run(txlab, strategy, level, "--seed", "5")
    assert code == 1 and rep["verdict"] == "VIOLATED"
    assert holds(rep) == {"never more tickets than capacity": False, "no seat sold twice": False,
                          "per-buyer limit respected": False}


def test_unique_seat_turns_the_race_into_unique_violations(txlab):
    code, rep = run(txlab, "unique-seat", "read-committed", "--seed", "5")
    assert code == 0
    assert rep["outcomes"]["aborted"].get("23505", 0) > 0


def test_counter_hands_out_every_seat_once(txlab, tmp_path):
    from txlab import history

    path = tmp_path / "h.jsonl"
    code, rep = run(txlab, "counter", "read-committed", "--seed", "5", "--history", str(path))
    assert code == 0
    committed = [a for a in history.read(path).attempts if a.outcome == "committed"]
    # the counter's versions go 2, 3, ... one per sale; the seats go 1..4, each once
    events = sorted(op[2] for a in committed for op in a.ops if op[1] == "event:1")
    assert events == list(range(2, len(committed) + 2))
    seats = sorted(op[3][1] for a in committed for op in a.ops if op[1].startswith("ticket:"))
    assert seats == [1, 2, 3, 4]


def test_checks_are_recorded_as_predicate_reads(txlab, tmp_path):
    from txlab import history

    path = tmp_path / "h.jsonl"
    run(txlab, "naive", "read-committed", "--history", str(path))
    committed = [a for a in history.read(path).attempts if a.outcome == "committed"]
    assert committed
    for a in committed:
        assert a.ops[0][:3] == ("r", "event:1", 1)
        assert a.ops[1][0] == "pr" and a.ops[1][1] == "tickets WHERE event_id = 1"
        inserts = [op for op in a.ops[2:] if op[0] == "w"]
        assert inserts and all(op[1].startswith("ticket:") and op[2] == 1 for op in inserts)


class _Rows:
    """A stand-in for the invariant's read-only database: the rows its query returns."""

    def __init__(self, rows):
        self.rows = rows

    def query(self, sql, args=()):
        return self.rows


def test_the_story_names_every_oversold_event():
    within_capacity = next(i.check for i in SCENARIO.invariants
                           if i.name == "never more tickets than capacity")
    v = within_capacity(_Rows([(1, 20, 25), (2, 20, 30)]))
    assert v.story == ("2 events were oversold: event 1 has 25 tickets for 20 seats, event 2 "
                       "has 30 tickets for 20 seats")
    assert v.detail == "event 1: 25 tickets for 20 seats; event 2: 30 tickets for 20 seats"
    many = within_capacity(_Rows([(e, 20, 21) for e in range(1, 8)]))
    assert many.story.startswith("7 events were oversold: event 1 has 21 tickets")
    assert many.story.endswith("event 5 has 21 tickets for 20 seats, and 2 more")
    assert many.detail.endswith("event 5: 21 tickets for 20 seats; and 2 more")
    one = within_capacity(_Rows([(3, 20, 22)]))
    assert one.story == "1 event was oversold: event 3 has 22 tickets for 20 seats"


def test_the_note_on_an_unseen_cause_fits_ticket_sales(txlab):
    # naive only counts (a predicate read) and inserts new rows: nothing the history
    # checker sees conflicts, so the report explains why it found nothing
    code, rep = run(txlab, "naive", "read-committed", "--seed", "5")
    assert code == 1 and rep["anomalies"] == []
    (note,) = [n for n in rep["notes"] if "history checker found no anomaly" in n]
    assert "count or search" in note
    assert "room" not in note and "booking" not in note
