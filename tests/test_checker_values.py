"""The checker's value rules in txlab's format (pure: no database).

A key's value means the same thing for every read and write of it, so a read
must return the value that the version's installer wrote: a committed
transaction's re-read of its own write returns that write's version and value
(else `internal`), and any other committed read returns the committed
installer's value, or it is an aborted read (a failed attempt wrote that value
under the same version number, G1a) or a garbage read (nobody wrote it).
Each rule has a history that must be flagged and a neighbour that must not be.
"""

from __future__ import annotations

import pytest

from txlab import checker
from txlab import history as txhistory
from txlab.checker.synthetic import history, txn


def found(h, model="strict-serializable") -> set[str]:
    return set(checker.check(h, model).anomalies)


# name -> (flagged history, neighbouring history that must not be flagged)
CASES = {
    "internal: own write re-read with another value": (
        history(txn(("w", "x", 2, 5), ("r", "x", 2, 6))),
        history(txn(("w", "x", 2, 5), ("r", "x", 2, 5))),
    ),
    "internal: own write re-read by a predicate with another value": (
        history(txn(("w", "d1", 2, False), ("pr", "on_call", [["d1", 2, True], ["d2", 1]]))),
        history(txn(("w", "d1", 2, False), ("pr", "on_call", [["d1", 2, False], ["d2", 1]]))),
    ),
    "garbage-read: another committed install's version with a value nobody wrote": (
        history(txn(("w", "x", 2, 7)), txn(("r", "x", 2, 9))),
        history(txn(("w", "x", 2, 7)), txn(("r", "x", 2, 7))),
    ),
    "garbage-read: the initial version with a value nobody wrote": (
        history(txn(("r", "x", 1, "bogus"))),
        history(txn(("r", "x", 1, "x1"))),
    ),
    "garbage-read: a predicate read returned a row with a value nobody wrote": (
        history(txn(("w", "d1", 2, False)), txn(("pr", "on_call", [["d1", 2, True]]))),
        history(txn(("w", "d1", 2, False)), txn(("pr", "on_call", [["d1", 2, False]]))),
    ),
    "garbage-read: a rolled-back attempt took the version number, with another value": (
        history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 7)),
                txn(("r", "x", 2, 6))),
        history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 7)),
                txn(("r", "x", 2, 7))),
    ),
    "garbage-read: JSON values (null is not false)": (
        history(txn(("w", "x", 2, None)), txn(("r", "x", 2, False))),
        history(txn(("w", "x", 2, None)), txn(("r", "x", 2, None))),
    ),
}
EXPECTED = {name: name.split(":")[0] for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_flagged_with_its_name_alone(name):
    bad, _ = CASES[name]
    assert found(bad) == {EXPECTED[name]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_neighbour_is_not_flagged(name):
    _, good = CASES[name]
    r = checker.check(good, "strict-serializable")
    # a neighbour of one transaction has no graph: unknown (as Elle), never invalid
    lone = sum(1 for a in good.attempts if a.outcome == "committed") < 2
    assert r.anomalies == {} and r.verdict == ("unknown" if lone else "valid"), checker.render(r)
    assert r.empty_graph is lone


def test_a_failed_attempts_value_under_a_reused_version_is_g1a_not_garbage():
    # T1 took x v2 = 5 and rolled back; T2 installed x v2 = 7; T3 read x v2 = 5: it saw
    # the rolled-back write.
    h = history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 7)),
                txn(("r", "x", 2, 5)))
    r = checker.check(h, "serializable")
    assert set(r.anomalies) == {"G1a"}
    ex = r.anomalies["G1a"]["examples"][0]
    assert [t["name"] for t in ex["transactions"]] == ["T3", "T1"]


def test_the_same_version_and_the_same_value_as_a_failed_attempt_is_fine():
    # a retry that installs the version number its rolled-back try took, with the same value
    h = history(txn(("w", "x", 2, 5), outcome="aborted"), txn(("w", "x", 2, 5)),
                txn(("r", "x", 2, 5)))
    assert found(h) == set()


def test_garbage_read_is_forbidden_at_every_model():
    bad, _ = CASES["garbage-read: another committed install's version with a value nobody wrote"]
    for model in checker.MODELS:
        r = checker.check(bad, model)
        assert r.anomalies["garbage-read"]["status"] == "forbidden", model
        assert r.verdict == "invalid"
    assert checker.check(bad, "read-uncommitted").models_ruled_out == list(checker.MODELS)


def test_garbage_read_is_explained():
    bad, _ = CASES["garbage-read: another committed install's version with a value nobody wrote"]
    a = checker.check(bad, "serializable").anomalies["garbage-read"]
    assert a["count"] == 1 and "no transaction wrote" in a["definition"]
    ex = a["examples"][0]
    assert ex["key"] == "x" and ex["version"] == 2
    assert [t["name"] for t in ex["transactions"]] == ["T2", "T1"]
    assert "T2 read x at v2 = 9, but T1 installed v2 = 7, and no transaction wrote 9" in ex["text"]
    assert ex["text"].startswith("Let:\n  T2 = {id 2")


def test_garbage_read_of_the_initial_state_names_it():
    bad, _ = CASES["garbage-read: the initial version with a value nobody wrote"]
    ex = checker.check(bad, "serializable").anomalies["garbage-read"]["examples"][0]
    assert "T1 read x at v1 = 'bogus', but the initial state has v1 = 'x1'" in ex["text"]


def test_internal_by_value_is_explained_with_both_values():
    bad, _ = CASES["internal: own write re-read with another value"]
    ex = checker.check(bad, "serializable").anomalies["internal"]["examples"][0]
    assert "T1 read x at v2 = 6 although it had itself installed v2 = 5" in ex["text"]


def test_internal_by_version_still_flagged():
    h = history(txn(("w", "x", 2, 5), ("r", "x", 1, "x1")))
    assert found(h) == {"internal"}


def test_internal_checks_the_last_own_write():
    h = history(txn(("w", "x", 2, 5), ("w", "x", 3, 6), ("r", "x", 3, 5)))
    assert found(h) == {"internal"}
    ok = history(txn(("w", "x", 2, 5), ("w", "x", 3, 6), ("r", "x", 3, 6)))
    assert found(ok) == set()


def test_internal_is_allowed_below_snapshot_isolation_like_before():
    bad, _ = CASES["internal: own write re-read with another value"]
    assert checker.check(bad, "read-committed").anomalies["internal"]["status"] == "allowed"
    assert checker.check(bad, "snapshot-isolation").verdict == "invalid"


# ---------------------------------------------------------------- comparing values


def test_tuples_and_lists_compare_equal(tmp_path):
    # In memory a scenario may record a tuple where a read returns a list; in a file
    # both are lists.
    h = history(txn(("w", "e", 2, (100, [3, 4]))), txn(("r", "e", 2, [100, (3, 4)])),
                txn(("w", "f", 2, [1, 2]), ("r", "f", 2, (1, 2))))
    assert found(h) == set()
    path = tmp_path / "h.jsonl"
    txhistory.write(h, path)
    assert checker.check(path, "strict-serializable").anomalies == {}


def test_values_are_compared_as_loaded_from_a_file(tmp_path):
    h = history(txn(("w", "x", 2, {"sold": 3, "seats": [1, 2]})),
                txn(("r", "x", 2, {"sold": 3, "seats": [1, 2]})),
                txn(("r", "x", 2, {"sold": 4, "seats": [1, 2]})))
    path = tmp_path / "h.jsonl"
    txhistory.write(h, path)
    r = checker.check(path, "serializable")
    assert set(r.anomalies) == {"garbage-read"} and r.anomalies["garbage-read"]["count"] == 1
    assert r.anomalies["garbage-read"]["examples"][0]["transactions"][0]["name"] == "T3"


# ---------------------------------------------------------------- unknown outcomes


def test_an_unknown_attempt_is_not_promoted_by_a_read_of_another_value():
    # U took x v2 = 5 and its COMMIT's outcome is unknown; it did not commit: T2 installed
    # x v2 = 7, and T3 read that. U's version number was reused, not duplicated.
    h = history(txn(("w", "x", 2, 5), outcome="unknown"), txn(("w", "x", 2, 7)),
                txn(("r", "x", 2, 7)))
    r = checker.check(h, "strict-serializable")
    assert r.anomalies == {} and r.history["unknown"] == 1


def test_an_unknown_attempt_read_with_its_value_counts_as_committed():
    h = history(txn(("w", "x", 2, 5), outcome="unknown"), txn(("r", "x", 2, 5)))
    assert found(h) == set()
    # ... and if a committed one installed the same version too, that is a duplicate,
    # not a garbage read
    both = history(txn(("w", "x", 2, 5), outcome="unknown"), txn(("w", "x", 2, 7)),
                   txn(("r", "x", 2, 5)), txn(("r", "x", 2, 7)))
    assert found(both) == {"duplicate-versions"}


# Lost COMMIT replies: an unknown attempt is promoted to committed only on evidence that
# names it alone, never by a guess that makes a version twice (fault audit: a run whose
# worker lost its COMMIT reply was called FORBIDDEN, duplicate-versions and lost update).


def test_an_unknown_attempt_that_wrote_what_a_committed_one_installed_is_not_promoted():
    # T1 (unknown) and T2 (committed) both wrote version 2 of a with the value 90 (the
    # same debit of the same balance); T3 read a@2 = 90: T2's install explains it.
    h = history(txn(("r", "a", 1), ("r", "b", 1), ("w", "a", 2), ("w", "b", 2),
                    outcome="unknown"),
                txn(("r", "a", 1), ("r", "c", 1), ("w", "a", 2), ("w", "c", 2)),
                txn(("r", "a", 2), ("w", "a", 3)))
    assert found(h, "serializable") == set()


def test_two_unknown_writers_of_one_version_leave_it_open():
    # one of them committed (a later reader saw 5), which one cannot be told: neither is
    # promoted, so no duplicate version, and the read is no garbage read either
    h = history(txn(("w", "x", 2, 5), outcome="unknown"), txn(("w", "x", 2, 5), outcome="unknown"),
                txn(("r", "x", 2, 5)))
    assert found(h) == set()
    # the chain: a committed version 3 needs a version 2, written by one of two unknowns
    chain = history(txn(("w", "x", 2, 5), outcome="unknown"),
                    txn(("w", "x", 2, 6), outcome="unknown"), txn(("w", "x", 3, 7)))
    assert found(chain) == set()


def test_a_promoted_attempts_own_reads_promote_others_whatever_their_order():
    # T3 (committed) read T2's write, so T2 committed; T2 read T1's write, so T1 did too.
    # T1 comes first in the history: one pass in order promoted T2 but never looked at
    # T2's reads, and the write skew between T1 and T4 went unseen.
    h = history(txn(("r", "w", 1), ("w", "x", 2), ("w", "y", 2), outcome="unknown"),
                txn(("r", "x", 2), ("w", "z", 2), outcome="unknown"),
                txn(("r", "z", 2)),
                txn(("r", "y", 1), ("w", "w", 2)))
    assert found(h, "serializable") == {"G2-item"}
    # the neighbour: T3 did not read T2's write, so nothing says T1 or T2 committed
    quiet = history(txn(("r", "w", 1), ("w", "x", 2), ("w", "y", 2), outcome="unknown"),
                    txn(("r", "x", 2), ("w", "z", 2), outcome="unknown"),
                    txn(("r", "z", 1)),
                    txn(("r", "y", 1), ("w", "w", 2)))
    assert found(quiet, "serializable") == set()


# ---------------------------------------------------------------- Elle formats unchanged


def test_elle_register_values_are_versions_and_need_no_value_rule():
    ops = [
        {"type": "invoke", "process": 0, "value": [["w", "x", 1]]},
        {"type": "ok", "process": 0, "value": [["w", "x", 1]]},
        {"type": "invoke", "process": 1, "value": [["r", "x", None]]},
        {"type": "ok", "process": 1, "value": [["r", "x", 1]]},
    ]
    assert found(ops) == set()
