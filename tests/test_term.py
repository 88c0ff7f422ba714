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
