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
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
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
    "running": "held", "not running": "aborted",
    "declined": "declined",
    "prevented": "prevented",
    "safe": "held", "unsafe": "warning",
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


def columns(stream, env: Mapping[str, str] | None = None) -> int:
    """How wide `stream` itself is: its terminal's width when it is one (whatever
    COLUMNS says, and whether or not standard output is redirected), else COLUMNS,
    else 80. Not clamped to MIN_WIDTH: a line that must never wrap (the live
    progress line) needs the real width."""
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
    return width


def detect(stream=None, *, no_color: bool = False, env: Mapping[str, str] | None = None) -> Term:
    """What `stream` (default stdout) can show."""
    stream = sys.stdout if stream is None else stream
    env = os.environ if env is None else env
    tty = _isatty(stream)
    color = tty and not no_color and "NO_COLOR" not in env and env.get("TERM") != "dumb"
    return Term(max(MIN_WIDTH, columns(stream, env)), color, tty)


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


_TRAILING = re.compile(r"[ ]+((?:\x1b\[[0-9;]*m)*)$")


def to_text(renderable, term: Term, soft_wrap: bool = False) -> str:
    """`renderable` (a rich renderable or a plain string) as the text to print;
    `soft_wrap`: as it is, already wrapped (rich would fold a long word).

    rich pads lines to the full width; the padding is stripped so that piped
    output carries no trailing blanks.
    """
    buffer = io.StringIO()
    console(term, buffer).print(renderable, soft_wrap=soft_wrap)
    return "\n".join(_TRAILING.sub(r"\1", line) for line in buffer.getvalue().split("\n"))


# ---------------------------------------------------------------- layouts shared by renderers


def heading(text: str):
    return styled(text, "heading")


def cell(value):
    """A table cell: rich Text stays as it is; status words get their style; the rest str."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    text = "" if value is None else str(value)
    return Text(text, style=style_of(text)) if style_of(text) else Text(text)


def table(headers: Sequence[str], rows: Sequence[Sequence], term: Term, *,
          wrap: Sequence[int] | Mapping[int, int] = (), min_wrap: int = 14,
          right: Sequence[int] = (), stack: bool = True):
    """Rows as a table when it fits `term.width`, else stacked: each row a block
    (its first cell as a heading, then one `header  value` line per other cell).

    wrap: indexes of columns whose cells may wrap (at least `min_wrap` wide), or
    {index: least width}; the others keep their full width.
    right: right-aligned columns (numbers).
    With stack=False the table is always a table (cells wrap as they must).
    """
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
              show_header=bool(headers),
              header_style=STYLES["heading"] if term.color else "")
    least = dict(wrap) if isinstance(wrap, Mapping) else dict.fromkeys(wrap, min_wrap)
    ncols = len(headers) if headers else len(rows[0]) if rows else 0
    widths = _widths(headers, rows, least, term.width) if rows else None
    if stack and rows and widths is None:
        return stacked(headers, rows)
    for i in range(ncols):
        wraps = i in least
        t.add_column(headers[i] if headers else "", no_wrap=not wraps,
                     width=widths[i] if widths else None,
                     justify="right" if i in right else "left", overflow="fold")
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    return t


COLUMN_GAP = 2  # SIMPLE_HEAD without edges: right padding, then the (blank) separator


def _widths(headers, rows, least: Mapping[int, int], width: int) -> list[int] | None:
    """Column widths that fit `width`: columns not in `least` keep their widest cell;
    the widest wrapping column gives up a cell at a time, down to its least width
    (or its longest word). None when even that does not fit."""
    from rich.cells import cell_len

    n = len(rows[0])
    texts = [[str(headers[i]) if headers else ""] + [str(cell(r[i])) for r in rows]
             for i in range(n)]
    natural = [max(cell_len(line) for t in col for line in (t.splitlines() or [""]))
               for col in texts]
    floor = [max(least[i], max((cell_len(w) for t in texts[i] for w in t.split()), default=0))
             if i in least else natural[i] for i in range(n)]
    out = list(natural)
    budget = width - COLUMN_GAP * (n - 1)
    while sum(out) > budget:
        shrinkable = [i for i in range(n) if out[i] > floor[i]]
        if not shrinkable:
            return None
        out[max(shrinkable, key=lambda i: out[i] - floor[i])] -= 1
    return out


def stacked(headers: Sequence[str], rows: Sequence[Sequence]):
    """Each row as a block: the first cell, then `header  value` lines (empty cells left out)."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table

    blocks = []
    for n, row in enumerate(rows):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style=STYLES["muted"])
        grid.add_column(overflow="fold")
        for h, v in zip(headers[1:], row[1:], strict=False):
            if v not in (None, ""):
                grid.add_row(h, cell(v))
        first = cell(row[0])
        first.stylize(STYLES["heading"])
        blocks += ([""] if n else []) + [first, Padding(grid, (0, 0, 0, 2))]
    return Group(*blocks)


def pairs(items: Sequence[tuple[str, object]], term: Term, *, columns: int = 2):
    """key/value pairs, `columns` pairs side by side when they fit, else fewer, down to
    one per line. Values wrap at their spaces, never inside a word: when the widest
    value is all that keeps the others from sitting side by side, it gets a line of its
    own after them; one pair per line, a word longer than the whole line is broken
    after its first '=' (`key=` / `value`), else folded."""
    from rich.cells import cell_len
    from rich.console import Group

    items = [(str(k), v) for k, v in items]
    if not items:
        return ""
    for n in range(min(columns, len(items)), 1, -1):
        widths = _pair_widths(items, n, term.width)
        if widths:
            return _pair_grid(items, n, widths)
        widest = max(items, key=lambda kv: _natural(kv[1]))
        rest = [kv for kv in items if kv is not widest]
        widths = _pair_widths(rest, n, term.width) if len(rest) >= n else None
        if widths:
            key = max(widths[0], cell_len(widest[0]))  # its key in the keys' column
            alone = [key, max(1, term.width - key - COLUMN_GAP)]
            return Group(_pair_grid(rest, n, widths), _pair_grid([widest], 1, alone))
    widths = _pair_widths(items, 1, term.width)
    if widths is None:
        key = max(cell_len(k) for k, _ in items)
        widths = [key, max(1, term.width - key - COLUMN_GAP)]
    return _pair_grid(items, 1, widths)


def _natural(value) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(cell(value)).splitlines()), default=0)


def _pair_rows(items, n: int) -> list[list]:
    rows = []
    for i in range(0, len(items), n):
        chunk = list(items[i:i + n])
        chunk += [("", "")] * (n - len(chunk))
        rows.append([x for kv in chunk for x in kv])
    return rows


def _pair_widths(items, n: int, width: int) -> list[int] | None:
    """Column widths for `items` n pairs a row within `width`: keys whole, values
    narrowed to their longest word at the least; None when that does not fit."""
    return _widths(None, _pair_rows(items, n), dict.fromkeys(range(1, 2 * n, 2), 1), width)


def _pair_grid(items, n: int, widths: list[int]):
    from rich.table import Table

    g = Table.grid(padding=(0, COLUMN_GAP, 0, 0))
    for i in range(2 * n):
        if i % 2:
            g.add_column(overflow="fold", width=widths[i])
        else:
            g.add_column(no_wrap=True, style=STYLES["muted"], width=widths[i])
    for row in _pair_rows(items, n):
        g.add_row(*(x if i % 2 == 0 else cell(_break_long(x, widths[i]))
                    for i, x in enumerate(row)))
    return g


def _break_long(value, width: int):
    """`value` with each word longer than `width` broken after its first '=' (rich
    Text is left as it is; what still does not fit is folded by the table)."""
    from rich.text import Text

    if isinstance(value, Text) or value is None:
        return value
    words = []
    for w in str(value).split(" "):
        eq = w.find("=")
        words.append(w[:eq + 1] + "\n" + w[eq + 1:] if len(w) > width and 0 < eq < width else w)
    return " ".join(words)


def wrapped(text: str, term: Term, indent: int = 0, hang: int = 0, fold: bool = True) -> str:
    """Plain text wrapped to the width line by line, keeping each line's own indent;
    continuation lines get `hang` more spaces. Long words (URLs) are folded, unless
    `fold` is false: then such a word has a line of its own, whole, so that a path
    or a URL can be copied from the terminal."""
    import textwrap

    out = []
    for line in str(text).splitlines() or [""]:
        lead = indent + len(line) - len(line.lstrip(" "))
        body = line.strip()
        if not body:
            out.append("")
            continue
        out += textwrap.wrap(body, width=max(MIN_WIDTH // 2, term.width), initial_indent=" " * lead,
                             subsequent_indent=" " * (lead + hang), break_on_hyphens=False,
                             break_long_words=fold)
    return "\n".join(out)
