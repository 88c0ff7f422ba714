"""txlab.term: width and colour decisions for terminal renderers."""

from __future__ import annotations

import io

from rich.text import Text

from txlab import term


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_width_from_columns_else_80_when_not_a_terminal():
    assert term.detect(io.StringIO(), env={}).width == 80
    assert term.detect(io.StringIO(), env={"COLUMNS": "132"}).width == 132
    assert term.detect(io.StringIO(), env={"COLUMNS": "junk"}).width == 80


def test_columns_is_the_streams_own_width_unclamped():
    assert term.columns(io.StringIO(), env={"COLUMNS": "30"}) == 30  # the progress line's
    assert term.detect(io.StringIO(), env={"COLUMNS": "30"}).width == term.MIN_WIDTH
    assert term.columns(io.StringIO(), env={}) == 80


def test_colour_only_on_a_terminal_without_no_color():
    assert term.detect(_Tty(), env={}).color
    assert not term.detect(io.StringIO(), env={}).color
    assert not term.detect(_Tty(), env={"NO_COLOR": ""}).color
    assert not term.detect(_Tty(), env={}, no_color=True).color


def test_no_escape_at_all_without_colour_and_wrapped_to_width():
    styled = Text("VIOLATED " * 30, style="bold red")
    plain = term.to_text(styled, term.plain(80))
    assert "\x1b" not in plain
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert "\x1b[" in term.to_text(styled, term.Term(80, True, True))


def test_status_words_share_one_style_vocabulary():
    assert term.style_of("VIOLATED") == term.STYLES["violated"]
    assert term.style_of("held") == term.STYLES["held"]
    assert term.style_of("FORBIDDEN") == term.STYLES["forbidden"]
    assert term.style_of("aborted: 40001") == term.STYLES["aborted"]
    assert term.style_of("something else") == ""
    assert str(term.word("VIOLATED")) == "VIOLATED"  # the label stays; colour only doubles it


def test_shorten_cuts_with_an_ellipsis():
    assert term.shorten("SELECT  1", 20) == "SELECT 1"
    cut = term.shorten("UPDATE account SET balance = balance - 10 WHERE id = 1", 20)
    assert len(cut) <= 20 and cut.endswith(term.ELLIPSIS)


def test_tables_wrap_or_stack_and_never_exceed_the_width():
    rows = [["transfer log agrees with balances", "VIOLATED",
             "every balance = initial + logged in - logged out", "3 accounts disagree",
             "account 1: balance 886, log says 89; account 2: balance 1258, log says 1637"]]
    heads = ["invariant", "verdict", "expected", "actual", "detail"]
    least = {0: 20, 2: 16, 3: 16, 4: 28}
    narrow = term.to_text(term.table(heads, rows, term.plain(80), wrap=least), term.plain(80))
    wide = term.to_text(term.table(heads, rows, term.plain(200), wrap=least), term.plain(200))
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert narrow.splitlines()[0] == "transfer log agrees with balances"  # one block per row
    assert "  verdict   VIOLATED" in narrow
    assert wide.splitlines()[0].split() == heads  # a table, one line per row
    assert len(wide.splitlines()) == 3
    assert all(line == line.rstrip() for line in narrow.splitlines() + wide.splitlines())


def test_pairs_wrap_values_between_words():
    params = "accounts=3 initial_balance=1000 max_amount=100 lock_order=sorted"
    items = [("scenario", "bank-transfer"), ("server", "PostgreSQL 18.6"), ("strategy", "naive"),
             ("seed", "1588170028"), ("retries allowed", 0), ("params", params)]
    for width in (40, 50, 60, 80, 120):
        t = term.plain(width)
        text = term.to_text(term.pairs(items, t), t)
        assert max(len(line) for line in text.splitlines()) <= width, text
        assert set(params.split()) <= set(text.split()), text  # each pair whole
        assert {"PostgreSQL", "18.6", "bank-transfer"} <= set(text.split()), text
        assert "\nretries allowed  0" in "\n" + text, text
    wide = term.to_text(term.pairs(items, term.plain(120)), term.plain(120))
    assert len(wide.splitlines()) == 3  # side by side where there is room
    # a word longer than its column: broken after its '=', not in the middle of a name
    t = term.plain(40)
    text = term.to_text(term.pairs([("params", "scenario_path=/srv/classroom/scenarios/"
                                                "week-three/bank.py")], t), t)
    assert text.splitlines()[0].rstrip() == "params  scenario_path=", text
    assert max(len(line) for line in text.splitlines()) <= 40, text
