"""`txlab demo`: the catalog matrix against the verified reference, formats, usage errors."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from txlab.cli import cli

GOLDEN = Path(__file__).parent / "golden"

# The verified matrix (shared reference, section 1) plus the extras, written out
# here rather than read from the specs' metadata, so a drifting spec fails.
# a = anomaly, w = prevented by waiting, x = prevented by abort, o = no anomaly;
# columns: READ UNCOMMITTED, READ COMMITTED, REPEATABLE READ, SERIALIZABLE.
REFERENCE = {
    "g0": "wwxx", "g1a": "oooo", "g1b": "oooo", "g1c": "ooox", "otv": "wwxx",
    "pmp": "aaoo", "pmp-write": "aaxx", "p4": "aaxx", "g-single": "aaoo",
    "g-single-predicate": "aaoo", "g-single-write-predicate": "aaxx",
    "g2-item": "aaax", "g2": "aaax", "g2-three": "aaax",
    "read-only-anomaly": "aaax", "ssi-false-positive": "ooox", "rc-reevaluation": "wwxx",
    "deadlock": "xxxx", "nowait": "xxxx", "skip-locked": "oooo", "lock-timeout": "xxxx",
}
CODE = {"a": "anomaly", "w": "wait", "x": "abort", "o": "ok"}


@pytest.fixture
def demo_cmd(pg_dsn, monkeypatch):
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def invoke(*args, dsn=True, env=None):
        argv = ["demo", *args] + (["--dsn", pg_dsn] if dsn else [])
        return CliRunner().invoke(cli, argv, catch_exceptions=False, env=env)

    return invoke


def test_the_matrix_matches_the_verified_reference(demo_cmd):
    result = demo_cmd("--all", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["server_version"].startswith("PostgreSQL ")
    assert data["mismatches"] == []
    got = {row["demo"]: "".join(next(k for k, v in CODE.items() if v == row["cells"][lvl]["outcome"])
                                for lvl in data["levels"]) for row in data["rows"]}
    assert got == REFERENCE


def test_the_matrix_prints_a_table_with_titles_that_fits_80_columns(demo_cmd):
    result = demo_cmd("--all", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    assert lines[0].startswith("txlab demo matrix on PostgreSQL ")
    assert "READ" in lines[2] and "SERIALIZABLE" in lines[3]
    p4 = next(ln for ln in lines if ln.startswith("p4 "))
    assert p4.split() == ["p4", "P4", "lost", "update", "ANOMALY", "ANOMALY", "prevented",
                          "prevented"]  # (wait, 40001) wraps below
    dl = lines.index(next(ln for ln in lines if ln.startswith("deadlock ")))
    assert lines[dl].split()[-4:] == ["deadlock"] * 4 and lines[dl + 1].split()[-4:] == ["(wait,"] * 4
    fp = next(ln for ln in lines if ln.startswith("ssi-false-positive "))
    assert fp.split()[-4:] == ["committed", "committed", "committed", "false"]
    assert lines[-1].startswith("All 84 cells match")


def test_pretty_output_shows_the_timeline_final_state_and_verdicts(demo_cmd):
    result = demo_cmd("p4", "--isolation", "all", "--timelines")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Isolation: READ COMMITTED" in out and "Isolation: SERIALIZABLE" in out
    assert "WAITING for s1 …" in out
    assert "… s2b completes (it was waiting)" in out
    assert "ERROR 40001: could not serialize" in out
    assert out.count("Final state") == 4
    flat = " ".join(out.split())
    lost = "ANOMALY: P4 (lost update): T2 overwrote T1's committed write"
    assert flat.count(lost) == 4  # two timelines, two lines of the Verdicts block
    prevented = ("PREVENTED: P4 (lost update) did not occur; s1 committed; s2 waited for s1 at "
                 "s2b, then aborted with 40001 (serialization failure: concurrent update)")
    assert flat.count(prevented) == 4
    verdicts = out[out.index("Verdicts"):].splitlines()[1:]
    assert [ln.split()[0] for ln in verdicts if ln[:1] != " "] == [
        "READ", "READ", "REPEATABLE", "SERIALIZABLE"]


def test_all_levels_print_the_side_by_side_table_alone(demo_cmd):
    out = demo_cmd("p4", "--isolation", "all", env={"COLUMNS": "200"}).output
    assert "Isolation:" not in out and "Final state" not in out  # no timelines by default
    table = out[out.index("Side by side"):out.index("Verdicts")].splitlines()
    assert table[1].split() == ["step", "READ", "UNCOMMITTED", "READ", "COMMITTED",
                                "REPEATABLE", "READ", "SERIALIZABLE"]
    row = {ln.split(":")[0]: ln for ln in table if ln[:2] in ("4.", "6.")}
    assert row["4. s2b"].count("waits, then UPDATE 1") == 2  # RU, RC: the overwrite
    assert row["4. s2b"].count("waits, then ERROR") == 2  # RR, SER: first updater wins
    assert row["6. s2c"].split()[-4:] == ["ROLLBACK", "(failed)", "ROLLBACK", "(failed)"]
    final = next(ln for ln in table if ln.startswith("final state")).split()[2:]
    assert final == ["1|50;", "2|20", "1|50;", "2|20", "1|70;", "2|20", "1|70;", "2|20"]
    verdict = next(ln for ln in table if ln.startswith("verdict"))
    assert verdict.split()[1:3] == ["ANOMALY", "ANOMALY"] and verdict.count("40001") == 2
    assert max(len(ln) for ln in out.splitlines()) <= 200


def test_one_level_has_no_side_by_side_table(demo_cmd):
    out = demo_cmd("p4", "--isolation", "read-committed").output
    assert "Side by side" not in out and "Verdicts" not in out and "Isolation:" in out


def test_pretty_verdict_for_waiting(demo_cmd):
    result = demo_cmd("g0", "-i", "read-committed")
    assert result.exit_code == 0, result.output
    assert ("PREVENTED: G0 (dirty write) did not occur; s1 committed; s2 waited for s1 at s2a, "
            "then committed") in " ".join(result.output.split())


def test_transcript_format_is_the_isolationtester_output(demo_cmd):
    result = demo_cmd("g2-item", "-i", "serializable", "--format", "transcript")
    assert result.exit_code == 0
    assert result.output == (GOLDEN / "demos" / "g2-item.serializable.out").read_text()


def test_a_permutation_that_leaves_transactions_open_says_so_at_once(demo_cmd):
    # Both sessions still hold their lock on `test` when the permutation ends: the old
    # demo sat for the 30 s step timeout, then warned `teardown failed: ... statement
    # timeout`. Now the sessions are rolled back, and the report says which and why.
    start = time.monotonic()
    text = demo_cmd("p4", "-P", "s1a s2a")
    assert time.monotonic() - start < 10
    assert text.exit_code == 0, text.output
    assert "teardown failed" not in text.output
    note = ("s1 and s2 left their transactions open: the permutation ends before their COMMIT "
            "or ROLLBACK, and the teardown had to wait for the locks they still held. txlab "
            "rolled them back")
    assert note in " ".join(text.stdout.split())
    data = json.loads(demo_cmd("p4", "-P", "s1a s2a", "--format", "json").stdout)
    (perm,) = data["levels"][0]["permutations"]
    assert perm["left_open"] == ["s1", "s2"] and perm["left_open_note"].startswith(note)
    script = demo_cmd("p4", "-P", "s1a s2a", "--format", "transcript")
    assert script.stdout.endswith("step s2a: SELECT * FROM test WHERE id = 1;\n"
                                  "id|value\n--+-----\n 1|  100\n(1 row)\n\n")
    assert note in " ".join(script.stderr.split()) and "left" not in script.stdout


def test_a_permutation_that_ends_every_transaction_has_no_note(demo_cmd):
    result = demo_cmd("p4", "-i", "rc", "--format", "json")
    (perm,) = json.loads(result.stdout)["levels"][0]["permutations"]
    assert perm["left_open"] == [] and perm["left_open_note"] == ""
    assert "left their" not in demo_cmd("p4", "-i", "rc").stdout


def test_json_has_events_and_verdicts(demo_cmd):
    result = demo_cmd("g-single", "-i", "rc", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    (level,) = data["levels"]
    assert level["isolation"] == "read-committed"
    (perm,) = level["permutations"]
    assert perm["verdict"]["outcome"] == "anomaly" and perm["verdict"]["as_expected"] is True
    types = {e["type"] for e in perm["events"]}
    assert {"PermutationStarted", "StepReport", "Rows", "Command"} <= types
    assert perm["final_state"]["rows"] == [["1", "12"], ["2", "18"]]


def test_a_spec_file_and_a_permutation_from_the_command_line(demo_cmd, tmp_path):
    spec = tmp_path / "mine.spec"
    spec.write_text("setup { CREATE TABLE mine (v int); INSERT INTO mine VALUES (1); }\n"
                    "teardown { DROP TABLE mine; }\n"
                    "session a\nsetup { BEGIN; }\nstep a1 { UPDATE mine SET v = 2; }\n"
                    "step a2 { COMMIT; }\n"
                    "session b\nsetup { BEGIN; }\nstep b1 { UPDATE mine SET v = 3; }\n"
                    "step b2 { COMMIT; }\n")
    result = demo_cmd(str(spec), "--permutation", "a1 b1 a2 b2", "--format", "transcript")
    assert result.exit_code == 0, result.output
    assert "step b1: UPDATE mine SET v = 3; <waiting ...>\nstep a2: COMMIT;\n" \
           "step b1: <... completed>\n" in result.output
    assert result.output.count("starting permutation") == 1
    pretty = demo_cmd(str(spec), "--permutation", "a1 b1 a2 b2")
    assert pretty.exit_code == 0, pretty.output
    assert ("WAITED: a committed; b waited for a at b1, then committed"
            in " ".join(pretty.output.split()))  # neutral words: the spec has no witness
    # without --permutation: all 6 interleavings; in 2 of them a session's next step
    # must wait for its own blocked step, which is cancelled after the step timeout
    result = demo_cmd(str(spec), "--format", "transcript", "--step-timeout", "1")
    assert result.exit_code == 0, result.output
    assert result.output.count("starting permutation") == 6
    cancels = re.findall(r"isolationtester: canceling step (\w+) after \d+ seconds", result.output)
    assert sorted(cancels) == ["a1", "b1"]


def test_unexpected_outcome_exits_1(demo_cmd, tmp_path):
    spec = tmp_path / "wrong.spec"
    # `abort` can be told from the run (an `anomaly` without a witness cannot: see
    # test_demo_verdicts.py, test_an_expected_anomaly_without_a_witness_is_not_judged)
    spec.write_text("# txlab: expect read-committed = abort\nsession a\nstep a1 { SELECT 1; }\n")
    result = demo_cmd(str(spec), "-i", "rc")
    assert result.exit_code == 1
    assert "UNEXPECTED: the spec expects 'abort'" in result.output


@pytest.mark.parametrize("args, words", [
    (["nosuch"], "unknown demo 'nosuch'"),
    (["p4", "--isolation", "sometimes"], "unknown isolation level"),
    (["p4", "--permutation", "s1a zz"], "undefined step 'zz'"),
    (["p4", "--permutation", "s1a s1b(s1a)"], "cannot block on its own session"),
    (["--all", "p4"], "--all runs the whole catalog"),
    (["--all", "--step"], "--step is for one demo"),  # was ignored: the matrix, exit 0
    ([], "give a demo NAME"),
])
def test_usage_errors_exit_2_without_traceback(demo_cmd, args, words):
    result = demo_cmd(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_too_many_interleavings_are_refused_before_connecting(demo_cmd, tmp_path):
    spec = tmp_path / "big.spec"
    steps = "".join(f"step {s}{i} {{ SELECT {i}; }}\n" for i in range(6) for s in "x")
    spec.write_text(f"session a\n{steps}session b\n" + steps.replace("x", "y"))
    result = demo_cmd(str(spec), "--dsn", "host=/nonexistent", dsn=False)
    assert result.exit_code == 2, result.output
    assert "924 interleavings" in result.output


def test_the_transcript_runs_every_interleaving_as_isolationtester_does(demo_cmd, tmp_path):
    # 252 interleavings (5 steps each in 2 sessions): past the classroom views' limit of
    # 200, which the transcript (isolationtester's format, which runs them all) has not.
    spec = tmp_path / "many.spec"
    steps = "".join(f"step x{i} {{ SELECT {i} AS v; }}\n" for i in range(5))
    spec.write_text(f"session a\n{steps}session b\n" + steps.replace("x", "y"))
    refused = demo_cmd(str(spec))
    assert refused.exit_code == 2 and "252 interleavings" in refused.output
    result = demo_cmd(str(spec), "--format", "transcript")
    assert result.exit_code == 0, result.output
    assert result.output.count("starting permutation:") == 252
    capped = demo_cmd(str(spec), "--format", "transcript", "--max-permutations", "100")
    assert capped.exit_code == 2 and "252 interleavings" in capped.output  # when asked


def test_pg_test_timeout_default_sets_the_step_timeout_as_for_isolationtester(demo_cmd):
    # isolationtester cancels a stuck step after 2 x PG_TEST_TIMEOUT_DEFAULT seconds and
    # says so; with the same variable txlab's transcript is the tester's, byte for byte.
    golden = Path(__file__).parent / "golden" / "grammar" / "timeout"
    result = demo_cmd(str(golden.with_suffix(".spec")), "--format", "transcript",
                      env={"PG_TEST_TIMEOUT_DEFAULT": "1"})
    assert result.exit_code == 0, result.output
    assert "canceling step w1 after 2 seconds" in result.stdout
    assert result.stdout == golden.with_suffix(".out").read_text()


def test_a_bad_spec_file_reports_its_line(demo_cmd, tmp_path):
    spec = tmp_path / "bad.spec"
    spec.write_text("session s\nstep a { SELECT 1; }\nstep a { SELECT 2; }\n")
    result = demo_cmd(str(spec), dsn=False)
    assert result.exit_code == 2
    assert f"{spec}:3: duplicate step name 'a' (first defined at line 2)" in result.output


def test_list_names_the_catalog(demo_cmd):
    result = demo_cmd("--list", dsn=False)
    assert result.exit_code == 0
    names = [ln.split()[0] for ln in result.output.splitlines()]
    assert names[:3] == ["g0", "g1a", "g1b"] and "lock-timeout" in names and len(names) == 21


def _tables_outside_txlab(dsn):
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                    "('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'txlab%%'")
        return sorted(cur.fetchall())
    finally:
        conn.close()


def test_demos_work_only_inside_their_own_schema(demo_cmd, pg_dsn):
    before = _tables_outside_txlab(pg_dsn)
    r = demo_cmd("p4", "--format", "transcript")
    assert r.exit_code == 0, r.stderr
    assert _tables_outside_txlab(pg_dsn) == before


def test_demo_refuses_a_schema_txlab_did_not_create(demo_cmd, pg_dsn):
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    conn.cursor().execute("DROP SCHEMA IF EXISTS theirs CASCADE; CREATE SCHEMA theirs")
    try:
        r = demo_cmd("p4", "--schema", "theirs")
        assert r.exit_code == 2 and "not created by txlab" in r.stderr
    finally:
        conn.cursor().execute("DROP SCHEMA theirs CASCADE")
        conn.close()


def test_a_spec_that_damages_the_catalog_does_not_break_the_next_demo(tmp_path, monkeypatch):
    # Upstream intra-grant-inplace deletes a table's pg_class row: its row type stays
    # behind, and txlab's schema can no longer be dropped ("cache lookup failed").
    # The next demo must still run, in a fresh schema, and say what happened. On a
    # server of its own: the damage cannot be undone.
    from txlab import server

    monkeypatch.delenv("TXLAB_DSN", raising=False)
    damage = tmp_path / "damage.spec"
    damage.write_text("setup { CREATE TABLE victim (id int); }\n"
                      "session s1\nstep s1del { DELETE FROM pg_class WHERE relname = 'victim'; }\n")
    with server.temporary("txlab-test-catalog-") as (dsn, _):
        first = CliRunner().invoke(cli, ["demo", str(damage), "--dsn", dsn],
                                   catch_exceptions=False)
        assert first.exit_code == 0, first.output
        after = CliRunner().invoke(cli, ["demo", "p4", "-i", "rc", "--dsn", dsn],
                                   catch_exceptions=False)
        assert after.exit_code == 0, after.output
        text = " ".join(after.output.split())
        assert "could not be emptied" in text and "txlab_demo_damaged_" in text
        assert "lost update" in text.lower()  # p4 ran as usual


PINNED = """\
setup { CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 10); }
teardown { DROP TABLE t; }
session s1
step s1a { BEGIN ISOLATION LEVEL READ COMMITTED; }
step s1b { UPDATE t SET v = v + 1 WHERE id = 1; }
step s1c { COMMIT; }
session s2
setup { SET default_transaction_isolation = 'read committed'; }
step s2a { BEGIN; }
step s2b { SELECT v FROM t WHERE id = 1; }
step s2c { COMMIT; }
"""


def test_all_levels_are_refused_when_every_session_sets_its_own_level(demo_cmd, tmp_path):
    # Every column of `-i all` would run READ COMMITTED, under headings that say otherwise
    # (a spec written by txlab.testing.interleave pins its sessions' level like this).
    spec = tmp_path / "pinned.spec"
    spec.write_text(PINNED)
    r = demo_cmd(str(spec), "-i", "all", dsn=False)
    assert r.exit_code == 2
    assert "every session of" in r.output and "(s1, s2) sets its own isolation level" in r.output
    assert demo_cmd(str(spec)).exit_code == 0  # without -i it runs


def test_one_level_on_a_pinned_spec_says_it_reached_a_plain_begin_only(demo_cmd, tmp_path):
    # as isolationtester under PGOPTIONS: the transcript is the tester's; the text view
    # must not present SERIALIZABLE as the level that ran
    spec = tmp_path / "pinned.spec"
    spec.write_text(PINNED)
    r = demo_cmd(str(spec), "-i", "serializable")
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "Isolation: SERIALIZABLE (for a plain BEGIN only: every session sets its own level)" \
        in said
    plain = demo_cmd(str(spec), "-i", "serializable", "--format",
                     "transcript")
    assert plain.exit_code == 0 and "Isolation:" not in plain.stdout


def test_isolation_still_runs_when_one_session_takes_the_level_given(demo_cmd, tmp_path):
    spec = tmp_path / "half.spec"
    spec.write_text(PINNED.replace(
        "setup { SET default_transaction_isolation = 'read committed'; }\n", ""))
    r = demo_cmd(str(spec), "-i", "all")
    assert r.exit_code == 0, r.output
    assert "step s1a sets its own isolation level" in r.output
    assert "SERIALIZABLE" in r.output
