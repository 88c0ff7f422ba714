"""Demo verdicts say only what the run showed; final states are always printed; the
spec helpers (--show, --new) and the pretty output's fit at 80 and 200 columns."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from txlab.cli import cli
from txlab.interleave import demo, driver
from txlab.interleave import spec as specs

# A spec as a newcomer writes it: no txlab metadata at all, no `show` line.
DOUBLE_BOOKING = """\
# Two people book the same seat
setup {
  CREATE TABLE bookings (id serial PRIMARY KEY, seat text NOT NULL, who text NOT NULL);
}
teardown { DROP TABLE bookings; }

session s1
setup { BEGIN; }
step s1_check { SELECT count(*) FROM bookings WHERE seat = '12A'; }
step s1_book { INSERT INTO bookings (seat, who) VALUES ('12A', 'ann'); }
step s1_commit { COMMIT; }

session s2
setup { BEGIN; }
step s2_check { SELECT count(*) FROM bookings WHERE seat = '12A'; }
step s2_book { INSERT INTO bookings (seat, who) VALUES ('12A', 'bob'); }
step s2_commit { COMMIT; }

permutation s1_check s2_check s1_book s2_book s1_commit s2_commit
"""


@pytest.fixture
def demo_cmd(pg_dsn, monkeypatch):
    monkeypatch.delenv("TXLAB_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def invoke(*args, dsn=True, columns=80):
        argv = ["demo", *args] + (["--dsn", pg_dsn] if dsn else [])
        return CliRunner().invoke(cli, argv, catch_exceptions=False,
                                  env={"COLUMNS": str(columns), "NO_COLOR": None})

    return invoke


def flat(text: str) -> str:
    return " ".join(text.split())


def widest(text: str) -> int:
    return max(len(ln) for ln in text.splitlines())


# ---------------------------------------------------------------- a spec of one's own


def test_a_spec_without_metadata_says_what_happened_and_shows_its_tables(demo_cmd, tmp_path):
    spec = tmp_path / "my.spec"
    spec.write_text(DOUBLE_BOOKING)
    r = demo_cmd(str(spec), "-i", "read-committed")
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "COMMITTED: both committed" in out
    for claim in ("NO ANOMALY", "no anomaly", "PREVENTED", "prevented"):
        assert claim not in out
    # the final state of the table the spec created, without a `show` line: the double booking
    final = r.output[r.output.index("Final state"):]
    assert "bookings" in final and "12A |ann" in final and "12A |bob" in final
    assert "(2 rows)" in final
    assert "no `# txlab: witness` line" in out
    assert widest(r.output) <= 80


def test_a_spec_without_metadata_at_serializable_names_the_abort_without_prevented(
        demo_cmd, tmp_path):
    spec = tmp_path / "my.spec"
    spec.write_text(DOUBLE_BOOKING)
    r = demo_cmd(str(spec), "-i", "serializable", columns=200)
    assert r.exit_code == 0, r.output
    assert ("ABORTED: s1 committed; s2 aborted with 40001 at s2_commit, its COMMIT "
            "(serialization failure: read/write dependencies)") in r.output
    assert "PREVENTED" not in r.output and "12A |ann" in r.output and "(1 row)" in r.output


def test_a_witness_turns_the_same_spec_into_an_anomaly_verdict(demo_cmd, tmp_path):
    spec = tmp_path / "my.spec"
    spec.write_text("# txlab: anomaly = double booking\n"
                    "# txlab: witness = check SELECT count(*) = 2 FROM bookings\n" + DOUBLE_BOOKING)
    r = demo_cmd(str(spec), "-i", "rc", columns=200)
    assert "ANOMALY: double booking: the witness held (both committed)" in r.output
    assert "no `# txlab: witness` line" not in r.output


def test_an_expected_anomaly_without_a_witness_is_not_judged(demo_cmd, tmp_path):
    # docs/teaching.md step 5: the template's `expect` lines stay when its witness is
    # deleted. Whether both bookings are the anomaly cannot be read off the run, so it
    # is neither UNEXPECTED (exit 1, as before) nor as expected: the verdict says so.
    spec = tmp_path / "seat2.spec"
    spec.write_text("".join(line for line in demo.template().splitlines(keepends=True)
                            if not line.startswith("# txlab: witness")))
    r = demo_cmd(str(spec), "-i", "all", columns=200)
    assert r.exit_code == 0, r.output
    verdicts = r.output[r.output.index("Verdicts"):]
    assert "UNEXPECTED" not in r.output and "catalog" not in r.output
    assert verdicts.count("COMMITTED: both committed") == 3
    assert verdicts.count("CANNOT TELL whether this is the anomaly the spec expects at this "
                          "level: it has no witness line") == 3
    assert "committed ?" in r.output and "!" not in r.output.split("Verdicts")[0]
    assert "txlab cannot tell whether this is an anomaly" in flat(r.output)
    data = json.loads(demo_cmd(str(spec), "-i", "rc", "--format", "json").output)
    v = data["levels"][0]["permutations"][0]["verdict"]
    assert v["expected"] == "anomaly" and v["as_expected"] is None and v["undecided"] is True


def test_a_users_spec_that_differs_says_the_spec_expects(demo_cmd, tmp_path):
    spec = tmp_path / "mine.spec"
    spec.write_text("# txlab: expect read-committed = abort\n" + DOUBLE_BOOKING)
    r = demo_cmd(str(spec), "-i", "rc", columns=200)
    assert r.exit_code == 1, r.output
    assert "UNEXPECTED: the spec expects 'abort' at this level" in r.output
    assert "catalog" not in r.output and "CANNOT TELL" not in r.output


# ---------------------------------------------------------------- catalog wording


def test_deadlock_says_deadlock_and_names_the_victim(demo_cmd):
    r = demo_cmd("deadlock", "-i", "read-committed", columns=200)
    assert r.exit_code == 0, r.output
    assert ("DEADLOCK: s1 waited for s2 at s1b, then committed; s2 waited for s1 at s2b, then "
            "was chosen as the deadlock victim (40P01) and rolled back") in r.output
    assert "PREVENTED" not in r.output and "prevented" not in r.output
    assert "accounts" not in r.output.split("Final state")[1].splitlines()[1]  # the show query


def test_the_ssi_false_positive_is_called_one_and_never_prevented(demo_cmd):
    r = demo_cmd("ssi-false-positive", "-i", "all", columns=200)
    assert r.exit_code == 0, r.output
    verdicts = r.output[r.output.index("Verdicts"):]
    assert verdicts.count("COMMITTED: both committed") == 3
    assert ("FALSE POSITIVE: s1 committed; s2 aborted with 40001 at s2c, its COMMIT "
            "(serialization failure: read/write dependencies). Nothing needed preventing")\
        in flat(verdicts)
    assert "PREVENTED" not in r.output and "prevented" not in r.output
    side = r.output[r.output.index("Side by side"):r.output.index("Verdicts")]
    assert "false positive (40001)" in side


def test_an_abort_the_anomaly_does_not_explain_is_not_called_prevented(demo_cmd):
    # G1c never occurs in PostgreSQL; SERIALIZABLE aborts these steps as a write skew
    r = demo_cmd("g1c", "-i", "serializable", columns=200)
    assert r.exit_code == 0, r.output
    assert "ABORTED: s1 committed; s2 aborted with 40001 at s2c, its COMMIT" in r.output
    assert "PREVENTED" not in r.output and "write skew" in r.output


def test_lock_handling_demos_use_neutral_words(demo_cmd):
    r = demo_cmd("nowait", "-i", "rc", columns=200)
    assert ("ABORTED: s1 committed; s2 aborted with 55P03 at s2l (lock not available: "
            "lock timeout / NOWAIT)") in r.output
    assert "PREVENTED" not in r.output and "no `# txlab: witness`" not in r.output


def test_no_demo_without_witnesses_claims_prevention_at_any_level():
    """Offline, over every catalog demo: the verdict words a spec can get."""
    sessions = ("s1", "s2")
    for name, path in demo.catalog().items():
        meta = demo.parse_meta(specs.load(path))
        if meta.witnesses:
            continue
        for events in (_waited_then_aborted(), []):
            v = demo.verdict(meta, driver.PermutationRun(("s1a",), events), "serializable",
                             sessions)
            assert v.head not in ("PREVENTED", "NO ANOMALY"), name
            assert not v.cell.startswith(("prevented", "no anomaly")), name


def _waited_then_aborted():
    d = driver
    return [d.StepReport("s2a", "s2", "UPDATE t SET v = 1;", "waiting", ("s1",)),
            d.StepReport("s1c", "s1", "COMMIT;", "done"), d.Command("s1", "COMMIT", "s1c"),
            d.StepReport("s2a", "s2", "UPDATE t SET v = 1;", "resumed"),
            d.Error("s2", "ERROR", "40001", "could not serialize access due to concurrent update",
                    step="s2a"),
            d.StepReport("s2c", "s2", "COMMIT;", "done"), d.Command("s2", "ROLLBACK", "s2c")]


def test_what_happened_is_read_from_the_events():
    meta = demo.Meta()
    v = demo.verdict(meta, driver.PermutationRun(("s2a",), _waited_then_aborted()), None,
                     ("s1", "s2"))
    assert v.line == ("ABORTED: s1 committed; s2 waited for s1 at s2a, then aborted with 40001 "
                      "(serialization failure: concurrent update)")
    assert (v.outcome, v.cell) == ("abort", "aborted (wait, 40001)")
    # an error outside a transaction block (no ROLLBACK follows) is not called an abort
    err = [driver.StepReport("a1", "a", "INSERT ...", "done"),
           driver.Error("a", "ERROR", "23505", "duplicate key value", step="a1")]
    v = demo.verdict(meta, driver.PermutationRun(("a1",), err), None, ("a",))
    assert v.line == "ABORTED: a got error 23505 at a1 (unique violation)"
    # nothing happened to anyone: no claim at all
    v = demo.verdict(meta, driver.PermutationRun(("a1",), []), None, ("a", "b"))
    assert v.line == "DONE: no step waited or failed"


# ---------------------------------------------------------------- --show, --new


def test_show_prints_a_builtin_spec_to_copy(demo_cmd, tmp_path):
    r = demo_cmd("--show", "p4", dsn=False)
    assert r.exit_code == 0
    assert r.output == (demo.demos_dir() / "p4.spec").read_text()


def test_new_writes_a_runnable_commented_template_and_never_overwrites(demo_cmd, tmp_path):
    target = tmp_path / "mine.spec"
    r = demo_cmd("--new", str(target), dsn=False)
    assert r.exit_code == 0 and f"wrote {target}" in " ".join(r.stderr.split())
    text = target.read_text()
    assert "## " in text and "# txlab: witness" in text
    # opened with the class on a projector: every line fits 80 columns (some were 91)
    assert max(len(line) for line in text.splitlines()) <= 80
    again = demo_cmd("--new", str(target), dsn=False)
    assert again.exit_code == 2 and "already exists" in " ".join(again.stderr.split())
    assert target.read_text() == text
    ran = demo_cmd(str(target), "-i", "all", "--format", "json")
    assert ran.exit_code == 0, ran.output  # every outcome as the template expects
    data = json.loads(ran.output)
    assert data["story"].startswith("Alice and Bob") and "##" not in data["story"]
    outcomes = [lv["permutations"][0]["verdict"]["outcome"] for lv in data["levels"]]
    assert outcomes == ["anomaly", "anomaly", "anomaly", "abort"]
    states = data["levels"][1]["permutations"][0]["final_states"]
    assert states == [{"table": "bookings", "columns": ["seat", "name"],
                       "rows": [["1", "alice"], ["1", "bob"]]}]


# ---------------------------------------------------------------- fit


@pytest.mark.parametrize("columns", [80, 200])
def test_pretty_output_fits_the_width(demo_cmd, columns):
    for args in (["p4", "-i", "all"], ["otv", "-i", "rc"], ["read-only-anomaly", "-i", "ser"]):
        r = demo_cmd(*args, columns=columns)
        assert r.exit_code == 0, r.output
        assert widest(r.output) <= columns, args
        assert "\x1b[" not in r.output  # not a terminal: no escapes


# ---------------------------------------------------------------- permutation markers


def _p4_copy(demo_cmd, tmp_path):
    """p4 as a spec of one's own (`demo --show p4 > p4.spec`)."""
    spec = tmp_path / "p4.spec"
    spec.write_text(demo_cmd("--show", "p4", dsn=False).output)
    return spec


def test_a_step_a_marker_holds_back_is_not_called_a_lock_wait_nor_prevented(demo_cmd, tmp_path):
    # `s2a(*)` reports s2a as waiting whatever it does; s2a is a plain SELECT and the
    # permutation skips both UPDATEs: nothing waited for a lock, nothing was prevented.
    spec = _p4_copy(demo_cmd, tmp_path)
    r = demo_cmd(str(spec), "-P", "s1a s2a(*) s1c s2c", "-i", "rc", columns=200)
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "Permutation: s1a s2a(*) s1c s2c" in out
    assert "HELD BACK by its (*) marker" in out
    assert ("NO ANOMALY: P4 (lost update) did not occur; s1 committed; s2 was held back at "
            "s2a by its (*) marker, then committed") in out
    assert "PREVENTED" not in out and "waited for" not in out
    j = json.loads(demo_cmd(str(spec), "-P", "s1a s2a(*) s1c s2c", "-i", "rc",
                            "--format", "json").output)
    v = j["levels"][0]["permutations"][0]["verdict"]
    assert v["outcome"] == "ok" and v["waited"] == [], v
    # p4's `expect` lines are about its own permutation, not this one: set aside, exit 0
    assert v["as_expected"] is None and v["expectation_note"].startswith("NOT COMPARED"), v


def test_a_marked_step_that_also_waits_for_a_lock_is_still_prevented(demo_cmd, tmp_path):
    # The neighbour: at REPEATABLE READ s2's UPDATE really waits for s1's row lock and
    # then aborts; a marker elsewhere in the permutation changes nothing of that.
    spec = _p4_copy(demo_cmd, tmp_path)
    r = demo_cmd(str(spec), "-P", "s1a s2a(*) s1b s2b s1c s2c", "-i", "rr", columns=200)
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "PREVENTED: P4 (lost update) did not occur" in out
    assert "waited for s1 at s2b" in out and "held back at s2a by its (*) marker" in out


def test_the_specs_own_permutation_given_with_P_is_still_compared_with_expect(demo_cmd):
    # The neighbour of setting `expect` aside: p4's own schedule, spelled on the command
    # line, is what its expect lines are about.
    r = demo_cmd("p4", "-P", "s1a  s2a s1b s2b s1c s2c", "-i", "rr", "--format", "json")
    v = json.loads(r.output)["levels"][0]["permutations"][0]["verdict"]
    assert v["expected"] == "abort" and v["as_expected"] is True, v
    assert v["expectation_note"] == ""


def test_a_narrow_terminal_gets_short_level_headings_and_no_word_cut(demo_cmd):
    # At 60 columns the full level names did not fit: "UNCOMMITTE / D", "SERIALIZAB / LE",
    # and the step column shrank until the SQL ran one word per line.
    out = demo_cmd("p4", "-i", "all", columns=60).output
    side = out[out.index("Side by side"):out.index("Verdicts")]
    assert side.splitlines()[1].split() == ["step", "RU", "RC", "RR", "SER"]
    assert "RU = READ UNCOMMITTED, RC = READ COMMITTED" in flat(side)
    assert "1. s1a: SELECT *" in side and "prevented" in side and "prevente\n" not in side
    assert widest(out) <= 60
    # the neighbour: at 80 columns the levels keep their names
    wide = demo_cmd("p4", "-i", "all", columns=80).output
    head = wide[wide.index("Side by side"):].splitlines()[1:4]
    assert "SERIALIZABLE" in " ".join(head) and " RU " not in " ".join(head)


def test_isolation_takes_a_list_of_levels_as_matrix_does(demo_cmd):
    # `matrix -i rc,ser` worked and `demo -i rc,ser` said "unknown isolation level 'rc,ser'"
    out = demo_cmd("p4", "-i", "ser,rc", columns=100).output
    side = out[out.index("Side by side"):out.index("Verdicts")]
    assert side.splitlines()[1].split() == ["step", "READ", "COMMITTED", "SERIALIZABLE"]
    bad = demo_cmd("p4", "-i", "rc,xx")
    assert bad.exit_code == 2
    assert "unknown isolation level 'xx'" in flat(bad.stderr) and "`all`" in flat(bad.stderr)
