"""`--help` that fits the terminal: click's help formatter, with txlab's width and
with its pre-formatted (`\\b`) blocks wrapped too.

click wraps paragraphs and option lists, but writes a `\\b` block (the exit codes,
the parts of `acid`, the examples of `demo`) as it is, however narrow the
terminal. Here a block that fits is still written exactly as it is; one that does
not is wrapped entry by entry with a hanging indent. An entry is a line `term
description` with two or more spaces between them; the lines that follow it
indented to its description column continue it. Its description is wrapped in
that column; where the column leaves it fewer than MIN_ROOM columns (an example
command and its comment), the description goes under the term instead, indented
by HANG. Any other line wraps with its own indent, continued HANG further in.
Words and quoted arguments are never cut: commands, paths and URLs are copied
from help.

The width follows txlab's rule (txlab.term): standard output's terminal, else
COLUMNS, else 80; as click, at most 80 columns, and 2 left as a margin.
"""

from __future__ import annotations

import re
import sys
import textwrap

import click
from click.formatting import wrap_text

from txlab import term

MIN_ROOM = 20  # least columns for a description beside its term (a block entry, an option)
HANG = 4  # continuation lines of a plain line, or a description moved under its term

_ENTRY = re.compile(r"( *)(\S+(?: \S+)*)( {2,})(\S.*)")


class HelpFormatter(click.HelpFormatter):
    def __init__(self, indent_increment: int = 2, width: int | None = None,
                 max_width: int | None = None):
        if width is None:  # not click's: COLUMNS before the terminal, and never below 50
            width = min(term.detect(sys.stdout).width, max_width or 80) - 2
        super().__init__(indent_increment, width, max_width)

    def write_text(self, text: str) -> None:
        """Paragraphs as click wraps them; `\\b` blocks by `block`."""
        indent = " " * self.current_indent
        out = []
        for lines in _paragraphs(text):
            if lines[0].strip() == "\b":  # its indent is the block's, as in click
                lead = indent + " " * (len(lines[0]) - len(lines[0].lstrip()))
                out.append(block(lines[1:], self.width, lead))
            else:
                out.append(wrap_text("\n".join(lines), self.width, indent, indent,
                                     preserve_paragraphs=True))
        self.write("\n\n".join(out))
        self.write("\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        """Options and commands: click's list, with a first column narrow enough to
        leave the descriptions MIN_ROOM columns (a longer term gets a line of its own)."""
        col_max = min(col_max, max(8, self.width - 2 - col_spacing - MIN_ROOM))
        super().write_dl(rows, col_max, col_spacing)


class Context(click.Context):
    formatter_class = HelpFormatter


def _paragraphs(text: str) -> list[list[str]]:
    """The text's paragraphs (runs of non-empty lines), as click's wrap_text finds them."""
    out: list[list[str]] = [[]]
    for line in text.expandtabs().splitlines():
        if line:
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


def block(lines: list[str], width: int, lead: str) -> str:
    """A `\\b` block's lines after `lead`: as they are when every one fits in `width`,
    else wrapped with hanging indents (see the module's docstring)."""
    if all(len(lead + line) <= width for line in lines):
        return "\n".join(lead + line for line in lines)
    out: list[str] = []
    for head, column, text in _entries(lines):
        out += _entry(head, column, text, width, lead)
    return "\n".join(out)


def _entries(lines: list[str]) -> list[list]:
    """[head, column, text] per entry: the line up to its description, the column
    where that starts and the description with its continuation lines; a plain
    line is [line, None, ""]."""
    entries: list[list] = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if entries and entries[-1][1] is not None and line.strip() and indent == entries[-1][1]:
            entries[-1][2] += " " + line.strip()
            continue
        m = _ENTRY.fullmatch(line.rstrip())
        if m:
            entries.append([m[1] + m[2], len(m[1] + m[2] + m[3]), m[4]])
        else:
            entries.append([line.rstrip(), None, ""])
    return entries


_QUOTED = re.compile(r'"[^"]*"' + r"|'[^']*'")
_KEEP = "\xa0"  # a space textwrap does not break at (it breaks at ASCII whitespace only)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """`text` wrapped at its spaces, never inside a word or a quoted argument."""
    text = _QUOTED.sub(lambda m: m[0].replace(" ", _KEEP), text)
    lines = textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(_KEEP, " ") for line in lines] or [first.rstrip()]


def _entry(head: str, column: int | None, text: str, width: int, lead: str) -> list[str]:
    indent = " " * (len(head) - len(head.lstrip()))
    if column is None:
        return _wrap(head.strip(), width, lead + indent, lead + indent + " " * HANG)
    if width - len(lead) - column >= MIN_ROOM or len(lead) + column + len(text) <= width:
        return _wrap(text, width, lead + head.ljust(column), lead + " " * column)
    under = lead + indent + " " * HANG
    return _wrap(head.strip(), width, lead + indent, under) + _wrap(text, width, under, under)
