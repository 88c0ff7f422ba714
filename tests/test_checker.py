"""The anomaly checker on hand-written minimal histories (pure: no database).

Every anomaly class has a history that must be flagged with its name and a
neighbouring history, one step away, that must not be.
"""

from __future__ import annotations

import pytest

from txlab import checker
from txlab.checker.synthetic import history, txn

CYCLES = {"G0", "G1c", "G-single", "G-nonadjacent", "G2-item"}


def found(h, model="serializable", **kw) -> set[str]:
    return set(checker.check(h, model, **kw).anomalies)


# name -> (flagged history, neighbouring history that must not be flagged)
CASES = {
    "G0": (
        history(txn(("w", "x", 2), ("w", "y", 3)), txn(("w", "x", 3), ("w", "y", 2))),
        history(txn(("w", "x", 2), ("w", "y", 2)), txn(("w", "x", 3), ("w", "y", 3))),
    ),
    "G1a": (
        history(txn(("w", "x", 2), outcome="aborted"), txn(("r", "x", 2))),
        history(txn(("w", "x", 2), outcome="aborted"), txn(("r", "x", 1))),
    ),
    "G1b": (
        history(txn(("w", "x", 2), ("w", "x", 3)), txn(("r", "x", 2))),
        history(txn(("w", "x", 2), ("w", "x", 3)), txn(("r", "x", 3))),
    ),
    "G1c": (
        history(txn(("w", "x", 2), ("r", "y", 2)), txn(("w", "y", 2), ("r", "x", 2))),
        history(txn(("w", "x", 2), ("r", "y", 2)), txn(("w", "y", 2), ("r", "x", 1))),
    ),
    "internal": (
        history(txn(("w", "x", 2), ("r", "x", 1))),
        history(txn(("w", "x", 2), ("r", "x", 2))),
    ),
    "lost update": (
        history(txn(("r", "x", 1), ("w", "x", 2)), txn(("r", "x", 1), ("w", "x", 3))),
        history(txn(("r", "x", 1), ("w", "x", 2)), txn(("r", "x", 2), ("w", "x", 3))),
    ),
    "G-single": (  # read skew
        history(txn(("r", "x", 1), ("r", "y", 2)), txn(("w", "x", 2), ("w", "y", 2))),
        history(txn(("r", "x", 1), ("r", "y", 1)), txn(("w", "x", 2), ("w", "y", 2))),
    ),
    "G-nonadjacent": (
        history(txn(("r", "x", 1), ("r", "w", 2)), txn(("w", "x", 2), ("w", "y", 2)),
                txn(("r", "y", 2), ("r", "z", 1)), txn(("w", "z", 2), ("w", "w", 2))),
        history(txn(("r", "x", 1), ("r", "w", 1)), txn(("w", "x", 2), ("w", "y", 2)),
                txn(("r", "y", 2), ("r", "z", 1)), txn(("w", "z", 2), ("w", "w", 2))),
    ),
    "G2-item": (  # write skew
        history(txn(("r", "x", 1), ("r", "y", 1), ("w", "x", 2)),
                txn(("r", "x", 1), ("r", "y", 1), ("w", "y", 2))),
        history(txn(("r", "x", 1), ("r", "y", 1), ("w", "x", 2)),
                txn(("r", "x", 2), ("r", "y", 1), ("w", "y", 2))),
    ),
    "duplicate-versions": (
        history(txn(("w", "x", 2)), txn(("w", "x", 2))),
        history(txn(("w", "x", 2)), txn(("w", "x", 3))),
    ),
    "missing-versions": (
        history(txn(("w", "x", 3))),
        history(txn(("w", "x", 2))),
    ),
    "G-single-process": (  # a worker does not see its own earlier commit
        history(txn(("w", "x", 2), worker=1), txn(("r", "x", 1), worker=1)),
        history(txn(("w", "x", 2), worker=1), txn(("r", "x", 2), worker=1)),
    ),
    "G-single-realtime": (  # a stale read after the writer's commit returned
        history(txn(("w", "x", 2), at=(1, 2)), txn(("r", "x", 1), at=(3, 4))),
        history(txn(("w", "x", 2), at=(1, 3)), txn(("r", "x", 1), at=(2, 4))),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_flagged_with_its_name(name):
    bad, _ = CASES[name]
    assert name in found(bad, "strict-serializable")


@pytest.mark.parametrize("name", sorted(CASES))
def test_neighbour_is_not_flagged(name):
    _, good = CASES[name]
    assert found(good, "strict-serializable") == set()


@pytest.mark.parametrize("name", sorted(n for n in CASES if n in CYCLES))
def test_a_cycle_is_named_by_its_own_kind_only(name):
    bad, _ = CASES[name]
    assert found(bad) & CYCLES == {name}


def test_lost_update_is_also_g_single():
    bad, _ = CASES["lost update"]
    assert found(bad) == {"lost update", "G-single"}


def test_g1a_by_value_when_an_aborted_version_number_was_reused():
    # The aborted T1 got x v2 = 5, rolled back; T2 installed x v2 = 7. A read of
    # x v2 = 5 saw the aborted write (a doctored history).
    h = history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 7)),
                txn(("r", "x", 2, 5)))
    assert "G1a" in found(h)
    ok = history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 7)),
                 txn(("r", "x", 2, 7)))
    assert found(ok) == set()


def test_unknown_outcome_counts_as_committed_once_its_write_is_read():
    h = history(txn(("w", "x", 2), outcome="unknown"), txn(("r", "x", 2)))
    r = checker.check(h, "serializable")
    assert r.anomalies == {} and r.verdict == "valid"
    lone = history(txn(("w", "x", 2), outcome="unknown"), txn(("r", "x", 1)))
    assert found(lone) == set()  # never observed: left out, not an aborted read


def test_cyclic_versions_in_a_register_history():
    ops = [
        {"type": "invoke", "process": 0, "value": [["r", "x", None], ["w", "x", 2]]},
        {"type": "ok", "process": 0, "value": [["r", "x", 1], ["w", "x", 2]]},
        {"type": "invoke", "process": 1, "value": [["r", "x", None], ["w", "x", 1]]},
        {"type": "ok", "process": 1, "value": [["r", "x", 2], ["w", "x", 1]]},
    ]
    assert "cyclic-versions" in found(ops)
    ops[3]["value"][1][2] = 3
    assert "cyclic-versions" not in found(ops)


# ---------------------------------------------------------------- the model table


@pytest.mark.parametrize("anomaly,allowed_at,forbidden_at", [
    ("G1a", "read-uncommitted", "read-committed"),
    ("G1c", "read-uncommitted", "read-committed"),
    ("lost update", "read-committed", "snapshot-isolation"),
    ("G-single", "read-committed", "snapshot-isolation"),
    ("G-nonadjacent", "read-committed", "snapshot-isolation"),
    ("G2-item", "snapshot-isolation", "serializable"),
    ("G-single-process", "serializable", "strict-serializable"),
])
def test_model_table(anomaly, allowed_at, forbidden_at):
    bad, _ = CASES[anomaly]
    lo = checker.check(bad, allowed_at, process=True, realtime=True)
    hi = checker.check(bad, forbidden_at, process=True, realtime=True)
    assert lo.anomalies[anomaly]["status"] == "allowed"
    assert hi.anomalies[anomaly]["status"] == "forbidden" and hi.verdict == "invalid"
    assert forbidden_at in hi.models_ruled_out


@pytest.mark.parametrize("level,model", [
    ("READ COMMITTED", "read-committed"), ("REPEATABLE READ", "snapshot-isolation"),
    ("SERIALIZABLE", "serializable"), ("rr", "snapshot-isolation"),
    ("READ UNCOMMITTED", "read-committed"),
])
def test_postgres_levels_map_to_what_they_provide(level, model):
    assert checker.model_for_isolation(level) == model


def test_write_skew_is_allowed_at_repeatable_read_and_forbidden_at_serializable():
    bad, _ = CASES["G2-item"]
    rr = checker.check(bad, isolation="REPEATABLE READ")
    assert rr.model == "snapshot-isolation" and rr.verdict == "valid"
    assert rr.anomalies["G2-item"]["status"] == "allowed"
    assert checker.check(bad, isolation="SERIALIZABLE").verdict == "invalid"


def test_default_model_comes_from_the_history():
    bad, _ = CASES["G2-item"]
    bad.meta["isolation"] = "REPEATABLE READ"
    assert checker.check(bad).model == "snapshot-isolation"


def test_a_stronger_model_than_the_runs_own_calls_a_bug_only_what_the_run_forbids():
    import copy

    bad = copy.deepcopy(CASES["lost update"][0])  # CASES are shared: leave theirs alone
    bad.meta["isolation"] = "REPEATABLE READ"  # snapshot isolation forbids a lost update too
    r = checker.check(bad, "serializable")
    assert r.isolation == "REPEATABLE READ" and r.judged_isolation is None
    assert r.run_model == "snapshot-isolation" and not r.own_model
    text = " ".join(checker.render(r, "text").split())
    assert "judged against serializable, given with --model; the run used REPEATABLE READ" in text
    assert "FORBIDDEN at serializable and at REPEATABLE READ: a database or harness bug" in text
    bad.meta["isolation"] = "READ COMMITTED"  # which allows it
    text = " ".join(checker.render(checker.check(bad, isolation="ser"), "text").split())
    assert "the model of SERIALIZABLE (--isolation)" in text and "harness bug" not in text


# ---------------------------------------------------------------- explanations


def test_explanation_names_transactions_and_ends_in_a_contradiction():
    bad, _ = CASES["G2-item"]
    r = checker.check(bad, "serializable")
    ex = r.anomalies["G2-item"]["examples"][0]
    assert [s["edge"] for s in ex["steps"]] == ["rw", "rw"]
    assert {s["key"] for s in ex["steps"]} == {"x", "y"}
    text = ex["text"]
    assert text.startswith("Let:\n  T1 = {id 1")
    assert "T1 read y at v1, and T2 installed the next version v2" in text
    assert text.rstrip().endswith("a contradiction!")
    assert "However, " in text


def test_render_text_and_json():
    import json

    bad, _ = CASES["lost update"]
    r = checker.check(bad, "snapshot-isolation")
    text = checker.render(r, "text")
    assert "FORBIDDEN" in text and "INVALID" in text
    data = json.loads(checker.render(r, "json"))
    assert data["verdict"] == "invalid"
    assert data["counts"] == {"lost update": 1, "G-single": 1}
    assert set(data["forbidden"]) == {"lost update", "G-single"}
    assert data["anomalies"]["G-single"]["examples"][0]["cycle"] == ["T1", "T2", "T1"] or \
        data["anomalies"]["G-single"]["examples"][0]["cycle"] == ["T2", "T1", "T2"]
    assert data["models_ruled_out"] == ["snapshot-isolation", "strong-session-snapshot-isolation",
                                        "strong-snapshot-isolation", "serializable",
                                        "strong-session-serializable", "strict-serializable"]
    assert "ruled out: snapshot-isolation, and 5 stronger models" in text


def test_dot_for_each_example_cycle():
    bad, _ = CASES["G2-item"]
    r = checker.check(bad, "serializable")
    (kind, dot), = r.plots
    assert kind == "G2-item" and dot.startswith('digraph "G2-item"')
    assert dot.count("->") == 2 and 'label="rw x"' in dot


def test_time_cap_gives_unknown(monkeypatch):
    from txlab.checker import graph

    def slow(*a, **k):
        raise graph.TimedOut

    monkeypatch.setattr(graph, "shortest_cycle_through", slow)
    bad, _ = CASES["G2-item"]
    r = checker.check(bad, "serializable")
    assert r.verdict == "unknown" and "G2-item" in r.unknown


@pytest.mark.parametrize("name", ["G1a", "G1b", "internal", "duplicate-versions",
                                  "missing-versions"])
def test_a_non_cycle_anomaly_comes_alone(name):
    bad, _ = CASES[name]
    assert found(bad, "strict-serializable") == {name}


# Write skew through predicate reads (doctors on call): each transaction read the
# other's row through its predicate and the other overwrote that version: item
# anti-dependencies, so G2-item (which ANSI REPEATABLE READ, PL-2.99, forbids),
# explained through the predicate.
SKEW_BY_PREDICATE = history(
    txn(("pr", "on_call", [["d1", 1], ["d2", 1]]), ("w", "d1", 2)),
    txn(("pr", "on_call", [["d1", 1], ["d2", 1]]), ("w", "d2", 2)))
NO_SKEW_BY_PREDICATE = history(  # the second saw the first's write: serial
    txn(("pr", "on_call", [["d1", 1], ["d2", 1]]), ("w", "d1", 2)),
    txn(("pr", "on_call", [["d2", 1]]), ("w", "d2", 2)))


def test_write_skew_through_predicate_reads_is_g2_item_explained_by_the_predicate():
    r = checker.check(SKEW_BY_PREDICATE, "serializable")
    assert set(r.anomalies) == {"G2-item"} and r.verdict == "invalid"
    text = r.anomalies["G2-item"]["examples"][0]["text"]
    assert "on_call" in text  # the rw edges name the predicate read that returned the row
    assert checker.check(SKEW_BY_PREDICATE, "snapshot-isolation").verdict == "valid"


def test_predicate_reads_that_saw_the_other_write_are_serial():
    r = checker.check(NO_SKEW_BY_PREDICATE, "serializable")
    assert r.anomalies == {} and r.verdict == "valid"
