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
