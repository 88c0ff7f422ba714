"""txlab matrix and describe."""

from __future__ import annotations

import csv
import io
import json

from txlab import db, matrix, scenario
from txlab.matrix import Row


def test_matrix_json_rows_and_exit_code(txlab, pg_dsn, schema):
    args = ["matrix", "bank-transfer", "-s", "naive,atomic", "-i", "rc,serializable", "-d", "0.5",
            "--think-ms", "5", "--format", "json", "--dsn", pg_dsn, "--schema", schema]
    r = txlab(*args)
    rows = json.loads(r.stdout)
    assert [(x["strategy"], x["isolation"]) for x in rows] == [
        ("naive", "read-committed"), ("naive", "serializable"),
        ("atomic", "read-committed"), ("atomic", "serializable")]
    by = {(x["strategy"], x["isolation"]): x for x in rows}
    assert by[("naive", "read-committed")]["holds"] is False
    assert by[("naive", "read-committed")]["anomalies"]["lost update"] > 0
    assert by[("naive", "read-committed")]["surprise"] is False  # naive is not declared safe at RC
    assert by[("atomic", "read-committed")]["holds"] is True
    assert by[("naive", "serializable")]["holds"] is True
    assert r.exit_code == 1
    assert txlab(*args, "--no-fail").exit_code == 0


def test_matrix_bad_selection_is_a_usage_error(txlab, pg_dsn):
    r = txlab("matrix", "bank-transfer", "-s", "teleport", "--dsn", pg_dsn)
    assert r.exit_code == 2 and "teleport" in r.stderr
    r = txlab("matrix", "bank-transfer", "-i", "chaos", "--dsn", pg_dsn)
    assert r.exit_code == 2 and "read-committed" in r.stderr


def test_a_misspelt_strategy_gets_the_suggestion_run_gives(txlab, pg_dsn):
    # matrix said only "no selected scenario has strategy atomc"
    r = txlab("matrix", "bank-transfer", "-s", "atomc", "--dsn", pg_dsn)
    flat = " ".join(r.stderr.split())
    assert r.exit_code == 2
    assert "no selected scenario has strategy 'atomc'. Did you mean 'atomic'?" in flat
    assert "Choose from: naive, atomic, for-update, optimistic, or all." in flat
    r = txlab("matrix", "bank-transfer", "-s", "atomc,all,teleport", "--dsn", pg_dsn)
    flat = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "strategies 'atomc' (did you mean 'atomic'?), 'teleport'." in flat


def test_all_in_a_list_of_levels_means_every_level_and_the_unknown_one_is_named(txlab, pg_dsn):
    # `-i all,foo` said "unknown isolation level 'all'"
    r = txlab("matrix", "bank-transfer", "-i", "all,foo", "--dsn", pg_dsn)
    assert r.exit_code == 2
    assert "unknown isolation level 'foo'" in r.stderr and "'all'" not in r.stderr
    keys = [lv.key for lv in matrix.parse_levels("ser, all")]
    assert keys == ["serializable", "read-uncommitted", "read-committed", "repeatable-read"]
    every = list(db.LEVELS)
    combos = matrix.plan([scenario.resolve("bank-transfer")], ["all", "atomic"],
                         matrix.parse_levels("all,rc"))
    assert len(combos) == 4 * len(every) and len(set(combos)) == len(combos)


def test_level_and_strategy_lists_without_all_are_as_before():
    # the neighbour
    assert [lv.key for lv in matrix.parse_levels("rc,serializable")] == [
        "read-committed", "serializable"]
    assert [lv.key for lv in matrix.parse_levels("all")] == list(db.LEVELS)
    combos = matrix.plan([scenario.resolve("bank-transfer")], ["naive"],
                         matrix.parse_levels("rr"))
    assert [(c[1], c[2].key) for c in combos] == [("naive", "repeatable-read")]


def _row(holds, safe, **kw):
    base = dict(scenario="s", strategy="x", isolation="read-committed", committed_per_s=1.0,
                committed=1, aborted={}, retries=0, failed=0, holds=holds,
                violated=[] if holds else ["inv"], anomalies={}, forbidden=[], expected_safe=safe)
    return Row(**{**base, **kw})


def test_render_marks_violations_and_surprises():
    rows = [_row(True, True), _row(False, False, strategy="y"), _row(False, True, strategy="z")]
    text = matrix.render(rows, "text")
    assert "VIOLATED, UNEXPECTED" in text and "s/z/RC" in text
    assert matrix.render(rows, "table") == text  # the old name of the text view
    assert "3 combinations: 1 held, 2 violated; 1 UNEXPECTED" in text
    md = matrix.render(rows, "markdown")
    assert "**VIOLATED**" in md and "## s" in md
    parsed = list(csv.DictReader(io.StringIO(matrix.render(rows, "csv"))))
    assert [p["invariants"] for p in parsed] == ["holds", "VIOLATED", "VIOLATED"]


def test_the_retries_column_shows_in_text_and_markdown_only_when_a_retry_happened():
    # markdown kept an all-zero retries column that the text view leaves out
    none = [_row(True, True), _row(True, True, strategy="y")]
    some = [_row(True, True), _row(True, True, strategy="y", retries=3)]
    for fmt in ("text", "markdown"):
        assert "retries" not in matrix.render(none, fmt), fmt
        assert "retries" in matrix.render(some, fmt), fmt
    assert "**VIOLATED**" in matrix.render([_row(False, False)], "markdown")
    assert all("retries" in matrix.render(none, fmt) for fmt in ("json", "csv"))


def test_render_marks_forbidden_anomalies():
    rows = [_row(True, True, anomalies={"G1a": 2}, forbidden=["G1a"])]
    text = matrix.render(rows, "table")
    assert "G1a 2 FORBIDDEN" in text
    assert "1 with an anomaly the level FORBIDS" in text and "s/x/RC" in text


def test_commits_of_unknown_outcome_are_shown_in_every_view():
    # A cell that lived through a server restart: COMMITs left unanswered are neither
    # committed nor aborted, and were shown nowhere (only connection-lost aborts).
    rows = [_row(True, True, aborted={"connection-lost": 4}, unknown=3),
            _row(True, True, strategy="y")]
    text = matrix.render(rows, "text")
    assert "connection-lost 4, outcome unknown 3" in text
    assert "Outcome unknown: COMMITs whose answer was lost" in " ".join(text.split())
    assert "outcome unknown 3" in matrix.render(rows, "markdown")
    assert [r["unknown"] for r in json.loads(matrix.render(rows, "json"))] == [3, 0]
    parsed = list(csv.DictReader(io.StringIO(matrix.render(rows, "csv"))))
    assert [p["unknown"] for p in parsed] == ["3", "0"]
    from txlab.html import matrix as page

    html = page.page(matrix.to_dicts(rows), "PostgreSQL 18", None)
    assert "outcome unknown (COMMIT unanswered, connection lost): 3" in html
    # none unknown: no word of it anywhere
    whole = matrix.render([_row(True, True)], "text")
    assert "unknown" not in whole.lower()


def test_describe_explains_strategies_by_level(txlab):
    r = txlab("describe", "bank-transfer")
    assert r.exit_code == 0
    for text in ("Invariants", "total money conserved", "naive", "safe", "unsafe",
                 "lock_order", "as-drawn"):
        assert text in r.stdout, text
    assert txlab("describe", "nope").exit_code == 2


def test_the_summary_counts_one_combination_in_the_singular():
    assert matrix.summary([_row(True, True)]).startswith("1 combination: 1 held, 0 violated")
    assert matrix.summary([_row(True, True), _row(True, True)]).startswith("2 combinations:")
