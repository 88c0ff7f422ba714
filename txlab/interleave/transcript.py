"""Render a run exactly as PostgreSQL's isolationtester prints it (its stdout).

Result sets follow libpq's PQprint with header, align and fieldSep "|": each
column is as wide as its longest value or name counted in bytes; a column is
right-aligned unless one of its non-empty values looks non-numeric.

The spec's tables live in txlab's own schema (txlab_demo), where the tester puts
them in `public`; a name qualified with txlab's schema (EXPLAIN VERBOSE's
`txlab_demo.jointest`, an error naming a relation) is printed with `public.`, as
the tester prints it. Only the output says `public`: nothing is created, read or
dropped there (public is not even on the sessions' search_path, so a spec's
DROP TABLE can never reach a table of yours).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from txlab.interleave import driver as d


def _blen(text: str) -> int:
    return len(text.encode("utf-8"))


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - _blen(text))
    return fill + text if right else text + fill


def _looks_numeric(value: str) -> bool:
    """libpq's test (fe-print.c do_field) for one non-empty value."""
    last = "0"
    for ch in value:
        last = ch
        if not (ch.isascii() and (ch.isdigit() or ch in ".Ee -")):
            return False
    return value[0] not in "Ee" and last.isascii() and last.isdigit()


def result_set(columns: tuple[str, ...], rows: tuple[tuple[str | None, ...], ...]) -> str:
    if not columns:
        return ""
    widths = [_blen(c) for c in columns]
    numeric = [True] * len(columns)
    for row in rows:
        for j, value in enumerate(row):
            if not value:
                continue
            if numeric[j] and not _looks_numeric(value):
                numeric[j] = False
            widths[j] = max(widths[j], _blen(value))
    out = ["|".join(_pad(c, widths[j], numeric[j]) for j, c in enumerate(columns)) + "\n"]
    out.append("+".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.append("|".join(_pad(v or "", widths[j], numeric[j]) for j, v in enumerate(row)) + "\n")
    out.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n\n")
    return "".join(out)


def as_public(schema: str | None) -> Callable[[str], str]:
    """Text with `schema.` (txlab's schema qualifying a name) written `public.`."""
    if not schema:
        return lambda text: text
    pattern = re.compile(r"(?<![\w$])" + re.escape(schema) + r"\.")
    return lambda text: pattern.sub("public.", text) if schema in text else text


def event_text(event, public: Callable[[str], str] = lambda text: text) -> str:
    if isinstance(event, d.PermutationStarted):
        return "\nstarting permutation:" + "".join(" " + s for s in event.steps) + "\n"
    if isinstance(event, d.StepReport):
        if event.kind == "waiting":
            return f"step {event.step}: {event.sql} <waiting ...>\n"
        if event.kind == "resumed":
            return f"step {event.step}: <... completed>\n"
        return f"step {event.step}: {event.sql}\n"
    if isinstance(event, d.Rows):
        return result_set(event.columns, tuple(tuple(v if v is None else public(v) for v in row)
                                               for row in event.rows))
    if isinstance(event, d.Error):
        if event.severity and event.message:
            return f"{event.severity}:  {public(event.message)}\n"
        return f"{public(event.text)}\n"
    if isinstance(event, d.NoticeEvent):
        return f"{event.session}: {public(event.text)}"
    if isinstance(event, d.NotifyEvent):
        return (f'{event.session}: NOTIFY "{event.channel}" with payload "{event.payload}" '
                f"from {event.sender}\n")
    if isinstance(event, d.Canceled):
        return f"isolationtester: canceling step {event.step} after {event.seconds} seconds\n"
    if isinstance(event, d.Unexpected):
        return f"unexpected result status: {event.status}\n"
    return ""  # Command results are not printed


def render(run: d.SpecRun) -> str:
    out = [f"Parsed test spec with {len(run.sessions)} sessions\n"]
    public = as_public(run.schema)
    for perm in run.runs:
        out.extend(event_text(e, public) for e in perm.events)
    return "".join(out)
