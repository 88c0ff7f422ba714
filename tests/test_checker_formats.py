"""Loading histories (txlab's files, Elle's JSON forms) and the `txlab check` command.
Pure: the real histories under tests/data were recorded once by `txlab run --history`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from txlab import checker
from txlab.cli import cli

DATA = Path(__file__).parent / "data"
RC = DATA / "bank-transfer-naive-rc.jsonl"  # txlab run bank-transfer -s naive -n 120 -w 4 --seed 7
SER = DATA / "bank-transfer-naive-ser.jsonl"  # ... -i serializable --retries 10


def run(*args):
    return CliRunner().invoke(cli, ["check", *map(str, args)], catch_exceptions=False)


# ---------------------------------------------------------------- real txlab histories


def test_real_read_committed_history_shows_lost_updates_allowed():
    r = checker.check(RC)
    assert r.model == "read-committed" and r.isolation == "READ COMMITTED"
    assert r.anomalies["lost update"]["count"] > 0
    assert r.anomalies["G-single"]["status"] == "allowed"
    assert r.verdict == "valid"
    assert "snapshot-isolation" in r.models_ruled_out
    ex = r.anomalies["G-single"]["examples"][0]
    assert all(s["because"] for s in ex["steps"]) and ex["text"].endswith("a contradiction!")


def test_real_serializable_history_with_retries_is_clean():
    r = checker.check(SER, "strict-serializable")
    assert r.history["failed"] > 0  # aborted attempts are in it, and ignored
    assert r.anomalies == {} and r.verdict == "valid"


def test_doctored_aborted_read_is_forbidden(tmp_path):
    lines = [json.loads(x) for x in SER.read_text().splitlines()]
    txns = [x for x in lines if x["type"] == "txn"]
    aborted = {(k, v): val for t in txns if t["outcome"] == "aborted"
               for f, k, v, val in t["ops"] if f == "w"}
    for t in txns:
        if t["outcome"] != "committed":
            continue
        for op in t["ops"]:
            if op[0] == "r" and (op[1], op[2]) in aborted and aborted[(op[1], op[2])] != op[3]:
                op[3] = aborted[(op[1], op[2])]  # now it read the rolled-back value
                break
        else:
            continue
        break
    else:
        pytest.fail("no read to doctor")
    path = tmp_path / "doctored.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = checker.check(path)
    assert r.anomalies["G1a"]["status"] == "forbidden" and r.verdict == "invalid"
    res = run(path)
    assert res.exit_code == 1 and "G1a" in res.output and "FORBIDDEN" in res.output


# ---------------------------------------------------------------- Elle's formats


def ops_lines(*ops):
    return "".join(json.dumps(o) + "\n" for o in ops)


def test_elle_rw_register_g1c(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(ops_lines(
        {"type": "invoke", "f": "txn", "process": 0, "time": 1, "index": 0,
         "value": [["w", "x", 1], ["r", "y", None]]},
        {"type": "invoke", "f": "txn", "process": 1, "time": 2, "index": 1,
         "value": [["w", "y", 1], ["r", "x", None]]},
        {"type": "ok", "f": "txn", "process": 0, "time": 3, "index": 2,
         "value": [["w", "x", 1], ["r", "y", 1]]},
        {"type": "ok", "f": "txn", "process": 1, "time": 4, "index": 3,
         "value": [["w", "y", 1], ["r", "x", 1]]},
    ))
    r = checker.check(p, "read-committed")
    assert r.history["format"] == "rw-register"
    assert set(r.anomalies) == {"G1c"} and r.verdict == "invalid"
    text = r.anomalies["G1c"]["examples"][0]["text"]  # named by the completions' indices
    assert 'T2 = {:index 2, :process 0, committed: [[:w "x" 1] [:r "y" 1]]}' in text
    assert "T2 read y = 1, and T3 wrote it" in text


def test_elle_list_append_write_skew_in_keyword_spelling_as_a_json_array(tmp_path):
    def op(t, p, value, i):
        return {":type": f":{t}", ":f": ":txn", ":process": p, ":time": i, ":index": i,
                ":value": value}

    hist = [
        op("invoke", 0, [[":append", "x", 1], [":r", "y", None]], 0),
        op("invoke", 1, [[":append", "y", 1], [":r", "x", None]], 1),
        op("ok", 0, [[":append", "x", 1], [":r", "y", []]], 2),
        op("ok", 1, [[":append", "y", 1], [":r", "x", []]], 3),
        op("invoke", 2, [[":r", "x", None], [":r", "y", None]], 4),
        op("ok", 2, [[":r", "x", [1]], [":r", "y", [1]]], 5),
    ]
    p = tmp_path / "h.json"
    p.write_text(json.dumps(hist))
    r = checker.check(p, "serializable")
    assert r.history["format"] == "list-append"
    assert set(r.anomalies) == {"G2-item"}
    text = r.anomalies["G2-item"]["examples"][0]["text"]
    assert "ending in the empty list" in text and "appended the next element 1" in text
    assert checker.check(p, "snapshot-isolation").verdict == "valid"


@pytest.mark.parametrize("value,anomaly", [
    ([["r", "x", [1]]], "G1a"),  # read the failed append
    ([["r", "x", [3, 2]]], "incompatible-order"),
    ([["r", "x", [7]]], "garbage-read"),
])
def test_elle_list_append_non_cycle(value, anomaly):
    ops = [
        {"type": "invoke", "process": 0, "value": [["append", "x", 1]]},
        {"type": "fail", "process": 0, "value": [["append", "x", 1]]},
        {"type": "invoke", "process": 1, "value": [["append", "x", 2]]},
        {"type": "ok", "process": 1, "value": [["append", "x", 2]]},
        {"type": "invoke", "process": 2, "value": [["r", "x", None]]},
        {"type": "ok", "process": 2, "value": [["r", "x", [2]]]},
        {"type": "invoke", "process": 3, "value": [["r", "x", None]]},
        {"type": "ok", "process": 3, "value": value},
    ]
    assert anomaly in checker.check(ops, "serializable").anomalies
    ops[-1]["value"] = [["r", "x", [2]]]
    assert checker.check(ops, "serializable").anomalies == {}


def test_elle_internal():
    ops = [{"type": "invoke", "process": 0, "value": [["append", "x", 3], ["r", "x", None]]},
           {"type": "ok", "process": 0, "value": [["append", "x", 3], ["r", "x", [1]]]},
           {"type": "invoke", "process": 1, "value": [["append", "x", 1]]},
           {"type": "ok", "process": 1, "value": [["append", "x", 1]]}]
    assert "internal" in checker.check(ops, "snapshot-isolation").anomalies
    ops[1]["value"][1][2] = [1, 3]
    assert "internal" not in checker.check(ops, "snapshot-isolation").anomalies


# ---------------------------------------------------------------- the command


def test_cli_text_exit_codes_and_levels():
    res = run(RC, "--max-examples", "1")
    assert res.exit_code == 0, res.output
    assert "lost update" in res.output and "allowed" in res.output and "VALID" in res.output
    res = run(RC, "--isolation", "REPEATABLE READ", "--max-examples", "1")
    assert res.exit_code == 1
    # the run's READ COMMITTED allows a lost update: forbidden by the model asked for, no bug
    assert "FORBIDDEN at snapshot-isolation; allowed at READ COMMITTED" in res.output
    assert "harness bug" not in res.output and "a contradiction!" in res.output


def test_cli_json(tmp_path):
    res = run(RC, "--format", "json", "--model", "serializable", "--max-examples", "2")
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["model"] == "serializable" and data["verdict"] == "invalid"
    assert data["counts"]["lost update"] == data["anomalies"]["lost update"]["count"]
    assert len(data["anomalies"]["G-single"]["examples"]) <= 2
    assert {"forbidden", "allowed", "unknown", "models_ruled_out", "stats"} <= set(data)


def test_cli_plots(tmp_path):
    res = run(RC, "--plots", tmp_path / "plots", "--max-examples", "1")
    assert res.exit_code == 0
    dots = sorted(p.name for p in (tmp_path / "plots").glob("*.dot"))
    assert "G-single-1.dot" in dots
    assert (tmp_path / "plots" / "G-single-1.dot").read_text().startswith("digraph")


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("not json\n", "neither a txlab history"),
    ('{"x": 1}\n', "unrecognised first record"),
    ('{"type": "txn", "id": 1}\n', "bad.jsonl:1: outcome must be"),
    ('[{"type": "ok", "process": 0, "value": [["frob", "x", 1]]}]', "bad micro-op"),
])
def test_cli_bad_file_is_a_usage_error(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    res = CliRunner().invoke(cli, ["check", str(p)])
    assert res.exit_code == 2
    assert message in res.output


def test_cli_missing_file_and_bad_options(tmp_path):
    res = CliRunner().invoke(cli, ["check", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = CliRunner().invoke(cli, ["check", str(RC), "--model", "acid"])
    assert res.exit_code == 2 and "unknown model" in res.output
    res = CliRunner().invoke(cli, ["check", str(RC), "-m", "serializable", "-i", "rr"])
    assert res.exit_code == 2
