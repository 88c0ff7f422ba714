"""The commands a report or `txlab describe` suggests run, copied as printed: the same
scenario (as it was reached: a file's path, or a name and --scenario-path), the same
database (a --dsn as "$TXLAB_DSN", never its URL), the same run length and options,
except what a suggestion changes on purpose."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from txlab import names, story
from txlab.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def report(r) -> dict:
    assert r.stdout.startswith("{"), r.stdout + r.stderr
    return json.loads(r.stdout)


def pasted(command: str, dsn: str, cwd: Path) -> subprocess.CompletedProcess:
    """`command` as a user pastes it into a shell whose TXLAB_DSN is the run's --dsn
    (`txlab` being this checkout's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    env.update(TXLAB_DSN=dsn, TXLAB_PY=sys.executable)
    script = f'txlab() {{ "$TXLAB_PY" -m txlab "$@"; }}\n{command} --format json\n'
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def try_next_block(text: str) -> str:
    """The text report's lines from "Try next:" to the next blank line."""
    return text[text.index("Try next:\n") + len("Try next:\n"):].split("\n\n")[0]


def test_a_scenario_from_scenario_path_is_suggested_with_it_and_its_database(
        pg_dsn, schema, monkeypatch, tmp_path):
    # `txlab run page-views --scenario-path docs/examples ...` suggested `txlab run
    # page-views ...`: unknown scenario (exit 2), and without -n, --dsn and --schema
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    args = ("run", "page-views", "--scenario-path", "docs/examples", "-s", "increment",
            "-n", "30", "--think-ms", "2", "--dsn", pg_dsn, "--schema", schema)
    rep = report(invoke(*args, "--format", "json"))
    assert rep["verdict"] == "HOLDS" and rep["next"], rep["next"]
    # copied as printed, it runs (exit 0 or 1: the contrast strategy may lose visits)
    done = pasted(rep["next"][0]["command"], pg_dsn, ROOT)
    assert done.returncode in (0, 1), done.stderr
    for n in rep["next"]:
        assert n["command"].startswith("txlab run page-views --scenario-path docs/examples "), n
        for words in ("-n 30", "--think-ms 2", '--dsn "$TXLAB_DSN"', f"--schema {schema}"):
            assert words in n["command"], (words, n)
    assert pg_dsn not in json.dumps(rep["next"]) + (rep["next_note"] or "")
    assert '`--dsn "$TXLAB_DSN"` stands for this run\'s --dsn' in rep["next_note"]
    assert rep["rerun"]["scenario_path"] == ["docs/examples"]
    assert rep["rerun"]["dsn_option"] is True and rep["rerun"]["transactions"] == 30
    again = json.loads(done.stdout)
    assert (again["scenario"], again["strategy"]) == ("page-views", "read-then-write")
    assert sum([again["outcomes"]["committed"], again["outcomes"]["declined"],
                again["outcomes"]["failed"]]) == 30
    # the text view at 80 columns: the same commands, lines continued with a backslash
    page = tmp_path / "run.html"
    text = invoke(*args, "--html", str(page), env={"COLUMNS": "80"}).stdout
    assert "stands for this run&#x27;s --dsn" in page.read_text() or \
        "stands for this run's --dsn" in page.read_text()
    block = try_next_block(text)
    assert max(len(line) for line in block.splitlines()) <= 80, block
    assert "stands for this run's --dsn" in " ".join(block.split())
    first = []
    for line in block.splitlines():
        first.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    assert shlex.split(" ".join(first)) == shlex.split(rep["next"][0]["command"]), block


def test_describe_of_a_scenario_file_suggests_the_file_not_its_name(tmp_path, monkeypatch):
    # `txlab describe seats.py` said "`txlab matrix concert` measures it": unknown scenario
    scenario = (ROOT / "docs/examples/page_views.py").read_text()
    (tmp_path / "seats.py").write_text(scenario.replace('name="page-views"', 'name="concert"'))
    monkeypatch.chdir(tmp_path)
    flat = " ".join(invoke("describe", "seats.py", env={"COLUMNS": "80"}).stdout.split())
    assert "`txlab matrix seats.py` measures it" in flat, flat
    argv = shlex.split(flat.split("`txlab matrix ")[1].split("`")[0])
    p = cli.commands["matrix"].make_context("matrix", argv).params
    assert [names.scenario(n, p["scenario_path"]).name for n in p["names"]] == ["concert"]


def test_describe_of_a_scenario_by_name_from_scenario_path_keeps_the_folder(monkeypatch):
    monkeypatch.chdir(ROOT)
    out = invoke("describe", "page-views", "--scenario-path", "docs/examples",
                 env={"COLUMNS": "60"}).stdout
    # whole on one line, to copy
    assert "\n`txlab matrix page-views --scenario-path docs/examples`\n" in out, out
    # the neighbour: a built-in scenario by name is named alone
    flat = " ".join(invoke("describe", "bank-transfer").stdout.split())
    assert "`txlab matrix bank-transfer` measures it" in flat


def test_a_scenario_file_run_keeps_its_path_length_and_options(pg_dsn, schema, tmp_path):
    path = tmp_path / "my views.py"  # a space: the suggestion quotes it
    path.write_text((ROOT / "docs/examples/page_views.py").read_text())
    rep = report(invoke("run", str(path), "-s", "increment", "-d", "0.5", "-p", "pages=2",
                        "--lock-timeout-ms", "500", "--no-check", "--format", "json",
                        "--dsn", pg_dsn, "--schema", schema))
    (contrast,) = rep["next"]
    argv = shlex.split(contrast["command"])
    assert argv[:3] == ["txlab", "run", str(path)], argv
    for words in (["-d", "0.5"], ["-p", "pages=2"], ["--lock-timeout-ms", "500"],
                  ["--no-check"], ["--dsn", "$TXLAB_DSN"], ["--schema", schema]):
        assert " ".join(words) in " ".join(argv), (words, argv)
    p = cli.commands["run"].make_context("run", argv[2:]).params
    assert (p["duration"], p["transactions"], p["lock_timeout_ms"], p["check"]) == \
        (0.5, None, 500, False)
    assert rep["rerun"]["scenario_path"] == [] and rep["rerun"]["duration_s"] == 0.5


def test_an_interrupted_run_is_suggested_again_with_its_length(pg_dsn, schema):
    # after Ctrl-C, "run it to the end" suggested the command without its -n or -d
    rep = report(invoke("run", "bank-transfer", "-s", "atomic", "-n", "40", "--format",
                        "json", "--dsn", pg_dsn, "--schema", schema))
    rep["interrupted"], rep["load_whole"] = True, False
    told = story.tell(rep)
    assert told["next"][0]["why"] == "the run was interrupted; run it to the end"
    again = shlex.split(told["next"][0]["command"])
    assert again[:3] == ["txlab", "run", "bank-transfer"], again
    p = cli.commands["run"].make_context("run", again[2:]).params
    assert (p["strategy"], p["transactions"], p["schema"], p["dsn"]) == \
        ("atomic", 40, schema, "$TXLAB_DSN")


def test_without_no_check_is_the_one_suggestion_that_drops_it(pg_dsn, schema):
    rep = report(invoke("run", "bank-transfer", "-s", "naive", "-p", "accounts=3", "--think-ms",
                        "20", "-n", "80", "--no-check", "--format", "json", "--dsn", pg_dsn,
                        "--schema", schema))
    assert rep["verdict"] == "VIOLATED"
    checked = [n for n in rep["next"] if "without --no-check" in n["why"]]
    assert checked and "--no-check" not in checked[0]["command"]
    assert all("--no-check" in n["command"] for n in rep["next"] if n not in checked)


def test_a_built_in_scenario_on_the_default_database_keeps_short_suggestions(pg_dsn):
    # the neighbour: the database from TXLAB_DSN (a copied command sees it too), the
    # default schema: nothing to add but the run's length
    env = {"TXLAB_DSN": pg_dsn, "DATABASE_URL": None}
    rep = report(invoke("run", "bank-transfer", "-s", "atomic", "-n", "20", "--format", "json",
                        env=env))
    (contrast,) = rep["next"]
    assert contrast["command"] == "txlab run bank-transfer -n 20", contrast
    assert rep["next_note"] is None and rep["rerun"]["dsn_option"] is False
    text = invoke("run", "bank-transfer", "-s", "atomic", "-n", "20",
                  env={**env, "COLUMNS": "80"}).stdout
    assert try_next_block(text).splitlines()[0] == "  txlab run bank-transfer -n 20"
    # at the default length, as the run it came from: the name alone
    short = copy.deepcopy(rep)
    short["rerun"] |= {"transactions": None, "duration_s": 10.0}
    assert story.tell(short)["next"][0]["command"] == "txlab run bank-transfer"
    # a report from before `rerun` existed still gets its commands
    del short["rerun"]
    assert story.tell(short)["next"][0]["command"] == "txlab run bank-transfer"


@pytest.mark.parametrize("extra, hint", [
    (("--scenario-path", "docs/examples"),
     "txlab run page-views --scenario-path docs/examples -s increment"),
])
def test_a_strategy_named_as_a_scenario_points_with_its_folder(extra, hint, monkeypatch):
    monkeypatch.chdir(ROOT)
    r = invoke("run", "increment", *extra)
    assert r.exit_code == 2 and hint in " ".join(r.stderr.split()), r.stderr
