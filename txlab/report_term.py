"""The run report's text view: `render(to_dict(result), term)`.

It fits `term.width` (tables wrap their cells or stack into one block per row)
and colours verdicts and outcomes when `term.color`; piped or with -o it is
plain text. It renders report.to_dict() and nothing else: every figure and
verdict it prints is in the JSON too.

Order: title, the story block (to_dict()["story"] and ["next"], when present),
run, performance, outcomes, invariants, anomalies, one example, notes, the
verdict, and the terms `txlab explain` can explain.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rich.console import Group
from rich.text import Text

from txlab import report
from txlab import term as term_mod
from txlab.term import STYLES, Term, heading


def render(d: dict, t: Term) -> str:
    level = report.level_sql(d)
    parts: list = [heading(f"txlab run: {d['scenario']} / {d['strategy']} / {level}")]
    story, tries = report.story_lines(d)
    if story or tries:
        parts += ["", *_story(story, tries, t, d.get("next_note"))]
    parts += _section("Run", term_mod.pairs(report.run_rows(d), t))
    parts += _section(
        "Performance (committed transactions, retries included)",
        term_mod.pairs([("throughput", f"{d['throughput_tps']:.1f} committed/s"),
                        ("latency", report.latency(d))], t, columns=1))
    rows = report.outcome_rows(d)
    room = _outcome_room(rows, t)
    parts += _section("Outcomes", term_mod.table(
        ["outcome", "SQLSTATE", "count"],
        # a label too long for its column goes on indented: its last words ("(retryable)")
        # must not read as a row of their own
        [[_outcome(term_mod.wrapped(r[0], term_mod.plain(room), hang=2)), r[1], r[2]]
         for r in rows],
        t, wrap={0: 30}, right=(2,)))
    parts += _section("Invariants", term_mod.table(
        ["invariant", "verdict", "expected", "actual", "detail"],
        [[i["name"], "HOLDS" if i["holds"] else "VIOLATED", _plain(i["expected"]),
          _plain(i["actual"]), i["detail"]] for i in d["invariants"]],
        t, wrap={0: 20, 2: 16, 3: 16, 4: 28}))
    parts += _section(report.anomaly_title(d), _anomalies(d, t))
    ex = report.example(d)
    if ex:
        parts += _section(f"Example: {ex[0]}", Text(term_mod.wrapped(ex[1], t, hang=4)))
    for note in d["notes"]:
        parts += ["", Text(term_mod.wrapped(f"Note: {note}", t, hang=2))]
    parts.append("")
    parts += [_verdict(line) for line in d["summary"]]
    if d.get("terms"):
        parts += ["", Text("Explain a term: txlab explain " + " | ".join(d["terms"]),
                           style=STYLES["muted"])]
    return term_mod.to_text(Group(*parts), t)


def _section(title: str, body) -> list:
    return ["", heading(title), body]


def _story(story: list[str], tries: list[tuple[str, str]], t: Term,
           note: str | None = None) -> list:
    """The sentences as one paragraph, then "Try next:" with each command and why, and
    what the commands need (`note`)."""
    out: list = [Text(term_mod.wrapped(" ".join(story), t))] if story else []
    if tries:
        out += [""] if story else []
        out.append(heading("Try next:"))
        for command, why in tries:
            out.append(Text(_command_lines(command, t), style=STYLES["command"]))
            if why:
                out.append(Text(term_mod.wrapped(why, t, indent=6)))
        if note:
            out.append(Text(term_mod.wrapped(note, t, indent=2), style=STYLES["muted"]))
    return out


# A shell word: quoted parts ('my dir', "$TXLAB_DSN") keep their spaces.
_WORD = re.compile(r"""(?:'[^']*'|"[^"]*"|[^\s'"])+""")


def _command_lines(command: str, t: Term) -> str:
    """A command to copy, indented 2, wrapped to the width between its words, an option
    kept with its value (`-p accounts=3`), continuation lines indented 6 after a
    trailing backslash, so that the lines pasted into a shell are one command. A word
    wider than the line (a long path) stands whole on a line of its own."""
    groups: list[str] = []
    for w in (m.group(0).replace(" ", "\xa0") for m in _WORD.finditer(command)):
        if groups and groups[-1].startswith("-") and "\xa0" not in groups[-1] \
                and not w.startswith("-"):
            groups[-1] += "\xa0" + w  # a no-break space: wrapped() never splits there
        else:
            groups.append(w)
    room = replace(t, width=max(term_mod.MIN_WIDTH, t.width) - 2)  # for " \\"
    lines = term_mod.wrapped(" ".join(groups), room, indent=2, hang=4, fold=False)
    return " \\\n".join(lines.split("\n")).replace("\xa0", " ")


def _plain(value) -> str:
    return "" if value is None else str(value)


def _outcome_room(rows: list[list], t: Term) -> int:
    """How wide the outcome column can be beside the SQLSTATE and count columns."""
    state = max(len("SQLSTATE"), *(len(str(r[1])) for r in rows))
    count = max(len("count"), *(len(str(r[2])) for r in rows))
    return max(30, t.width - state - count - 2 * term_mod.COLUMN_GAP)


def _outcome(label: str) -> Text:
    word, sep, rest = label.partition(":")
    text = Text(word, style=term_mod.style_of(word))
    return text.append(sep + rest) if sep else text


def _anomalies(d: dict, t: Term):
    level = report.level_sql(d)
    if d["check"] is None:
        return Text(f"not checked ({d.get('check_skipped') or '--no-check'})",
                    style=STYLES["muted"])
    if not d["anomalies"]:
        return Text("none found")
    rows = [[a["kind"], f"{a['count']} {a['unit']}",
             "allowed" if a["status"] == "allowed" else "FORBIDDEN", a["definition"]]
            for a in d["anomalies"]]
    table = term_mod.table(["anomaly", "found", f"at {level}", "what it is"], rows, t,
                           wrap={1: 12, 3: 26})
    violated = [i["name"] for i in d["invariants"] if not i["holds"]]
    if not violated:
        return table
    note = Text(term_mod.wrapped(
        "Counts say what they count (`txlab explain cycle`). The violated invariants ("
        + ", ".join(violated) + ") are the damage; these anomalies are how concurrent "
        "transactions interfered.", t), style=STYLES["muted"])
    return Group(table, "", note)


def _verdict(line: str) -> Text:
    word, sep, rest = line.partition(":")
    if word.startswith("INTERRUPTED"):
        head, _, word = line.partition(". ")
        word, sep, rest = word.partition(":")
        out = Text(head + ". ", style=STYLES["warning"])
    else:
        out = Text()
    style = STYLES["forbidden"] if word.startswith("FORBIDDEN") else term_mod.style_of(word)
    out.append(word, style=style)
    return out.append(sep + rest)

