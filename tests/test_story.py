"""The run report's opening story: numbers and reasons that follow from the data, and
commands worth trying next that parse as written."""

from __future__ import annotations

import copy
import json
import shlex

import pytest

from txlab import story
from txlab.cli import cli


def report(r):
    assert r.stdout.startswith("{"), r.stdout + r.stderr
    return json.loads(r.stdout)


def text(rep) -> str:
    return " ".join(rep["story"])


def assert_commands_parse(rep):
    """Every suggestion is a `txlab run` command line that txlab's own parser accepts."""
    run = cli.commands["run"]
    for n in rep["next"]:
        argv = shlex.split(n["command"])
        assert argv[:2] == ["txlab", "run"], n
        run.make_context("run", argv[2:])  # raises on an unknown option or a bad value
        assert n["why"]


@pytest.fixture(scope="module")
def runs(pg_dsn, tmp_path_factory):
    """One of each kind of run, shared by the tests below (each takes a second or two)."""
    from click.testing import CliRunner

    schema = "txlab_story_test"

    def go(*args):
        return CliRunner().invoke(cli, ["run", "bank-transfer", *args, "--format", "json",
                                        "--dsn", pg_dsn, "--schema", schema],
                                  catch_exceptions=False)

    lossy = ("-p", "accounts=3", "-w", "8", "--think-ms", "20", "-n", "80")
    return {
        "violated": report(go("-s", "naive", *lossy)),
        "unchecked": report(go("-s", "naive", *lossy, "--no-check")),
        "clean": report(go("-s", "atomic", "-p", "accounts=3", "--think-ms", "2", "-n", "100")),
        "aborted": report(go("-s", "naive", "-i", "serializable", *lossy)),
        "lucky": report(go("-s", "naive", "-w", "1", "-n", "20")),
    }


def test_a_violated_run_says_what_broke_in_numbers_and_why(runs):
    rep = runs["violated"]
    money = next(i for i in rep["invariants"] if i["name"] == "total money conserved")
    assert not money["holds"]
    diff = money["actual"] - money["expected"]
    said = text(rep)
    if diff < 0:
        assert said.startswith(f"{-diff:,} of the {money['expected']:,} in the accounts vanished")
    else:
        assert said.startswith(f"{diff:,} appeared from nothing: the accounts hold "
                               f"{money['actual']:,} instead of {money['expected']:,}")
    assert "declared safe only at REPEATABLE READ and SERIALIZABLE, not at READ COMMITTED" in said
    lost = next(a for a in rep["anomalies"] if a["kind"] == "lost update")
    assert f"The history checker found {lost['count']:,} overwritten updates (lost update: " \
        in said
    assert "`txlab explain lost-update`" in said
    assert 2 <= len(rep["story"]) <= 4
    assert "held" not in said
    commands = [n["command"] for n in rep["next"]]
    assert commands[0].startswith("txlab run bank-transfer -s atomic")
    assert "-i repeatable-read" in commands[1]
    assert all("-p accounts=3" in c and "--think-ms 20" in c and "-w" not in c for c in commands)
    assert_commands_parse(rep)


def test_a_clean_run_says_it_held_and_offers_the_contrast(runs):
    rep = runs["clean"]
    said = text(rep)
    assert said.startswith(f"All 3 invariants held over {rep['outcomes']['committed']:,} "
                           "committed transactions")
    assert "the history checker found no anomaly" in said
    assert "declared safe at every level" in said
    for claim in ("vanished", "appeared", "aborted", "lucky"):
        assert claim not in said
    (contrast,) = rep["next"]
    assert contrast["command"] == ("txlab run bank-transfer -n 100 --think-ms 2 -p accounts=3 "
                                   '--dsn "$TXLAB_DSN" --schema txlab_story_test')  # naive
    assert "-s" not in shlex.split(contrast["command"]) and "not declared safe" in contrast["why"]
    assert_commands_parse(rep)


def test_a_mostly_aborted_serializable_run_suggests_retries_and_the_contrast(runs):
    rep = runs["aborted"]
    o = rep["outcomes"]
    aborted = sum(o["aborted"].values())
    attempts = o["committed"] + o["declined"] + aborted + o["unknown"]
    assert aborted / attempts > 0.5  # the premise: most attempts failed with 40001
    said = text(rep)
    assert all(i["holds"] for i in rep["invariants"])
    assert f"{aborted:,} of {attempts:,} attempts ({round(100 * aborted / attempts)}%) were " \
           "aborted, all with 40001" in said
    assert "`txlab explain 40001`" in said and "with --retries 0 none was tried again" in said
    retry, contrast = rep["next"]
    assert "-i serializable" in retry["command"] and "--retries 10" in retry["command"]
    assert retry["why"] == ("most attempts were aborted by serialization failures (40001): "
                            "retrying them is how SERIALIZABLE is meant to be used")
    assert "-i" not in contrast["command"] and "READ COMMITTED" in contrast["why"]
    assert_commands_parse(rep)


def test_a_run_without_the_checker_does_not_name_an_anomaly(runs):
    rep = runs["unchecked"]
    said = text(rep)
    assert "was not checked (--no-check), so txlab cannot say which anomaly did it" in said
    assert "checker found" not in said and "lost updates" not in said
    assert any("without --no-check" in n["why"] for n in rep["next"])
    assert_commands_parse(rep)


def test_a_lucky_run_of_an_unsafe_strategy_is_not_called_safe(runs):
    rep = runs["lucky"]
    assert all(i["holds"] for i in rep["invariants"])  # one worker: nothing can interleave
    said = text(rep)
    assert "is declared safe only at REPEATABLE READ and SERIALIZABLE, not at READ COMMITTED: " \
           "this run was lucky, or too short to show it" in said


def test_a_run_whose_invariants_went_unchecked_is_not_called_lucky(runs):
    # the server lost after the load of a naive run: lost updates were found, the
    # invariants could not be checked; the story said "this run was lucky"
    rep = copy.deepcopy(runs["violated"])
    rep["failure"] = "lost the connection to the server and could not reconnect within 1 s"
    rep["invariants_unchecked"] = [i["name"] for i in rep["invariants"]]
    rep["invariants"] = []
    told = " ".join(story.tell(rep)["story"])
    assert "lucky" not in told, told
    assert "Not every invariant was checked (the server was lost)" in told
    assert "The history checker found" in told and "lost update" in told
    assert "The server went away and did not come back in time; the run stopped after" in told


def test_an_interrupted_run_says_its_numbers_are_partial(runs):
    rep = copy.deepcopy(runs["clean"])
    rep["interrupted"], rep["load_whole"] = True, False  # Ctrl-C during the load
    for key in ("story", "next"):
        del rep[key]
    told = story.tell(rep)
    assert told["story"][0].startswith("The run was interrupted after ")
    assert "cover only the part that ran" in told["story"][0]
    assert told["next"][0]["why"] == "the run was interrupted; run it to the end"
    rep["load_whole"] = True  # the neighbour: Ctrl-C during the checks after the load
    told = story.tell(rep)
    assert "its load had run to its end" in told["story"][0] and "only" not in told["story"][0]


def test_a_forbidden_anomaly_is_called_a_bug_even_when_invariants_held(runs):
    rep = copy.deepcopy(runs["clean"])
    rep["anomalies"] = [{"kind": "G1a", "count": 1, "status": "forbidden", "definition": "",
                         "example": ""}]
    told = story.tell(rep)
    said = " ".join(told["story"])
    assert "But the history checker found 1 read (G1a: aborted read" in said
    assert "READ COMMITTED forbids: a database or harness bug" in said
    assert "found no anomaly" not in said


def test_the_table_report_opens_with_the_story(txlab, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the text view fits COLUMNS when not on a terminal
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20")
    lines = r.stdout.splitlines()
    assert lines[2].startswith("All 3 invariants held over")
    assert "Try next:" in r.stdout and "  txlab run bank-transfer" in r.stdout
    assert max(len(ln) for ln in r.stdout[:r.stdout.index("\nRun\n")].splitlines()) <= 80


@pytest.mark.parametrize("cause", ["version-conflict", "connection-lost"])
def test_an_abort_cause_that_is_no_sqlstate_is_named_whole(runs, cause):
    # 40001-concurrent-update is told under 40001; version-conflict is not "version"
    # (`txlab explain version` does not exist), connection-lost not "connection".
    from click.testing import CliRunner

    rep = copy.deepcopy(runs["aborted"])
    n = sum(rep["outcomes"]["aborted"].values())
    rep["outcomes"]["aborted"] = {cause: n}
    said = " ".join(story.tell(rep)["story"])
    assert f"all with {cause} (" in said and f"`txlab explain {cause}`" in said, said
    assert CliRunner().invoke(cli, ["explain", cause]).exit_code == 0


@pytest.mark.parametrize("cause, name", [
    ("version-conflict", "optimistic version conflict, no row matched"),
    ("55P03", "lock not available, lock timeout / NOWAIT"),
    ("40P01", "deadlock detected"),
])
def test_the_abort_sentence_does_not_nest_parentheses(runs, cause, name):
    rep = copy.deepcopy(runs["aborted"])
    rep["outcomes"]["aborted"] = {cause: sum(rep["outcomes"]["aborted"].values())}
    said = next(s for s in story.tell(rep)["story"] if "were aborted" in s)
    inner = said[said.index(f"with {cause} (") + len(f"with {cause} ("):]
    assert inner.startswith(name + ": "), said
    assert inner.index(")") > inner.index(f"`txlab explain {cause}`"), said


@pytest.mark.parametrize("level, causes, why", [
    # the optimistic strategy's own conflicts teach optimistic locking, not the level
    ("read-committed", {"version-conflict": 30}, "most attempts were aborted by optimistic "
     "version conflicts: retrying them is how optimistic locking is meant to be used"),
    ("read-committed", {"40P01": 30}, "most attempts were aborted by deadlocks (40P01): "
     "retrying them is the usual cure for a deadlock victim"),
    ("repeatable-read", {"40001-concurrent-update": 20, "version-conflict": 10},
     "most attempts were aborted by serialization failures (40001) and optimistic version "
     "conflicts: retrying them is how REPEATABLE READ is meant to be used, and how optimistic "
     "locking is meant to be used"),
])
def test_the_reason_to_retry_follows_the_cause(runs, level, causes, why):
    rep = copy.deepcopy(runs["aborted"])
    rep["isolation"], rep["strategy"] = level, "optimistic"
    rep["outcomes"]["aborted"] = causes
    rep["outcomes"]["committed"], rep["outcomes"]["declined"], rep["outcomes"]["unknown"] = 10, 0, 0
    retry = next(n for n in story.tell(rep)["next"] if "--retries 10" in n["command"])
    assert retry["why"] == why


def test_a_few_deadlocks_are_always_told_and_one_lock_order_suggested(pg_dsn):
    # README's deadlock command: two accounts, rows locked as drawn, think time inside
    # the transaction: opposite transfers deadlock. However few the victims (under the
    # 10% that an abort sentence needs), the story names them, and Try next offers
    # the knob's one lock order.
    from click.testing import CliRunner

    r = CliRunner().invoke(cli, ["run", "bank-transfer", "-s", "for-update", "-p",
                                 "lock_order=as-drawn", "-p", "accounts=2", "--think-ms", "20",
                                 "-n", "40", "--format", "json", "--dsn", pg_dsn, "--schema",
                                 "txlab_story_deadlock"], catch_exceptions=False)
    rep = report(r)
    assert rep["outcomes"]["aborted"].get("40P01"), rep["outcomes"]
    assert "40P01" in text(rep) and "`txlab explain 40P01`" in text(rep), text(rep)
    sorted_ = [n for n in rep["next"] if "lock_order" not in n["command"]]
    assert sorted_ and "lock_order=sorted" in sorted_[0]["why"], rep["next"]
    assert_commands_parse(rep)
    # the same report with a single victim among many commits: still told
    rep["outcomes"]["aborted"] = {"40P01": 1}
    rep["outcomes"]["committed"] = 500
    said = " ".join(story.tell(rep)["story"])
    assert "1 attempt was chosen as the deadlock victim (40P01" in said, said


def test_a_knob_only_for_update_reads_is_not_carried_to_other_strategies(pg_dsn):
    # lock_order is for-update's alone: set on a naive run it changed nothing, the report
    # says so, and Try next does not hand it on to the strategies it suggests
    from click.testing import CliRunner

    def run(strategy):
        return report(CliRunner().invoke(cli, [
            "run", "bank-transfer", "-s", strategy, "-p", "lock_order=as-drawn", "-p",
            "accounts=2", "--think-ms", "20", "-n", "40", "--format", "json", "--dsn", pg_dsn,
            "--schema", "txlab_story_knob"], catch_exceptions=False))

    naive = run("naive")
    assert naive["verdict"] == "VIOLATED" and naive["next"], naive["next"]
    assert not any("lock_order" in n["command"] for n in naive["next"]
                   if "-s for-update" not in n["command"]), naive["next"]
    assert any("lock_order=as-drawn changed nothing: the naive strategy does not read it "
               "(only for-update does)" in n for n in naive["notes"]), naive["notes"]
    assert naive["declared"]["knob_strategies"] == {"lock_order": ["for-update"]}
    assert_commands_parse(naive)
    # the neighbour: for-update reads it, so no such note, and its own commands keep it
    mine = run("for-update")
    assert not any("changed nothing" in n for n in mine["notes"]), mine["notes"]
    assert any("-s for-update" in n["command"] and "lock_order=as-drawn" in n["command"]
               for n in mine["next"]), mine["next"]


def test_a_clean_run_whose_check_had_no_graph_does_not_say_it_found_no_anomaly(runs):
    rep = copy.deepcopy(runs["clean"])
    assert rep["anomalies"] == [] and rep["check"]["empty_graph"] is False
    assert "and the history checker found no anomaly" in text(rep)
    rep["check"] |= {"verdict": "unknown", "empty_graph": True}
    said = " ".join(story.tell(rep)["story"])
    assert "the history checker had nothing to go on" in said, said
    assert "found no anomaly" not in said


def test_a_run_without_deadlocks_has_no_deadlock_sentence(runs):
    said = text(runs["clean"])
    assert "deadlock" not in said and "40P01" not in said
    assert not any("lock_order" in n["why"] for n in runs["clean"]["next"])


def test_lost_updates_beside_g_single_say_the_count_is_not_the_loss(runs):
    # page_views: 174 visits lost, "7 overwritten updates": a transaction that wrote over
    # versions it never read is in a G-single cycle, not in the lost-update count.
    rep = copy.deepcopy(runs["violated"])
    lost = {"kind": "lost update", "count": 7, "status": "forbidden", "definition": ""}
    single = {"kind": "G-single", "count": 1, "status": "forbidden", "definition": ""}
    rep["anomalies"] = [lost, single]
    said = " ".join(story.tell(rep)["story"])
    assert "how much was lost is what the invariant says" in said, said
    rep["anomalies"] = [lost]  # the neighbour: lost updates alone are the whole story
    assert "G-single cycle instead" not in " ".join(story.tell(rep)["story"])
