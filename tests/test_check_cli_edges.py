"""`txlab check` at its edges: a history too large for memory, one with no transactions."""

import json
from pathlib import Path

from click.testing import CliRunner

from txlab import memory
from txlab.checker import segments
from txlab.cli import cli

DATA = Path(__file__).parent / "data"


def _check(path, monkeypatch, free):
    monkeypatch.setattr(segments, "SEGMENT", 25)
    if free is not None:
        monkeypatch.setattr(memory, "available", lambda: free)
    return CliRunner().invoke(cli, ["check", str(path), "--format", "json"])


def test_check_goes_in_parts_when_the_machine_cannot_hold_the_history_whole(monkeypatch):
    path = DATA / "bank-transfer-naive-ser.jsonl"
    roomy = _check(path, monkeypatch, None)
    tight = _check(path, monkeypatch, 1000)  # 1 KB free
    assert "warning" not in tight.stderr, tight.stderr
    small, whole = json.loads(tight.stdout), json.loads(roomy.stdout)
    assert small["stats"]["parts"] > 1 and "parts" not in whole["stats"]
    assert (tight.exit_code, small["verdict"], small["anomalies"].keys()) == \
        (roomy.exit_code, whole["verdict"], whole["anomalies"].keys())


def test_a_history_that_cannot_be_cut_is_checked_whole_with_a_warning(monkeypatch):
    path = sorted((DATA / "elle").rglob("*.edn"))[0]
    r = _check(path, monkeypatch, 10)
    assert "warning: this history may be too large for this machine's memory" in r.stderr
    assert r.exit_code in (0, 1) and "parts" not in json.loads(r.stdout)["stats"]


def test_a_history_with_no_transactions_says_so(tmp_path):
    # the history of a run killed before its JSON lines were written: run and init only
    lines = (DATA / "bank-transfer-naive-rc.jsonl").read_text().splitlines()[:2]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(cli, ["check", str(path)], env={"COLUMNS": "80"})
    said = " ".join(r.stdout.split())
    assert "no transactions to check: the history holds none" in said
    assert "no anomalies found" not in said
    # nothing was checked: unknown, as Elle's empty transaction graph, never VALID
    assert r.exit_code == 0 and "UNKNOWN: the history holds no transactions" in said, said
    assert "VALID" not in said.replace("UNKNOWN", "")
    full = CliRunner().invoke(cli, ["check", str(DATA / "bank-transfer-naive-rc.jsonl")])
    assert "no transactions to check" not in full.stdout


def test_the_header_says_rolled_back_for_txlab_histories_and_failed_for_elles():
    # txlab's declined and aborted transactions are Elle's :fail; `run` calls them
    # declined or aborted, so `check` does not call them failed in a txlab history.
    mine = CliRunner().invoke(cli, ["check", str(DATA / "bank-transfer-naive-ser.jsonl")])
    head = " ".join(mine.stdout.split()[:12])
    assert "rolled back," in head and "failed," not in head, head
    elle = DATA / "elle" / "elle-cli" / "list-append-anomaly-g-single-item.json"
    theirs = CliRunner().invoke(cli, ["check", str(elle)])
    assert "failed," in " ".join(theirs.stdout.split()[:12]), theirs.stdout[:300]


def test_the_check_page_of_a_txlab_history_says_rolled_back_and_the_model(tmp_path):
    page = tmp_path / "c.html"
    r = CliRunner().invoke(cli, ["check", str(DATA / "bank-transfer-naive-rc.jsonl"), "--html",
                                 str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "<dt>rolled back</dt>" in html and "<dt>failed</dt>" not in html
    assert "<h1>txlab check: valid for the read-committed model</h1>" in html


def test_a_valid_verdict_with_allowed_anomalies_says_they_were_found(tmp_path):
    # A newcomer read the check page's big green VALID, over a run that lost money, as
    # "nothing wrong": the anomalies read committed allows were only in the table below.
    page = tmp_path / "c.html"
    r = CliRunner().invoke(cli, ["check", str(DATA / "bank-transfer-naive-rc.jsonl"),
                                 "--html", str(page)])
    said = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "VALID: no anomaly that read-committed forbids; " in said, said
    assert "kinds that it allows were found (lost update" in said
    assert "the run's invariants say whether it did" in said
    assert "kinds that it allows were found (lost update" in page.read_text()
    # the neighbours: a history with nothing allowed found says VALID alone; an Elle
    # history has no run to point at
    clean = CliRunner().invoke(cli, ["check", str(DATA / "bank-transfer-naive-ser.jsonl")])
    assert clean.stdout.rstrip().endswith("VALID") and "were found" not in clean.stdout
    elle = CliRunner().invoke(cli, ["check", "-m", "read-committed", str(
        DATA / "elle" / "elle-cli" / "list-append-anomaly-g2-item.json")])
    assert "that it allows were found (G2-item" in " ".join(elle.stdout.split()), elle.stdout
    assert "invariants" not in elle.stdout


def test_txlabs_own_json_reports_are_named_not_parsed_as_edn(txlab, pg_dsn, tmp_path):
    # A student ran `txlab run ... --format json -o report.json` (the README's example)
    # and then `txlab check report.json`: "report.json:19: a map needs an even number
    # of forms", as if it were broken EDN. Each of txlab's JSON outputs is now named.
    made = {
        "run": txlab("run", "bank-transfer", "--transactions", "5", "--format", "json"),
        "matrix": txlab("matrix", "bank-transfer", "-s", "atomic", "-i", "rc", "-d", "1",
                        "--format", "json", "--dsn", pg_dsn),
        "demo": txlab("demo", "p4", "-i", "rc", "--format", "json", "--dsn", pg_dsn),
        "check": txlab("check", str(DATA / "bank-transfer-naive-rc.jsonl"), "--format", "json"),
    }
    for what, r in made.items():
        assert r.exit_code in (0, 1), (what, r.output)
        path = tmp_path / f"{what}.json"
        path.write_text(r.stdout)
        out = txlab("check", str(path))
        assert out.exit_code == 2, (what, out.output)
        assert f"this is the {'rows' if what == 'matrix' else 'report'} of `txlab {what}" \
            in " ".join(out.stderr.split()), (what, out.stderr)
        assert "--history FILE" in out.stderr
    # a pretty-printed JSON object of someone else's is not called one of txlab's
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"scenario": "x", "rows": [1, 2]}, indent=2))
    out = txlab("check", str(other))
    assert out.exit_code == 2 and "this is the" not in out.stderr, out.stderr


def test_a_history_without_dependencies_is_unknown_and_a_related_one_valid(tmp_path):
    # Elle's :empty-transaction-graph: transactions that never touch each other give no
    # graph, so finding no cycle there proves nothing; the verdict is unknown, with why
    def ops(*txns):
        out = []
        for i, (p, value) in enumerate(txns):
            out += [{"index": 2 * i, "process": p, "type": "invoke", "value": value},
                    {"index": 2 * i + 1, "process": p, "type": "ok", "value": value}]
        return out

    alone = tmp_path / "alone.json"
    alone.write_text(json.dumps(ops((0, [["r", "x", []]]))))
    apart = tmp_path / "apart.json"  # two keys, no real-time order asked for
    apart.write_text(json.dumps(ops((0, [["append", "x", 1]]), (1, [["append", "y", 1]]))))
    related = tmp_path / "related.json"
    related.write_text(json.dumps(ops((0, [["append", "x", 1]]), (1, [["r", "x", [1]]]))))
    for path, model in ((alone, "strict-serializable"), (apart, "serializable")):
        r = CliRunner().invoke(cli, ["check", str(path), "--model", model, "--format", "json"])
        d = json.loads(r.stdout)
        assert (r.exit_code, d["verdict"], d["empty_graph"]) == (0, "unknown", True), r.output
        text = CliRunner().invoke(cli, ["check", str(path), "--model", model],
                                  env={"COLUMNS": "200"})
        assert "UNKNOWN: no dependency was found between the transactions" in text.stdout
        assert "no dependency between the transactions either" in text.stdout
        assert "verdict unknown: no dependency" in text.stderr
    r = CliRunner().invoke(cli, ["check", str(related), "--model", "serializable",
                                 "--format", "json"])
    d = json.loads(r.stdout)
    assert (r.exit_code, d["verdict"], d["empty_graph"]) == (0, "valid", False), r.output
