"""Render demo results: transcript | pretty (classroom timeline) | json, and the matrix.

Renderers format; they never query the database. `pretty` is built from rich
tables and styled text and fitted to the terminal by txlab.term (width, colour
or none); `transcript` is the isolation tester's output byte for byte and is
never wrapped or coloured.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from txlab import db, errors
from txlab import term as terms
from txlab.interleave import driver as d
from txlab.interleave import spec as specs
from txlab.interleave import transcript
from txlab.interleave.demo import (
    LEVEL_ORDER,
    DemoResult,
    Matrix,
    Verdict,
    left_open_note,
    pinned_sessions,
    short_rows,
    step_results,
)

FORMATS = ("pretty", "transcript", "json")

# A verdict's head word -> its meaning in term.STYLES (colour only doubles the word).
HEAD_STYLES = {
    "ANOMALY": "violated", "PREVENTED": "prevented", "NO ANOMALY": "held",
    "COMMITTED": "committed", "DONE": "muted", "WAITED": "waiting", "ABORTED": "aborted",
    "DEADLOCK": "aborted",
}
SQL_WIDTH = 60  # a step's SQL in the side-by-side table is cut to this, with an ellipsis


def level_sql(level: str | None, default: str = "") -> str:
    if level:
        return db.LEVELS[level].sql
    return f"server default ({default.upper()})" if default else "server default"


def render(result: DemoResult, fmt: str, term: terms.Term | None = None,
           timelines: bool | None = None) -> str:
    """`timelines`: print each level's timeline (default: only when one level ran;
    with several, the side-by-side table stands alone)."""
    if fmt == "transcript":
        return render_transcript(result)
    if fmt == "json":
        return json.dumps(to_json(result), indent=2) + "\n"
    return render_pretty(result, term or terms.plain(), timelines)


# ---------------------------------------------------------------- transcript


def render_transcript(result: DemoResult) -> str:
    """isolationtester's output; with several levels, one transcript per level."""
    if len(result.levels) == 1:
        return transcript.render(result.levels[0].run)
    parts = []
    for lr in result.levels:
        parts.append(f"# isolation level: {level_sql(lr.level)}\n")
        parts.append(transcript.render(lr.run))
        parts.append("\n")
    return "".join(parts)


# ---------------------------------------------------------------- json


def _event_json(event) -> dict:
    out = {"type": type(event).__name__}
    out.update(dataclasses.asdict(event))
    if isinstance(event, d.Error) and event.sqlstate:
        out["cause"] = errors.cause_name(errors.classify(event.sqlstate, event.message))
    return out


def _result_json(res) -> dict | None:
    if res is None:
        return None
    if res.has_tuples:
        return {"columns": list(res.columns), "rows": [list(r) for r in res.rows]}
    return {"status": res.status_name, "sqlstate": res.sqlstate, "message": res.message}


def verdict_json(v: Verdict) -> dict:
    return {"outcome": v.outcome, "head": v.head, "line": v.line, "happened": v.happened,
            "cell": v.cell, "expected": v.expected, "as_expected": v.as_expected,
            "undecided": v.undecided, "expectation_note": v.expectation_note,
            "aborted": [dict(zip(("session", "step", "sqlstate", "message"), a, strict=True))
                        for a in v.aborted],
            "waited": [dict(zip(("session", "step"), w, strict=True)) for w in v.waited]}


def _state_json(st: d.StepState) -> dict:
    """The committed tables after a step (driver.StepState), shaped as final_states."""
    return {"step": st.step, "after": st.name,
            "tables": [{"table": label or None,
                        **(_result_json(res) if res is not None else {"error": err})}
                       for label, res, err in st.tables]}


def to_json(result: DemoResult) -> dict:
    meta = result.meta
    levels = []
    for lr in result.levels:
        perms = []
        for run, v in zip(lr.run.runs, lr.verdicts, strict=True):
            states = result.final_states(run)
            perms.append({
                "permutation": list(run.permutation),
                "events": [_event_json(e) for e in run.events],
                "final_state": _result_json(states[0][1]) if states else None,
                "final_states": [{"table": label or None, **(_result_json(res) or {})}
                                 for label, res in states],
                "verdict": verdict_json(v),
                "warnings": run.warnings,
                "step_results": [{"n": r.n, "step": r.step, "session": r.session, "sql": r.sql,
                                  "said": [{"text": t, "meaning": m} for t, m in r.said]}
                                 for r in step_results(result.spec, run)],
                "left_open": list(run.left_open),
                "left_open_note": left_open_note(run.left_open),
            } | ({"states": [_state_json(st) for st in run.states]} if run.states else {}))
        levels.append({"isolation": lr.level,
                       "isolation_sql": level_sql(lr.level, result.default_isolation),
                       "permutations": perms})
    return {"demo": result.name, "title": meta.title, "anomaly": meta.anomaly,
            "story": meta.story, "server_version": result.server_version,
            "sessions": [s.name for s in result.spec.sessions],
            "warnings": list(result.spec.warnings), "levels": levels}


# ---------------------------------------------------------------- building blocks


def text_of(*parts):
    """rich Text from (text, meaning) pairs and plain strings."""
    from rich.text import Text

    out = Text()
    for p in parts:
        if isinstance(p, tuple):
            out.append(p[0], style=terms.STYLES.get(p[1], ""))
        else:
            out.append(p)
    return out


def verdict_text(v: Verdict, mark_unexpected: bool = True):
    """The verdict line: its head word styled by meaning, the rest plain."""
    head = v.head or v.line.split(":", 1)[0]
    rest = v.line[len(head):] if v.line.startswith(head) else ": " + v.line
    parts = [(head, HEAD_STYLES.get(head, "warning")), rest]
    if mark_unexpected and v.expectation_note:
        style = "muted" if v.expect_set_aside else "warning" if v.undecided else "violated"
        parts += ["\n", (v.expectation_note, style)]
    return text_of(*parts)


def cell_text(v: Verdict):
    """The short verdict for tables: `prevented (wait, 40001)`, with ` !` when it
    differs from the demo's expectation and ` ?` when that cannot be told."""
    flag = " !" if v.as_expected is False else " ?" if v.undecided else ""
    return text_of((v.cell + flag, HEAD_STYLES.get(v.head, "warning")))


def _table(**kw):
    from rich import box
    from rich.table import Table

    kw.setdefault("box", box.SIMPLE_HEAD)
    kw.setdefault("show_edge", False)
    kw.setdefault("pad_edge", False)
    kw.setdefault("header_style", terms.STYLES["heading"])
    kw.setdefault("padding", (0, 1, 0, 0))
    return Table(**kw)


def fit(renderables: list, term: terms.Term) -> str:
    """The blocks as text at the terminal's width; no trailing blanks on any line."""
    from rich.console import Group

    text = terms.to_text(Group(*renderables), term)
    return "".join(line.rstrip(" ") + "\n" for line in text.splitlines())


def result_block(columns, rows) -> str:
    """A result set as the isolation tester prints it, without the trailing blank line."""
    return transcript.result_set(columns, rows).rstrip("\n")


# ---------------------------------------------------------------- timeline


@dataclass
class TimelineCell:
    """One row of a timeline: a step launched (numbered) or completing, in its
    session's column, with what it returned."""

    number: str
    session: str | None
    lines: list = field(default_factory=list)  # (text, meaning)


def timeline_cells(spec, events, start: int = 0) -> list[TimelineCell]:
    """Timeline rows from driver events (plain data in, plain data out)."""
    steps = spec.steps()
    cells: list[TimelineCell] = []
    n = start

    def current(session):
        if cells and cells[-1].session == session:
            return cells[-1]
        cells.append(TimelineCell("", session))
        return cells[-1]

    for e in events:
        if isinstance(e, d.StepReport):
            if e.kind == "resumed":
                cells.append(TimelineCell("", e.session, [(f"… {e.step} completes "
                                                           "(it was waiting)", "muted")]))
                continue
            n += 1
            cell = TimelineCell(f"{n}.", e.session, [(f"{e.step}: {e.sql.strip()}", "")])
            if e.kind == "waiting" and e.marker:  # the permutation's marker, not a lock
                cell.lines.append((f"HELD BACK by its {e.marker} marker …", "waiting"))
            elif e.kind == "waiting":
                by = f" for {', '.join(e.blocked_by)}" if e.blocked_by else ""
                cell.lines.append((f"WAITING{by} …", "waiting"))
            cells.append(cell)
        elif isinstance(e, d.Rows) and e.step:
            current(e.session).lines.append((result_block(e.columns, e.rows), ""))
        elif isinstance(e, d.Command) and e.step and e.command:
            if specs.failed_commit(e.command, steps[e.step].sql):
                current(e.session).lines.append(
                    ("→ ROLLBACK (the COMMIT rolled back: the transaction had failed)", "aborted"))
            else:
                meaning = {"COMMIT": "committed", "ROLLBACK": "aborted"}.get(e.command, "")
                current(e.session).lines.append((f"→ {e.command}", meaning))
        elif isinstance(e, d.Error) and e.step:
            cause = errors.cause_name(errors.classify(e.sqlstate, e.message))
            text = f"ERROR {e.sqlstate}: {e.message or e.text}"
            if cause != (e.message or ""):
                text += f"\n({cause})"
            current(e.session).lines.append((text, "aborted"))
        elif isinstance(e, d.NoticeEvent):
            current(e.session).lines.append((f"{e.severity}: {e.message}", "muted"))
        elif isinstance(e, d.Canceled):
            session = spec.sessions[steps[e.step].session].name if e.step in steps else None
            current(session).lines.append(
                (f"step {e.step} cancelled after {e.seconds} s (step timeout)", "aborted"))
    return cells


def timeline_table(spec, cells: list[TimelineCell], term: terms.Term, setups: bool = True):
    sessions = [s.name for s in spec.sessions]
    width = min(term.width, 5 + 46 * len(sessions))
    t = _table(width=width)
    t.add_column("", justify="right", no_wrap=True, width=3)
    for s in sessions:
        t.add_column(s, overflow="fold", ratio=1)
    if setups:
        for sess in spec.sessions:
            if sess.setup:
                t.add_row("", *[text_of((f"(setup) {sess.setup.strip()}", "muted"))
                                if s == sess.name else "" for s in sessions])
    for c in cells:
        body = text_of(*[x for i, line in enumerate(c.lines)
                       for x in ((["\n"] if i else []) + [line])])
        col = sessions.index(c.session) if c.session in sessions else 0
        t.add_row(c.number, *[body if i == col else "" for i in range(len(sessions))])
    return t


def state_blocks(states: list[tuple[str, object]], heading: str = "Final state"):
    """The shown tables as result sets, each under its name."""
    if not states:
        return None
    parts: list = [(heading, "heading")]
    for label, res in states:
        parts.append("\n")
        if label:
            parts.append((f"{label}\n", "muted"))
        if res is None:
            parts.append("  (not read)")
        elif res.has_tuples:
            parts.append("\n".join("  " + ln for ln in result_block(res.columns, res.rows)
                                   .splitlines()))
        else:
            msg = (res.message or res.error_text or res.status_name or "").strip()
            parts.append(f"  (could not read it: {msg})")
    return text_of(*parts)


# ---------------------------------------------------------------- pretty


def header(result: DemoResult):
    from rich.console import Group

    meta = result.meta
    title = meta.title or result.name
    version = f"  ({result.server_version})" if result.server_version else ""
    out: list = [text_of((title, "heading"), (version, "muted"))]
    if meta.story:
        out.append(text_of(meta.story))
    for w in result.spec.warnings:
        out.append(text_of(("warning: ", "warning"), w))
    return Group(*out)


def render_pretty(result: DemoResult, term: terms.Term, timelines: bool | None = None) -> str:

    if timelines is None:
        timelines = len(result.levels) == 1
    blocks: list = [header(result)]
    if timelines:
        for lr in result.levels:
            for run, v in zip(lr.run.runs, lr.verdicts, strict=True):
                blocks.append(text_of(""))
                blocks.extend(_pretty_run(result, lr.level, run, v, term))
    blocks.extend(_side_by_side(result, term))
    if len(result.levels) > 1 or not timelines:
        blocks.extend(_verdicts(result))
    undecided = any(v.undecided for lr in result.levels for v in lr.verdicts)
    if not result.meta.witnesses and (not result.meta.anomaly or undecided):
        blocks += [text_of(""), text_of((
            "txlab cannot tell whether this is an anomaly: the spec has no `# txlab: witness` "
            "line saying what to look for, so the verdict only says what happened (`txlab demo "
            "--new FILE` writes a template that has one; a spec from txlab.testing.interleave "
            "has one when its invariant is SQL: invariant=\"SELECT ...\").", "muted"))]
    return fit(blocks, term)


def _pretty_run(result: DemoResult, level: str | None, run: d.PermutationRun, v: Verdict,
                term: terms.Term) -> list:
    note = db.LEVELS[level].note if level else None
    if level and pinned_sessions(result.spec):  # -i reached no session: say what ran
        note = "for a plain BEGIN only: every session sets its own level"
    out: list = [text_of(("Isolation: ", "heading"), level_sql(level, result.default_isolation),
                       (f"  ({note})" if note else "", "muted")),
                 text_of(("Permutation: ", "heading"), " ".join(run.spelled or run.permutation))]
    out.append(timeline_table(result.spec, timeline_cells(result.spec, run.events), term))
    states = state_blocks(result.final_states(run))
    if states is not None:
        out += [text_of(""), states]
    out += [text_of(""), verdict_text(v)]
    if run.left_open:
        out.append(text_of((left_open_note(run.left_open), "warning")))
    return out


def _verdicts(result: DemoResult) -> list:
    rows = []
    for lr in result.levels:
        for i, (run, v) in enumerate(zip(lr.run.runs, lr.verdicts, strict=True)):
            label = level_sql(lr.level, result.default_isolation)
            if len(lr.run.runs) > 1:
                label += f"\n{' '.join(run.permutation)}"
            rows.append((label if i == 0 or len(lr.run.runs) > 1 else "", v, run))
    t = _table(box=None, show_header=False, padding=(0, 2, 0, 0))
    t.add_column(no_wrap=False, style=terms.STYLES["heading"], max_width=24)
    t.add_column(overflow="fold")
    for label, v, run in rows:
        body = verdict_text(v)
        if run.left_open:
            body.append_text(text_of("\n", (left_open_note(run.left_open), "warning")))
        t.add_row(label, body)
    return [text_of(""), text_of(("Verdicts", "heading")), t]


# ---------------------------------------------------------------- side by side


def _final_cell(result: DemoResult, run: d.PermutationRun) -> str:
    parts = []
    states = result.final_states(run)
    for label, res in states:
        if res is None:
            continue
        text = short_rows(res.rows) if res.has_tuples else "(could not read)"
        parts.append(f"{label}: {text}" if label and len(states) > 1 else text)
    return "\n".join(parts)


def _joined(parts: list):
    if not parts:
        return text_of("ok")
    pieces: list = []
    for i, p in enumerate(parts):
        if i:
            pieces.append(", then ")
        pieces.append(p)
    return text_of(*pieces)


# What the short level headings (db.SHORT) stand for, under a table that uses them.
SHORT_LEGEND = ", ".join(f"{short} = {db.LEVELS[key].sql}" for key, short in db.SHORT.items())


def _side_widths(term: terms.Term, levels: int) -> tuple[int, int, bool]:
    """(level column, step column, short headings) widths: levels get 12 to 24 cells
    (SERIALIZABLE fits), the step the rest (at most 50); two cells between columns.
    Narrower than that (under 80 columns for four levels), the levels are headed RU,
    RC, RR, SER and get 9 cells each (`prevented` fits), the step at least 16, so
    that no word is cut."""
    gaps = 2 * levels
    level_w = (term.width - gaps - 24) // levels
    if level_w < 12:
        level_w = max(9, (term.width - gaps - 16) // levels)
        return level_w, max(16, term.width - gaps - level_w * levels), True
    level_w = min(24, level_w)
    step_w = max(14, min(50, term.width - gaps - level_w * levels))
    return level_w, step_w, False


def _level_head(level: str | None, default: str, short: bool) -> str:
    if short and level in db.SHORT:
        return db.SHORT[level]
    return level_sql(level, default)


def _side_by_side(result: DemoResult, term: terms.Term) -> list:
    """One table per permutation: a row per step, a column per level, so the levels
    can be read across. Only when the demo ran at more than one level."""
    if len(result.levels) < 2:
        return []
    perms = [tuple(r.permutation for r in lr.run.runs) for lr in result.levels]
    if any(p != perms[0] for p in perms):
        return []
    level_w, step_w, short = _side_widths(term, len(result.levels))
    heads = [_level_head(lr.level, result.default_isolation, short) for lr in result.levels]
    out: list = []
    for i in range(len(perms[0])):
        cells = [step_results(result.spec, lr.run.runs[i]) for lr in result.levels]
        title = "Side by side" + (f" (permutation {i + 1}: {' '.join(perms[0][i])})"
                                  if len(perms[0]) > 1 else "")
        t = _table()
        t.add_column("step", overflow="fold", width=step_w)
        for h in heads:
            t.add_column(h, overflow="fold", width=level_w)
        for n, first in enumerate(cells[0]):
            label = f"{first.n}. {first.step}: {terms.shorten(first.sql, SQL_WIDTH)}"
            t.add_row(label, *[_joined(list(c[n].said)) if n < len(c) else "" for c in cells])
        finals = [_final_cell(result, lr.run.runs[i]) for lr in result.levels]
        if any(finals):
            t.add_row(text_of(("final state", "heading")), *finals)
        t.add_row(text_of(("verdict", "heading")), *[cell_text(lr.verdicts[i])
                                                   for lr in result.levels])
        out += [text_of(""), text_of((title, "heading")), t]
        if short:
            out.append(text_of((SHORT_LEGEND, "muted")))
    return out


# ---------------------------------------------------------------- list


def render_list(rows: list[tuple[str, str]], term: terms.Term | None = None) -> str:
    """`demo --list`: each demo's name and title, fitted to the width."""
    t = _table(box=None, show_header=False, padding=(0, 2, 0, 0))
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    for name, title in rows:
        t.add_row(name, text_of((title, "muted")))
    return fit([t], term or terms.plain())


# ---------------------------------------------------------------- matrix

LEGEND = (
    "ANOMALY = the anomaly's witness held. prevented (wait) = a session waited for a lock, and "
    "the anomaly did not occur; prevented (SQLSTATE) = a transaction was aborted with that error, "
    "and the anomaly did not occur; no anomaly = it did not occur and nothing had to wait or "
    "abort. Demos that look for no anomaly say what happened: committed, waited, aborted "
    "(SQLSTATE), deadlock (40P01: one session chosen as the victim), false positive (aborted "
    "though nothing needed preventing). ! = differs from the catalog's expectation.")


def matrix_json(matrix: Matrix) -> dict:
    return {
        "server_version": matrix.server_version,
        "levels": list(matrix.levels),
        "rows": [{"demo": name, "title": title,
                  "cells": {lvl: {"outcome": v.outcome, "expected": v.expected,
                                  "as_expected": v.as_expected, "line": v.line,
                                  "cell": v.cell, "head": v.head}
                            for lvl, v in zip(matrix.levels, vs, strict=True)}}
                 for name, title, vs in matrix.rows],
        "mismatches": [dict(zip(("demo", "level", "expected", "outcome"), m, strict=True))
                       for m in matrix.mismatches],
    }


def render_matrix(matrix: Matrix, fmt: str = "pretty", term: terms.Term | None = None) -> str:

    if fmt == "json":
        return json.dumps(matrix_json(matrix), indent=2) + "\n"
    term = term or terms.plain()
    t = _table(leading=1 if term.width < 120 else 0)  # wrapped rows need a gap between them
    level_w, name_w, short = _side_widths(term, len(LEVEL_ORDER))
    t.add_column("demo", overflow="fold", width=min(name_w, 40))
    for lvl in LEVEL_ORDER:
        t.add_column(_level_head(lvl, "", short), overflow="fold", width=level_w)
    for name, title, verdicts in matrix.rows:
        label = text_of((name, "heading"), ("  " + title, "muted") if title and title != name else "")
        t.add_row(label, *[cell_text(v) for v in verdicts])
    bad = matrix.mismatches
    if bad:
        tail = [text_of((f"{len(bad)} cell(s) differ from the catalog's expectations (marked !):",
                       "violated"))]
        tail += [text_of(f"  {n} at {lvl}: expected {exp}, got {got}") for n, lvl, exp, got in bad]
    else:
        tail = [text_of((f"All {len(matrix.rows) * len(matrix.levels)} cells match the catalog's "
                       "expectations (the verified matrix).", "held"))]
    blocks = [text_of((f"txlab demo matrix on {matrix.server_version}: what each isolation level "
                     "does", "heading")), text_of(""), t, text_of(""),
              *([text_of((SHORT_LEGEND, "muted"))] if short else []), text_of((LEGEND, "muted")),
              text_of(""), *tail]
    return fit(blocks, term)
