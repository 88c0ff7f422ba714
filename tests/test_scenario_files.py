"""Scenarios written by users: the worked example runs, broken files get clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "page_views.py"


def test_worked_example_loses_visits_with_read_then_write(txlab):
    r = txlab("run", str(EXAMPLE), "-s", "read-then-write", "--think-ms", "10", "-n", "80",
              "--format", "json")
    rep = json.loads(r.stdout)
    assert r.exit_code == 1 and rep["invariants"][0]["holds"] is False
    assert rep["anomalies"][0]["kind"] == "lost update"


def test_worked_example_counts_every_visit_with_increment(txlab):
    r = txlab("run", str(EXAMPLE), "-s", "increment", "--think-ms", "2", "-n", "80",
              "--format", "json")
    rep = json.loads(r.stdout)
    assert r.exit_code == 0 and rep["invariants"][0]["holds"] is True
    assert rep["anomalies"] == []


def test_scenario_path_finds_by_name(txlab):
    r = txlab("run", "page-views", "--scenario-path", str(EXAMPLE.parent), "-s", "increment", "-n", "10")
    assert r.exit_code == 0
    listed = txlab("list", "--scenario-path", str(EXAMPLE.parent))
    assert "page-views" in listed.stdout and "bank-transfer" in listed.stdout


@pytest.mark.parametrize("argv", [("list",), ("describe", "bank-transfer"),
                                  ("run", "bank-transfer", "-n", "5"),
                                  ("run", str(EXAMPLE), "-n", "5"),
                                  ("matrix", "bank-transfer", "--dsn", "postgresql://nowhere")])
def test_a_scenario_path_that_is_not_there_is_a_usage_error(txlab, tmp_path, argv):
    # it was ignored: `list` printed the built-ins and `run` ran, exit 0
    missing = tmp_path / "no-such-folder"
    r = txlab(*argv, "--scenario-path", str(missing))  # refused before any connection
    assert r.exit_code == 2, r.output
    assert f"--scenario-path {missing}: no such folder" in " ".join(r.output.split())


def test_a_scenario_path_that_is_a_file_points_at_running_the_file(txlab):
    r = txlab("list", "--scenario-path", str(EXAMPLE))
    assert r.exit_code == 2, r.output
    said = " ".join(r.output.split())
    assert f"--scenario-path {EXAMPLE}: is a file, not a folder of scenario files" in said
    assert f"`txlab run {EXAMPLE}`" in said


def test_txlab_scenario_path_entries_must_exist_too(txlab, tmp_path, monkeypatch):
    missing = tmp_path / "gone"
    monkeypatch.setenv("TXLAB_SCENARIO_PATH", f"{EXAMPLE.parent}{os.pathsep}{missing}")
    r = txlab("list")
    assert r.exit_code == 2, r.output
    assert f"TXLAB_SCENARIO_PATH names {missing}: no such folder" in " ".join(r.output.split())
    monkeypatch.setenv("TXLAB_SCENARIO_PATH", f"{EXAMPLE.parent}{os.pathsep}{os.pathsep}")
    r = txlab("list")  # empty entries are skipped, as in PATH
    assert r.exit_code == 0 and "page-views" in r.stdout


BROKEN = {
    "syntax.py": ("def oops(:\n", "syntax.py:1: syntax error"),
    "raises.py": ("import txlab\nraise RuntimeError('boom')\n", "RuntimeError: boom"),
    "empty.py": ("x = 1\n", "defines no SCENARIO"),
    "badsetup.py": (
        "from txlab.scenario import *\n"
        "def setup(s): s.execute('CREATE TABLE t (id int')\n"
        "def body(tx): pass\n"
        "SCENARIO = Scenario('bad', 's', 't', 'd', (), setup, (Strategy('x', body, 'h'),), ())\n",
        "setup failed: syntax error",
    ),
    "badbody.py": (
        "from txlab.scenario import *\n"
        "def setup(s): pass\n"
        "def body(tx):\n    return 1 / 0\n"
        "SCENARIO = Scenario('bad', 's', 't', 'd', (), setup, (Strategy('x', body, 'h'),), ())\n",
        "badbody.py:4: strategy 'x' raised ZeroDivisionError",
    ),
}


def test_broken_scenario_files_exit_2_naming_the_file(txlab, tmp_path):
    for name, (source, message) in BROKEN.items():
        path = tmp_path / name
        path.write_text(source)
        r = txlab("run", str(path), "-n", "5")
        assert r.exit_code == 2, (name, r.stdout, r.stderr)
        assert name in r.stderr and message in r.stderr, (name, r.stderr)
        assert "Traceback" not in r.stderr


def test_a_strategy_error_names_its_line_when_the_file_is_given_relative(txlab, tmp_path,
                                                                         monkeypatch):
    # `txlab run badbody.py` (relative) said only "badbody.py: strategy 'x' raised ...":
    # the file as given did not equal the file as loaded, so the line was lost.
    (tmp_path / "badbody.py").write_text(BROKEN["badbody.py"][0])
    monkeypatch.chdir(tmp_path)
    r = txlab("run", "badbody.py", "-n", "5")
    assert r.exit_code == 2 and "badbody.py:4: strategy 'x' raised" in r.stderr, r.stderr


def test_property_testing_example_passes(pg_dsn):
    """docs/examples/test_coupons.py, run as a user would run it."""
    import os
    import subprocess
    import sys

    example = EXAMPLE.parent / "test_coupons.py"
    env = dict(os.environ, TXLAB_TEST_DSN=pg_dsn)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(example)], capture_output=True, text=True, env=env,
                         cwd=EXAMPLE.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout
