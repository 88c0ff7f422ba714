"""Issue 12's items, one by one: a history that triggers each and a neighbour that must not.
Pure: no database. (Elle's own cases are in test_elle_cases.py.)"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from txlab import checker
from txlab.checker.synthetic import history, txn
from txlab.cli import cli


def ops(*txns, process=None):
    """Completed transactions, one invoke/ok pair each, one after the other in real time."""
    out = []
    for n, value in enumerate(txns):
        p = n if process is None else process
        out.append({"type": "invoke", "process": p, "value": [[m[0], m[1], None] if m[0] == "r"
                                                               else m for m in value]})
        out.append({"type": "ok", "process": p, "value": value})
    return out


def concurrent(*txns):
    """All invoked, then all completed: no real-time order among them."""
    inv = [{"type": "invoke", "process": n, "value": v} for n, v in enumerate(txns)]
    return inv + [{"type": "ok", "process": n, "value": v} for n, v in enumerate(txns)]


def found(h, model="serializable", **kw):
    return set(checker.check(h, model, **kw).anomalies)


# 1. lost update on rw-register, without knowing which write came next


def test_lost_update_on_a_register_is_forbidden_at_snapshot_isolation():
    pairs = []
    for k in range(200):
        pairs += [[["w", k, 0]], [["r", k, 0], ["w", k, 1]], [["r", k, 0], ["w", k, 2]]]
    r = checker.check(concurrent(*pairs), "snapshot-isolation", wfr_keys=False)
    assert r.anomalies["lost update"]["count"] == 200
    assert r.verdict == "invalid" and "lost update" in r.forbidden


def test_read_modify_writes_of_successive_values_are_not_a_lost_update():
    h = concurrent([["w", "x", 0]], [["r", "x", 0], ["w", "x", 1]], [["r", "x", 1], ["w", "x", 2]])
    assert checker.check(h, "snapshot-isolation").verdict == "valid"


# 2. a list-append read of nil is a read of the empty list; 5. unobserved appends


def test_nil_reads_of_unobserved_appends_are_write_skew():
    h = concurrent([["r", "x", None], ["append", "y", 1]], [["r", "y", None], ["append", "x", 1]])
    assert found(h) == {"G2-item"}
    assert checker.check(h, "snapshot-isolation").verdict == "valid"


def test_a_nil_read_before_the_append_is_serial():
    h = ops([["r", "x", None], ["append", "y", 1]], [["r", "y", [1]], ["append", "x", 1]])
    assert found(h, "strict-serializable") == set()


def test_an_append_no_read_shows_comes_after_the_longest_read():
    # T2's append of 2 is never read; T3 read [1] after T2 completed: G-single-realtime
    h = ops([["append", "x", 1]], [["append", "x", 2]], [["r", "x", [1]]])
    assert found(h, "strict-serializable") == {"G-single-realtime"}
    h = ops([["append", "x", 1]], [["append", "x", 2]], [["r", "x", [1, 2]]])
    assert found(h, "strict-serializable") == set()


def test_an_append_another_transaction_slipped_between_two_of_ones_own_is_a_write_cycle():
    # Every append is a version (Elle's ww-graph links the writers of every two
    # consecutive elements): T1 appended 1 and 2, T2's 3 landed between them, so
    # T1 -ww-> T2 (1 then 3) and T2 -ww-> T1 (3 then 2): G0 at every level. Elle's
    # "internal consistency violation" test says so ("There's a G0 here too").
    h = concurrent([["append", "x", 1], ["append", "x", 2]], [["append", "x", 3]],
                   [["r", "x", [1, 3, 2]]])
    r = checker.check(h, "read-uncommitted", process=False, realtime=False)
    assert set(r.anomalies) == {"G0"} and r.verdict == "invalid"
    # the later append no read shows comes after the last element read: the same
    h = concurrent([["append", "x", 1], ["append", "x", 2]], [["append", "x", 3]],
                   [["r", "x", [1, 3]]])
    assert "G0" in found(h, "read-uncommitted", process=False, realtime=False)
    # Elle's own case: ax1 ax2 ax4 | ax3 rx[1 2 3 4]
    h = concurrent([["append", "x", 1], ["append", "x", 2], ["append", "x", 4]],
                   [["append", "x", 3], ["r", "x", [1, 2, 3, 4]]])
    assert found(h, "read-uncommitted", process=False, realtime=False) >= {"G0", "internal"}


def test_two_appends_of_one_transaction_side_by_side_are_no_write_cycle():
    # the neighbour: T2's 3 after both of T1's appends, or before both
    for order in ([1, 2, 3], [3, 1, 2]):
        h = concurrent([["append", "x", 1], ["append", "x", 2]], [["append", "x", 3]],
                       [["r", "x", order]])
        assert found(h, "serializable", process=False, realtime=False) == set(), order


def test_a_write_cycle_through_an_earlier_append_is_explained_with_the_right_elements():
    h = concurrent([["append", "x", 1], ["append", "x", 2], ["append", "x", 4]],
                   [["append", "x", 3], ["r", "x", [1, 2, 3, 4]]])
    r = checker.check(h, "read-uncommitted", process=False, realtime=False)
    text = json.dumps(r.anomalies["G0"])
    assert "appended 2 to x, and T" in text and "appended 3 right after it" in text
    assert "appended 4 right after it" in text and "appended 1 right after" not in text


# 3. future read


@pytest.mark.parametrize("value,future", [
    ([["r", "x", [1]], ["append", "x", 1]], True),
    ([["append", "x", 1], ["r", "x", [1]]], False),
    ([["r", "x", 1], ["w", "x", 1]], True),
    ([["w", "x", 1], ["r", "x", 1]], False),
])
def test_future_read_in_elle_histories(value, future):
    r = checker.check(ops(value), "read-committed")
    assert ("future-read" in r.forbidden) is future
    # one transaction: no graph, so without the future read nothing is known (as Elle)
    assert r.verdict == ("invalid" if future else "unknown") and r.empty_graph


def test_future_read_in_txlab_histories():
    assert found(history(txn(("r", "x", 2), ("w", "x", 2)))) == {"future-read"}
    assert found(history(txn(("r", "x", 1), ("w", "x", 2)))) == set()


# 4. real-time order from the order of events, without time fields


def test_realtime_order_comes_from_event_positions():
    h = ops([["append", "x", 1]], [["append", "x", 2]], [["r", "x", [1]]], [["r", "x", [1, 2]]])
    assert all("time" not in op for op in h)
    assert found(h, "strict-serializable") == {"G-single-realtime"}
    # the same reads, but the first one was invoked before the second append completed
    h = h[:2] + [h[2], h[4], h[3]] + h[5:]
    assert found(h, "strict-serializable") == set()


# 6. keys with an incompatible order or duplicate elements are still ordered


def test_a_key_with_incompatible_reads_still_gives_edges():
    h = ops([["append", "x", 1], ["r", "y", [1]]], [["append", "x", 2]],
            [["append", "x", 3], ["append", "y", 1]], [["r", "x", [1, 3]]], [["r", "x", [1, 2, 3]]])
    assert found(h, "read-committed") >= {"incompatible-order", "G1c"}
    h[1]["value"][1] = h[0]["value"][1] = ["r", "y", None]
    assert "G1c" not in found(h, "read-committed")


def test_a_key_with_duplicate_elements_still_gives_edges():
    h = ops([["append", "x", 1], ["r", "y", [1]]], [["append", "x", 2], ["append", "y", 1]],
            [["r", "x", [1, 2, 1]]])
    assert set(checker.check(h, "read-committed").forbidden) == {"duplicate-elements", "G1c"}
    h[-1]["value"] = [["r", "x", [1, 2]]]
    assert set(checker.check(h, "read-committed").forbidden) == {"G1c"}
    h[1]["value"][1] = ["r", "y", None]
    assert checker.check(h, "read-committed").forbidden == []


# 7. Elle's options, and reads written without a value


def test_wfr_keys_is_an_option():
    h = ops([["r", "y", 1], ["w", "x", 1], ["w", "y", 2]], [["r", "x", 1], ["r", "y", 1]],
            process=0)
    assert "G-single" in found(h, garbage_reads=False)
    assert found(h, wfr_keys=False, garbage_reads=False) == set()


def test_sequential_keys_orders_versions_by_process():
    h = concurrent([["w", "x", 1], ["w", "y", 2]], [["w", "x", 2], ["w", "y", 1]])
    h += [{"type": "invoke", "process": 0, "value": [["r", "x", None]]},
          {"type": "ok", "process": 0, "value": [["r", "x", 2]]},
          {"type": "invoke", "process": 1, "value": [["r", "y", None]]},
          {"type": "ok", "process": 1, "value": [["r", "y", 2]]}]
    assert "G0" in found(h, "read-uncommitted", sequential_keys=True)
    assert "G0" not in found(h, "read-uncommitted")


def test_linearizable_keys_orders_versions_by_real_time():
    h = ops([["w", "x", 1]], [["w", "x", 2]], [["r", "x", 1]])
    assert "cyclic-versions" in found(h, linearizable_keys=True)
    assert found(h) == set()


def test_a_read_written_without_a_value_is_accepted(tmp_path):
    h = [{"type": "invoke", "process": 1, "value": [["r", "x"], ["append", "y", 1]]},
         {"type": "ok", "process": 1, "value": [["r", "x", [1]], ["append", "y", 1]]},
         {"type": "invoke", "process": 2, "value": [["r", "y"]]},
         {"type": "ok", "process": 2, "value": [["r", "y", [1]]]},
         {"type": "invoke", "process": 2, "value": [["append", "x", 1]]},
         {"type": "ok", "process": 2, "value": [["append", "x", 1]]}]
    assert found(h, "strict-serializable") == {"G1c-realtime"}


def test_the_options_on_the_command_line(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps(ops([["w", "x", 1]], [["w", "x", 2]], [["r", "x", 1]])))
    assert CliRunner().invoke(cli, ["check", str(p)]).exit_code == 0
    res = CliRunner().invoke(cli, ["check", str(p), "--linearizable-keys"])
    assert res.exit_code == 1 and "cyclic-versions" in res.output
    p.write_text(json.dumps(ops([["r", "x", 5]])))
    assert CliRunner().invoke(cli, ["check", str(p)]).exit_code == 1
    assert CliRunner().invoke(cli, ["check", str(p), "--no-garbage-reads"]).exit_code == 0


# 8. EDN


EDN = """{:type :invoke, :f :txn, :value [[:r :x nil] [:append :y 1]], :process 0, :index 0}
{:type :invoke, :f :txn, :value [[:r :y nil] [:append :x 1]], :process 1, :index 1}
{:type :ok, :f :txn, :value [[:r :x []] [:append :y 1]], :process 0, :index 2}
#jepsen.history.Op{:index 3, :time 9, :type :ok, :process 1, :f :txn, :value [[:r :y nil] [:append :x 1]]}
{:type :info, :f :start-partition, :process :nemesis, :value "majority", :index 4}
"""


def test_edn_history_is_read_directly(tmp_path):
    p = tmp_path / "history.edn"
    p.write_text(EDN)
    r = checker.check(p)
    assert r.history["format"] == "list-append" and set(r.anomalies) == {"G2-item"}
    assert "T3 = {:index 3" in r.anomalies["G2-item"]["examples"][0]["text"]
    p.write_text(EDN.replace("[:r :y nil] [:append :x 1]]", "[:r :y [1]] [:append :x 1]]"))
    assert checker.check(p).anomalies == {}


def test_edn_with_every_form_jepsen_writes(tmp_path):
    p = tmp_path / "history.edn"
    p.write_text(
        '; a comment\n'
        '{:type :invoke, :f :txn, :value [[:w "k" 1]], :process 0, :time 1}\n'
        '{:type :ok, :f :txn, :value [[:w "k" 1]], :process 0, :time 2,\n'
        ' :extra {:set #{1 2} :list (1 2) :str "a \\"quoted\\" \\\\ string" :ratio 1/2\n'
        '         :float 1.5e3 :big 12345678901234567890N :char \\a :bool true :sym foo}}\n'
        '{:type :invoke, :f :txn, :value [[:r "k" nil]], :process 1, :time 3} #_ {:ignored 1}\n'
        '{:type :ok, :f :txn, :value [[:r "k" 1]], :process 1, :time 4}\n')
    r = checker.check(p, "strict-serializable")
    assert r.history["format"] == "rw-register" and r.verdict == "valid"
    assert r.history["committed"] == 2


# 9. a cycle ordered by both process and real time is -realtime, as in Elle


def test_process_and_realtime_order_is_named_realtime():
    h = [{"process": 0, "type": "invoke", "value": [["append", "x", 1]]},
         {"process": 0, "type": "ok", "value": [["append", "x", 1]]},
         {"process": 1, "type": "invoke", "value": [["append", "x", 2]]},
         {"process": 1, "type": "ok", "value": [["append", "x", 2]]},
         {"process": 1, "type": "invoke", "value": [["r", "x", None]]},
         {"process": 1, "type": "ok", "value": [["r", "x", [1]]]},
         {"process": 2, "type": "invoke", "value": [["r", "x", None]]},
         {"process": 2, "type": "ok", "value": [["r", "x", [1, 2]]]}]
    assert found(h, "strict-serializable") == {"G-single-realtime"}
    assert found(h, "snapshot-isolation", process=True) == {"G-single-process"}
    assert found(h, "serializable") == set()


# no false positives: the synthetic serial and snapshot-isolation databases, in Elle's form


@pytest.mark.parametrize("kind,model", [("serial", "strict-serializable"),
                                        ("si", "snapshot-isolation")])
@pytest.mark.parametrize("fmt", ["json", "edn"])
def test_synthetic_histories_in_elle_form_are_valid(tmp_path, kind, model, fmt):
    from txlab.checker import synthetic

    h = synthetic.generate(kind, 4000, keys=50, seed=11)
    p = tmp_path / f"h.{fmt}"
    synthetic.write_elle(synthetic.elle_ops(h), p, fmt)
    r = checker.check(p, model)
    assert r.history["format"] == "rw-register" and r.history["transactions"] == 4000
    assert r.verdict == "valid", r.forbidden
    assert r.history["failed"] > 0 if kind == "si" else r.history["failed"] == 0
