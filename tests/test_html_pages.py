"""The HTML pages' data layer, without a browser: the timeline summary (one pass,
bounded), the demo driver's opt-in state after each step, the checker's drawable
component graphs, and the page shell (tests/test_html_browser.py opens the pages)."""

from __future__ import annotations

import json
import re
from random import Random

import pytest

from txlab import checker, stats, timeline
from txlab.history import Attempt, History
from txlab.html import page
from txlab.html import run as run_page
from txlab.interleave import demo, driver, render, transcript
from txlab.interleave import spec as specs


def synthetic(n: int, workers: int = 4, seed: int = 1) -> list[dict]:
    """n attempts: each worker runs back to back; every 7th try of a worker aborts
    (and is retried once), every 11th is declined."""
    rng = Random(seed)
    out = []
    clock = [1_000_000_000 + w * 1000 for w in range(workers)]
    txn = [0] * workers
    i = 0
    while len(out) < n:
        w = i % workers
        i += 1
        txn[w] += 1
        tries = 2 if txn[w] % 7 == 0 else 1
        for attempt in range(tries):
            start = clock[w]
            clock[w] += rng.randrange(200_000, 3_000_000)
            if tries == 2 and attempt == 0:
                outcome, cause, code = "aborted", "40001-concurrent-update", "40001"
            elif txn[w] % 11 == 0:
                outcome, cause, code = "declined", "insufficient funds", None
            else:
                outcome, cause, code = "committed", None, None
            out.append({"type": "txn", "worker": w, "txn": txn[w], "attempt": attempt,
                        "invoke_ns": start, "complete_ns": clock[w], "outcome": outcome,
                        "cause": cause, "sqlstate": code, "error": None,
                        "ops": [["r", f"k:{w}", txn[w], 1], ["w", f"k:{w}", txn[w] + 1, 2]]})
    out.sort(key=lambda r: (r["invoke_ns"], r["worker"]))
    for k, r in enumerate(out, 1):
        r["id"] = k
    return out


def as_attempts(records):
    return [Attempt(r["worker"], r["txn"], r["attempt"], r["invoke_ns"], r["complete_ns"],
                    r["outcome"], r["cause"], r["sqlstate"], r["error"], r["ops"]) for r in records]


def test_small_runs_keep_every_attempt_as_a_mark():
    recs = synthetic(300)
    s = timeline.summarize(iter(recs), max_marks=1000)
    assert s["exact"] and s["attempts"] == len(recs)
    assert sorted(m["id"] for m in s["marks"]) == [r["id"] for r in recs]
    by_class = {c["key"]: c["count"] for c in s["classes"]}
    o = stats.outcomes(as_attempts(recs))
    assert by_class == {"committed": o.committed, "declined": o.declined,
                        "aborted:40001-concurrent-update": o.aborted["40001-concurrent-update"]}
    assert [c["key"] for c in s["classes"]][0] == "committed"


def test_big_runs_are_binned_and_sampled_within_bounds():
    recs = synthetic(5000, workers=6)
    keep = {recs[10]["id"], recs[4000]["id"]}
    s = timeline.summarize(iter(recs), keep_ids=keep, max_marks=200, max_bins=50)
    assert not s["exact"] and s["attempts"] == 5000
    assert len(s["marks"]) == 200 + 2 and keep <= {m["id"] for m in s["marks"]}
    b = s["bins"]
    assert len(b["start_ms"]) <= 50 and len(b["cells"]) <= 50 * 6 * len(s["classes"])
    assert sum(c[3] for c in b["cells"]) == 5000  # the bins add up to the attempts
    assert b["start_ms"] == sorted(b["start_ms"]) and b["end_ms"][-1] == s["duration_ms"]
    # the sample is seeded: the same records give the same marks
    again = timeline.summarize(iter(recs), keep_ids=keep, max_marks=200, max_bins=50)
    assert again["marks"] == s["marks"]


def test_rates_and_latency_agree_with_the_report_statistics():
    recs = synthetic(2000)
    s = timeline.summarize(iter(recs), max_bins=40)
    o = stats.outcomes(as_attempts(recs))
    assert sum(b["n"] for b in s["latency"]) == o.committed
    lat = sorted(stats.committed_latencies_ns(as_attempts(recs)))
    # every latency falls in a bucket whose bounds contain it
    lo, hi = s["latency"][0]["lo_ms"], s["latency"][-1]["hi_ms"]
    assert lo <= lat[0] / 1e6 and lat[-1] / 1e6 <= hi
    b = s["bins"]
    for r in s["rates"]:
        i = [c["key"] for c in s["classes"]].index(r["class"])
        for k, per_s in enumerate(r["per_s"]):
            n = sum(c[3] for c in b["cells"] if c[0] == k and c[2] == i)
            secs = max(b["end_ms"][k] - b["start_ms"][k], 1e-3) / 1000
            assert per_s == pytest.approx(n / secs, abs=0.06)


def test_records_in_completion_order_give_the_same_counts():
    recs = synthetic(1500)
    by_invoke = timeline.summarize(iter(recs))
    by_complete = timeline.summarize(iter(sorted(recs, key=lambda r: r["complete_ns"])))
    assert by_complete["classes"] == by_invoke["classes"]
    assert by_complete["latency"] == by_invoke["latency"]
    assert sum(c[3] for c in by_complete["bins"]["cells"]) == 1500


def test_the_page_data_comes_from_one_pass():
    recs = synthetic(50)
    used = []

    def once():
        used.append(1)
        yield from recs

    report = {"seed": 1, "anomalies": [], "outcomes": {"aborted": {"40001-concurrent-update": 3}}}
    data = run_page.build(report, once())
    assert used == [1] and data["timeline"]["attempts"] == 50
    assert data["causes"]["40001-concurrent-update"]["sqlstate"] == "40001"


def test_story_and_next_render_at_the_top_when_present():
    report = {"scenario": "bank-transfer", "strategy": "naive", "isolation": "read-committed",
              "verdict": "VIOLATED", "seed": 1, "outcomes": {}, "invariants": [],
              "anomalies": [], "check": None, "latency_ms": {},
              "story": ["Money vanished: 8 workers moved money at once.",
                        "Lost updates did it (`txlab explain lost-update`)."],
              "next": [{"command": "txlab run bank-transfer -i serializable",
                        "why": "see SERIALIZABLE refuse it"}]}
    html = run_page.page(report, iter(synthetic(20)))
    story = html.index("Money vanished: 8 workers moved money at once.")
    assert story < html.index('id="h-tl"')  # above the timeline
    assert "txlab run bank-transfer -i serializable</code> — see SERIALIZABLE refuse it" in html
    without = run_page.page({k: v for k, v in report.items() if k not in ("story", "next")},
                            iter(synthetic(20)))
    assert 'class="story"' not in without
    # the level as the text report names it, in the title and heading too
    assert "<title>txlab run: bank-transfer / naive / READ COMMITTED</title>" in html
    assert "naive / READ COMMITTED</h1>" in html and "read-committed</h1>" not in html
    # a command in the story is code on the page, not text between backticks
    shown = html[html.index('<section class="story"'):]
    shown = shown[:shown.index("</section>")]
    assert "(<code>txlab explain lost-update</code>)" in shown and "`" not in shown


def test_the_run_page_says_why_a_check_is_unknown_and_does_not_call_it_clean():
    base = {"scenario": "bank-transfer", "strategy": "atomic", "isolation": "read-committed",
            "verdict": "HOLDS", "seed": 1, "outcomes": {}, "invariants": [], "anomalies": [],
            "latency_ms": {}}
    check = {"model": "read-committed", "verdict": "valid", "forbidden": [], "unknown": [],
             "parts": 1, "empty_graph": False}

    def section(c):
        html = run_page.page(base | {"check": c}, iter(synthetic(20)))
        shown = html[html.index('id="h-anom"'):]
        return shown[:shown.index("</section>")]

    clean = section(check)
    assert "model: valid)" in clean and "found no anomaly in the history" in clean
    empty = section(check | {"verdict": "unknown", "empty_graph": True})
    assert "model: unknown)" in empty and "no cycle to look for" in empty
    assert "found no anomaly in the history" not in empty
    timed = section(check | {"verdict": "unknown", "unknown": ["G2-item"]})
    assert "timed out for G2-item" in timed and "may have been missed" in timed
    assert "timed out" not in clean and "no cycle to look for" not in clean


def test_embedded_json_cannot_close_its_script_element():
    data = {"text": "</script><script>alert(1)</script> <!-- x"}
    html = page.document("t", "<p>x</p>", data)
    body = re.search(r'id="txlab-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(body) == data and "</script" not in body.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched


# ---------------------------------------------------------------- demo states (database)


def test_step_states_are_the_committed_state_after_each_step_and_leave_transcripts_alone(pg_dsn):
    path = demo.catalog()["p4"]
    golden = (transcript.render(driver.run_spec(specs.load(path), pg_dsn,
                                                isolation_sql="READ COMMITTED")))
    res = demo.run_demo(str(path), pg_dsn, "read-committed", step_states=True)
    run = res.levels[0].run.runs[0]
    assert transcript.render(res.levels[0].run) == golden
    assert all(len(st.tables) == 1 and st.tables[0][0] == "" for st in run.states)  # `show`
    values = [dict(st.tables[0][1].rows)["1"] for st in run.states]
    # before, s1a, s2a, s1b, s2b (waits), s1c commits 70, s2b resumed and s2c commits 50
    assert values == ["100", "100", "100", "100", "100", "70", "50"]
    assert [st.name for st in run.states] == [None, *run.permutation]
    data = render.to_json(res)["levels"][0]["permutations"][0]
    assert data["states"][-1]["tables"] == data["final_states"]
    plain = demo.run_demo(str(path), pg_dsn, "read-committed")
    assert plain.levels[0].run.runs[0].states == []
    assert "states" not in render.to_json(plain)["levels"][0]["permutations"][0]


def _page_side_rows(html: str) -> list[list[str]]:
    """The step rows of a demo page's side-by-side table: label, then a cell per level."""
    from html import unescape

    table = html[html.index('<table class="side">'):]
    table = table[:table.index("</table>")]
    rows = []
    for row in re.findall(r"<tr><th scope=\"row\">(\d+\..*?)</tr>", table):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", "<th>" + row)
        rows.append([" ".join(unescape(re.sub(r"<[^>]+>", "", c)).split()) for c in cells])
    return rows


def _terminal_side_rows(text: str) -> list[list[str]]:
    """The same rows of the terminal's side-by-side table (wide enough not to wrap)."""
    table = text[text.index("Side by side"):text.index("final state")]
    return [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()
            if re.match(r"\d+\. ", line)]


def test_the_pages_side_by_side_says_what_the_terminals_says_row_for_row(pg_dsn):
    # The page's table was built from the players' rows (execution order): s2b's row
    # said `waits` and its UPDATE 1 moved to s1c's row (`COMMIT, then s2b completes,
    # then UPDATE 1`), while the terminal and docs/teaching.md read row 4 across.
    from txlab import term as terms
    from txlab.html import demo as demo_html

    res = demo.run_demo(str(demo.catalog()["p4"]), pg_dsn, "all", step_states=True)
    page_rows = _page_side_rows(demo_html.page(render.to_json(res)))
    term_rows = _terminal_side_rows(render.render(res, "pretty", terms.plain(200)))
    assert page_rows == term_rows, (page_rows, term_rows)
    assert [r[0] for r in page_rows] == [
        "1. s1a: SELECT * FROM test WHERE id = 1;", "2. s2a: SELECT * FROM test WHERE id = 1;",
        "3. s1b: UPDATE test SET value = 70 WHERE id = 1;",
        "4. s2b: UPDATE test SET value = 50 WHERE id = 1;", "5. s1c: COMMIT;", "6. s2c: COMMIT;"]
    assert page_rows[3][1:] == ["waits, then UPDATE 1"] * 2 + ["waits, then ERROR 40001"] * 2
    assert page_rows[4][1:] == ["COMMIT"] * 4


def test_a_state_read_blocked_by_a_table_lock_gives_up_and_says_why(pg_dsn):
    text = ("setup { CREATE TABLE t (id int); INSERT INTO t VALUES (1); }\n"
            "teardown { DROP TABLE t; }\n"
            "session s1\nstep lock { BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; }\n"
            "step done { COMMIT; }\n"
            "permutation lock done\n")
    spec = specs.parse(text)
    plain = transcript.render(driver.run_spec(spec, pg_dsn))
    run = driver.run_spec(spec, pg_dsn, state_queries=(("t", "SELECT * FROM t"),))
    assert transcript.render(run) == plain
    states = run.runs[0].states
    assert [s.step for s in states] == [0, 1, 2]
    assert states[0].tables[0][1].rows == (("1",),) and states[2].tables[0][1].rows == (("1",),)
    label, result, error = states[1].tables[0]
    assert label == "t" and result is None and "lock timeout" in error


# ---------------------------------------------------------------- checker graphs


def test_the_checker_describes_component_graphs_only_when_asked():
    # T1 reads x v1 and y v2; T2 wrote y v2 and then x v2: rw T1 -> T2, wr T2 -> T1 (G-single)
    hist = History({"isolation": "READ COMMITTED"}, [("w", "x", 1, 0), ("w", "y", 1, 0)], [
        Attempt(1, 1, 0, 1, 11, "committed", None, None, None, [("r", "x", 1, 0), ("r", "y", 2, 5)]),
        Attempt(2, 1, 0, 2, 12, "committed", None, None, None, [("w", "y", 2, 5), ("w", "x", 2, 7)]),
    ])
    assert "components" not in checker.check(hist).to_dict()
    drawn = checker.check(hist, graphs=True).to_dict()
    assert list(drawn["anomalies"]) == ["G-single"]
    comps = drawn["components"]
    assert len(comps) == 1 and comps[0]["complete"] and comps[0]["size"] == 2
    assert comps[0]["examples"] == ["G-single #1"]
    assert comps[0]["in_examples"] == ["T1", "T2"]
    assert {t["name"] for t in comps[0]["transactions"]} == {"T1", "T2"}
    edges = {(e["from"], e["to"], e["edge"], e["key"]) for e in comps[0]["edges"]}
    assert edges == {("T1", "T2", "rw", "x"), ("T2", "T1", "wr", "y")}
    cycle = drawn["anomalies"]["G-single"]["examples"][0]
    assert {(s["from"], s["to"], s["edge"], s["key"]) for s in cycle["steps"]} == edges
    assert all(e["because"] for e in comps[0]["edges"])


@pytest.mark.parametrize("argv", [["run", "bank-transfer"], ["demo", "p4"], ["matrix"],
                                  ["check", "h.jsonl"]])
def test_an_html_file_in_a_missing_folder_is_refused_before_any_work(argv, tmp_path):
    from click.testing import CliRunner

    from txlab.cli import cli

    target = tmp_path / "no-such-folder" / "page.html"
    res = CliRunner().invoke(cli, [*argv, "--html", str(target), "--dsn", "postgresql://nowhere"]
                             if argv[0] != "check" else [*argv, "--html", str(target)])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())  # error lines wrap at the width
    assert f"--html {target}: the folder {target.parent} does not exist" in said


@pytest.mark.parametrize("argv", [["run", "bank-transfer"], ["demo", "p4"], ["matrix"],
                                  ["check", "h.jsonl"]])
def test_an_html_file_under_a_file_says_it_is_not_a_folder(argv, tmp_path):
    # as -o and --history do (one check, txlab.paths): the folder exists, it is a file
    from click.testing import CliRunner

    from txlab.cli import cli

    history = tmp_path / "h.jsonl"
    history.write_text("{}\n")
    target = history / "x.html"
    res = CliRunner().invoke(cli, [*argv, "--html", str(target), "--dsn", "postgresql://nowhere"]
                             if argv[0] != "check" else [*argv, "--html", str(target)])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())  # error lines wrap at the width
    assert f"--html {target}: {history} is not a folder" in said and "no such folder" not in said


def test_check_page_of_an_elle_history_draws_its_cycle_with_processes():
    from txlab.html import check as check_page

    def op(t, p, value, i):
        return {"type": t, "f": "txn", "process": p, "time": i, "index": i, "value": value}

    hist = [op("invoke", 0, [["append", "x", 1], ["r", "y", None]], 0),
            op("invoke", 1, [["append", "y", 1], ["r", "x", None]], 1),
            op("ok", 0, [["append", "x", 1], ["r", "y", []]], 2),
            op("ok", 1, [["append", "y", 1], ["r", "x", []]], 3),
            op("invoke", 2, [["r", "x", None], ["r", "y", None]], 4),
            op("ok", 2, [["r", "x", [1]], ["r", "y", [1]]], 5)]
    result = checker.check(hist, "serializable", graphs=True)
    html = check_page.page(result.to_dict())
    assert result.verdict == "invalid" and "G2-item forbidden at serializable" in html
    assert html.count('<g class="edge" data-edge="rw"') == 4  # the example and its component
    assert "process 0</text>" in html and "worker 0" not in html
    # the heading says for which model; Elle's :fail stays "failed" in an Elle history
    assert "<h1>txlab check: invalid for the serializable model</h1>" in html
    assert "<dt>failed</dt>" in html and "<dt>rolled back</dt>" not in html


@pytest.mark.parametrize("option", ["--html", "-o"])
@pytest.mark.parametrize("argv", [["run", "bank-transfer"], ["demo", "p4"], ["matrix"],
                                  ["check", "h.jsonl"]])
def test_an_output_that_ends_in_a_slash_is_refused_not_written_as_a_file(argv, option, tmp_path,
                                                                          monkeypatch):
    # `--html newdir/` wrote a file called newdir (Path() drops the slash)
    from click.testing import CliRunner

    from txlab.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "h.jsonl").write_text("{}\n")
    res = CliRunner().invoke(cli, [*argv, option, "newdir/", "--dsn", "postgresql://nowhere"]
                             if argv[0] != "check" else [*argv, option, "newdir/"])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    label = {"-o": "--output"}.get(option, option)
    assert f"{label} newdir/: ends in a slash, so it names a folder" in said
    assert not (tmp_path / "newdir").exists()
