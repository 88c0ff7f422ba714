"""The checker end to end: real runs, their histories, and a doctored one."""

from __future__ import annotations

import json


def _run(txlab, *args):
    r = txlab("run", *args, "--format", "json")
    assert r.stdout.startswith("{"), r.stdout + r.stderr
    return r, json.loads(r.stdout)


def test_naive_read_committed_lost_updates_and_g_single_explained(txlab):
    r, rep = _run(txlab, "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms", "20",
                  "-n", "60", "--seed", "5")
    kinds = {a["kind"]: a for a in rep["anomalies"]}
    assert kinds["lost update"]["count"] > 0 and kinds["lost update"]["status"] == "allowed"
    assert kinds["G-single"]["status"] == "allowed"
    assert "Let:" in kinds["G-single"]["example"] and "a contradiction" in kinds["G-single"]["example"]
    assert rep["check"]["verdict"] == "valid"  # RC allows them: a teaching result, not a bug
    # the table report explains one example
    t = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms", "20",
              "-n", "60", "--seed", "5")
    assert "Example:" in t.stdout and "Then:" in t.stdout and "allowed" in t.stdout


def test_serializable_with_retries_has_no_anomalies(txlab):
    r, rep = _run(txlab, "bank-transfer", "-s", "naive", "-i", "serializable", "--retries", "30",
                  "-p", "accounts=3", "--think-ms", "2", "-n", "80")
    assert r.exit_code == 0
    assert rep["anomalies"] == [] and rep["check"]["verdict"] == "valid"


def test_on_call_write_skew_at_repeatable_read_is_allowed(txlab):
    r, rep = _run(txlab, "on-call", "-s", "naive", "-i", "repeatable-read", "-p", "shifts=2",
                  "-w", "16", "--think-ms", "30", "-n", "16", "--seed", "7")
    kinds = {a["kind"]: a["status"] for a in rep["anomalies"]}
    # each read the other's row (through its predicate) and the other overwrote it
    assert kinds.get("G2-item") == "allowed"
    assert rep["check"]["model"] == "snapshot-isolation" and rep["check"]["forbidden"] == []
    assert r.exit_code == 1  # the invariant is what fails, not the checker


def test_no_check_skips_the_checker(txlab):
    r, rep = _run(txlab, "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms", "10",
                  "-n", "30", "--no-check")
    assert rep["anomalies"] == [] and rep["check"] is None


def test_doctored_aborted_read_is_forbidden(txlab, tmp_path):
    path = tmp_path / "h.jsonl"
    # Tiny balances, large amounts: most atomic transfers credit the lower-id account,
    # then find the debit refused and roll back: failed attempts that wrote.
    _run(txlab, "bank-transfer", "-s", "atomic", "-p", "accounts=3", "-p", "initial_balance=10",
         "-p", "max_amount=100", "-n", "60", "--history", str(path))
    assert txlab("check", str(path)).exit_code == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    txns = [x for x in records if x["type"] == "txn"]
    aborted = next(t for t in txns if t["outcome"] in ("aborted", "declined")
                   and any(op[0] == "w" for op in t["ops"]))
    _, key, version, value = next(op for op in aborted["ops"] if op[0] == "w")
    # append a committed transaction that read exactly what the rolled-back one wrote: G1a
    last = txns[-1]
    records.append({**last, "id": last["id"] + 1, "worker": 99, "txn": 1, "attempt": 0,
                    "invoke_ns": last["complete_ns"] + 1, "complete_ns": last["complete_ns"] + 2,
                    "outcome": "committed", "cause": None, "sqlstate": None, "error": None,
                    "ops": [["r", key, version, value]]})
    doctored = tmp_path / "doctored.jsonl"
    doctored.write_text("".join(json.dumps(x) + "\n" for x in records))
    r = txlab("check", str(doctored), "--format", "json")
    out = json.loads(r.stdout)
    assert r.exit_code == 1
    assert "G1a" in out["forbidden"] and out["verdict"] == "invalid"


def test_judged_by_another_level_the_header_keeps_the_runs_own(txlab, tmp_path):
    # -i picks the model to judge by; the history still ran at READ COMMITTED, and what
    # READ COMMITTED allows is no database bug, whatever SERIALIZABLE forbids
    path = tmp_path / "h.jsonl"
    _run(txlab, "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms", "20",
         "-n", "60", "--seed", "5", "--history", str(path))
    r = txlab("check", str(path), "-i", "serializable")
    assert r.exit_code == 1  # the model forbids what was found
    out = " ".join(r.stdout.split())
    assert "bank-transfer naive at READ COMMITTED" in out
    assert "at serializable" not in out.split("model")[0]
    assert ("judged against serializable, the model of SERIALIZABLE (--isolation); the run used "
            "READ COMMITTED, whose model is read-committed") in out
    assert "lost update #1 (FORBIDDEN at serializable; allowed at READ COMMITTED, the level " \
           "the run used)" in out
    assert "harness bug" not in out
    d = json.loads(txlab("check", str(path), "-i", "serializable", "--format", "json").stdout)
    assert d["isolation"] == "READ COMMITTED" and d["judged_isolation"] == "SERIALIZABLE"
    assert d["model"] == "serializable" and d["run_model"] == "read-committed"
    assert d["own_model"] is False
    assert d["anomalies"]["lost update"]["run_status"] == "allowed"
    own = txlab("check", str(path))  # its own level: no `judged` line, the usual words
    assert own.exit_code == 0 and "judged" not in own.stdout and "at this level" in own.stdout
