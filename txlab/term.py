"""The terminal: how wide, whether to colour. Only terminal renderers use this.

Width: the terminal's when the stream is one, else `COLUMNS`, else 80.
Colour: only on a terminal, never with `NO_COLOR` set (any value) or `--no-color`;
with colour off, not a single ANSI escape is written (no bold either), so piped
output is plain text that diffs cleanly.

Renderers build rich renderables (tables, text with styles) and hand them to
`to_text(renderable, term)`, which gives the exact string to print: wrapped to
the width, with or without escapes.

Shared style vocabulary (every terminal renderer uses these names, so a verdict
looks the same in a run report, a matrix, a demo and `check`): `STYLES` maps a
meaning to a rich style; `styled(text, meaning)` and `word(label)` build the
rich Text. Colour only ever doubles a text label ("VIOLATED", "aborted"), it
never replaces one.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WIDTH = 80
ELLIPSIS = "…"

# Meaning -> rich style. Keep this small and obvious.
STYLES: dict[str, str] = {
    "held": "green",            # an invariant held; a run's HOLDS verdict
    "violated": "bold red",     # an invariant broke; VIOLATED; a demo's ANOMALY
    "allowed": "yellow",        # an anomaly the isolation level allows
    "forbidden": "bold red",    # an anomaly the isolation level forbids
    "committed": "green",
    "aborted": "red",           # rolled back by the server (40001, 40P01, ...)
    "waiting": "yellow",        # blocked on a lock
    "declined": "cyan",         # refused by a business rule; not a failure
    "prevented": "green",       # the level stopped the anomaly (wait or abort)
    "heading": "bold",
    "muted": "dim",             # legends, hints, secondary detail
    "command": "cyan",          # a command worth typing next
    "error": "bold red",        # txlab: error: ...
    "warning": "yellow",
}

# Status words as printed -> their meaning in STYLES (looked up case-insensitively).
WORDS: dict[str, str] = {
    "holds": "held", "held": "held", "ok": "held", "clean": "held", "valid": "held",
    "no anomaly": "held",
    "violated": "violated", "anomaly": "violated", "invalid": "violated",
    "allowed": "allowed", "forbidden": "forbidden",
    "committed": "committed", "commit": "committed",
    "aborted": "aborted", "rolled back": "aborted", "rollback": "aborted", "error": "aborted",
    "failed": "aborted",
    "waiting": "waiting", "waits": "waiting", "waited": "waiting", "blocked": "waiting",
    "declined": "declined",
    "prevented": "prevented",
}
MIN_WIDTH = 40  # narrower than this, layouts stop making sense; wrap at this width anyway


@dataclass(frozen=True)
class Term:
    width: int
    color: bool
    interactive: bool  # the stream is a terminal (live progress lines, step mode)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def detect(stream=None, *, no_color: bool = False, env: Mapping[str, str] | None = None) -> Term:
    """What `stream` (default stdout) can show."""
    stream = sys.stdout if stream is None else stream
    env = os.environ if env is None else env
    tty = _isatty(stream)
    width = 0
    if tty:
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 0
    if not width:
        try:
            width = int(env.get("COLUMNS", ""))
        except ValueError:
            width = 0
    if width <= 0:
        width = DEFAULT_WIDTH if not tty else shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    color = tty and not no_color and "NO_COLOR" not in env and env.get("TERM") != "dumb"
    return Term(max(MIN_WIDTH, width), color, tty)


def plain(width: int = DEFAULT_WIDTH) -> Term:
    """No colour, a fixed width: for files (-o) and tests."""
    return Term(max(MIN_WIDTH, width), False, False)


def console(term: Term, file=None):
    """A rich Console that renders exactly as `term` says."""
    from rich.console import Console

    return Console(
        file=file if file is not None else io.StringIO(),
        width=term.width,
        color_system="standard" if term.color else None,  # None: no escapes at all
        force_terminal=term.color,
        no_color=not term.color,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
        legacy_windows=False,
    )


def style_of(label: str) -> str:
    """The rich style for a printed status word ("VIOLATED", "committed"), or ""."""
    key = label.strip().lower()
    meaning = WORDS.get(key) or WORDS.get(key.split(" ", 1)[0].rstrip(":"), "")
    return STYLES.get(meaning, "")


def styled(text: str, meaning: str):
    """`text` (the label stays the message) in the style named `meaning` in STYLES."""
    from rich.text import Text

    return Text(str(text), style=STYLES.get(meaning, ""))


def word(label: str):
    """A status word styled by what it says: word("VIOLATED") is bold red."""
    from rich.text import Text

    return Text(str(label), style=style_of(str(label)))


def shorten(text: str, width: int) -> str:
    """One line of at most `width` cells: whitespace collapsed, cut with an ellipsis."""
    line = " ".join(str(text).split())
    if width <= 0:
        return ""
    return line if len(line) <= width else line[: max(0, width - 1)].rstrip() + ELLIPSIS


def to_text(renderable, term: Term) -> str:
    """`renderable` (a rich renderable or a plain string) as the text to print."""
    buffer = io.StringIO()
    console(term, buffer).print(renderable)
    return buffer.getvalue()
