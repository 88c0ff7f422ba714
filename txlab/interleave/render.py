"""Render demo results: transcript | pretty (classroom timeline) | json, and the matrix.

Renderers format; they never query the database.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

from txlab import db, errors
from txlab.interleave import driver as d
from txlab.interleave import transcript
from txlab.interleave.demo import LEVEL_ORDER, OUTCOME_LABELS, DemoResult, Matrix

FORMATS = ("pretty", "transcript", "json")


def _level_sql(level: str | None, default: str = "") -> str:
    if level:
        return db.LEVELS[level].sql
    return f"server default ({default.upper()})" if default else "server default"


def render(result: DemoResult, fmt: str) -> str:
    if fmt == "transcript":
        return render_transcript(result)
    if fmt == "json":
        return json.dumps(to_json(result), indent=2) + "\n"
    return render_pretty(result)


# ---------------------------------------------------------------- transcript


def render_transcript(result: DemoResult) -> str:
    """isolationtester's output; with several levels, one transcript per level."""
    if len(result.levels) == 1:
        return transcript.render(result.levels[0].run)
    parts = []
    for lr in result.levels:
        parts.append(f"# isolation level: {_level_sql(lr.level)}\n")
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


def to_json(result: DemoResult) -> dict:
    meta = result.meta
    levels = []
    for lr in result.levels:
        perms = []
        for run, v in zip(lr.run.runs, lr.verdicts, strict=True):
            final = run.final[-1] if meta.show and run.final else None
            perms.append({
                "permutation": list(run.permutation),
                "events": [_event_json(e) for e in run.events],
                "final_state": _result_json(final),
                "verdict": {"outcome": v.outcome, "line": v.line, "expected": v.expected,
                            "as_expected": v.as_expected,
                            "aborted": [dict(zip(("session", "step", "sqlstate", "message"), a, strict=True))
                                        for a in v.aborted],
                            "waited": [dict(zip(("session", "step"), w, strict=True)) for w in v.waited]},
                "warnings": run.warnings,
            })
        levels.append({"isolation": lr.level,
                       "isolation_sql": _level_sql(lr.level, result.default_isolation),
                       "permutations": perms})
    return {"demo": result.name, "title": meta.title, "anomaly": meta.anomaly,
            "story": meta.story, "server_version": result.server_version,
            "sessions": [s.name for s in result.spec.sessions],
            "warnings": list(result.spec.warnings), "levels": levels}


# ---------------------------------------------------------------- pretty

COL = 40  # width of one session's column


def _cell_lines(text: str, width: int) -> list[str]:
    out = []
    for raw in text.splitlines() or [""]:
        out.extend(textwrap.wrap(raw, width, replace_whitespace=False, drop_whitespace=False,
                                 break_long_words=True) or [""])
    return out


class _Timeline:
    def __init__(self, sessions: tuple[str, ...]):
        self.sessions = sessions
        self.lines: list[str] = []

    def put(self, session: str | None, text: str, mark: str = "") -> None:
        col = self.sessions.index(session) if session in self.sessions else 0
        for i, line in enumerate(_cell_lines(text, COL - 2)):
            prefix = f"{mark:>4} " if i == 0 and mark else "     "
            self.lines.append((prefix + " " * (COL * col) + line).rstrip())

    def rule(self) -> None:
        self.lines.append("     " + "-" * (COL * len(self.sessions) - 2))


def _table(columns, rows) -> str:
    text = transcript.result_set(columns, rows)
    return text.rstrip("\n")


def render_pretty(result: DemoResult) -> str:
    meta, out = result.meta, []
    title = meta.title or result.name
    out.append(f"{title}  ({result.server_version})")
    out.append("=" * len(out[0]))
    if meta.story:
        out.extend(textwrap.wrap(meta.story, 4 + COL * 2))
    for w in result.spec.warnings:
        out.append(f"warning: {w}")
    summary = []
    for lr in result.levels:
        for run, v in zip(lr.run.runs, lr.verdicts, strict=True):
            out.append("")
            out.extend(_pretty_run(result, lr.level, run, v))
            summary.append((_level_sql(lr.level, result.default_isolation),
                            " ".join(run.permutation), v))
    out.extend(_side_by_side(result))
    if len(summary) > 1:
        out.append("")
        out.append("Summary")
        width = max(len(s[0]) for s in summary)
        for level, perm, v in summary:
            flag = "" if v.as_expected in (None, True) else f"   (expected {v.expected}!)"
            out.append(f"  {level:<{width}}  {OUTCOME_LABELS[v.outcome]:<21} {perm}{flag}")
    return "\n".join(out) + "\n"


def _pretty_run(result: DemoResult, level: str | None, run: d.PermutationRun, v) -> list[str]:
    sessions = tuple(s.name for s in result.spec.sessions)
    head = f"Isolation: {_level_sql(level, result.default_isolation)}"
    note = db.LEVELS[level].note if level else None
    lines = [head + (f"  ({note})" if note else ""), f"Permutation: {' '.join(run.permutation)}", ""]
    steps = result.spec.steps()
    tl = _Timeline(sessions)
    tl.lines.append("     " + "".join(f"{s:<{COL}}" for s in sessions).rstrip())
    tl.rule()
    for sess in result.spec.sessions:
        if sess.setup:
            tl.put(sess.name, f"(setup) {sess.setup.strip()}")
    n = 0
    for e in run.events:
        if isinstance(e, d.StepReport):
            if e.kind == "resumed":
                tl.put(e.session, f"... {e.step} completes (it was waiting)", "")
                continue
            n += 1
            tl.put(e.session, f"{e.step}: {e.sql.strip()}", f"{n}.")
            if e.kind == "waiting":
                by = f" for {', '.join(e.blocked_by)}" if e.blocked_by else ""
                tl.put(e.session, f"WAITING{by} ...")
        elif isinstance(e, d.Rows) and e.step:
            tl.put(e.session, _table(e.columns, e.rows))
        elif isinstance(e, d.Command) and e.step and e.command:
            note = ""
            if e.command == "ROLLBACK" and "COMMIT" in steps[e.step].sql.upper():
                note = "  (COMMIT rolled back: the transaction had failed)"
            tl.put(e.session, f"-> {e.command}{note}")
        elif isinstance(e, d.Error) and e.step:
            cause = errors.cause_name(errors.classify(e.sqlstate, e.message))
            tl.put(e.session, f"ERROR {e.sqlstate}: {e.message or e.text}")
            if cause != (e.message or ""):
                tl.put(e.session, f"   ({cause})")
        elif isinstance(e, d.NoticeEvent):
            tl.put(e.session, f"{e.severity}: {e.message}")
        elif isinstance(e, d.Canceled):
            tl.put(None, f"step {e.step} cancelled after {e.seconds} s (step timeout)")
    tl.rule()
    lines.extend(tl.lines)
    final = run.final[-1] if result.meta.show and run.final else None
    if final is not None and final.has_tuples:
        lines += ["", "Final state:"]
        lines += ["  " + ln for ln in _table(final.columns, final.rows).splitlines()]
    lines.append("")
    lines.append(v.line)
    if v.expected is not None and not v.as_expected:
        lines.append(f"UNEXPECTED: the catalog expects '{v.expected}' at this level")
    return lines


# ---------------------------------------------------------------- side by side

SIDE_SQL = 30  # width of the step column of the side-by-side table
SIDE_CELL = 23  # width of one level's column


def _short_rows(rows) -> str:
    if not rows:
        return "0 rows"
    text = "; ".join("|".join("" if v is None else v for v in row) for row in rows)
    return text if len(rows) <= 3 else f"{len(rows)} rows: {text}"


def _final_cell(result: DemoResult, run: d.PermutationRun) -> str:
    final = run.final[-1] if result.meta.show and run.final else None
    if final is None or not final.has_tuples:
        return ""
    return _short_rows(final.rows)


def _step_cells(result: DemoResult, run: d.PermutationRun) -> list[tuple[str, str]]:
    """(step label, what happened to it) for each step of one run, in order."""
    steps = result.spec.steps()
    out: list[list] = []
    last: dict[str, int] = {}  # step name -> its latest row in `out`
    for e in run.events:
        if isinstance(e, d.StepReport):
            if e.kind == "resumed":
                continue
            last[e.step] = len(out)
            sql = " ".join(e.sql.split())
            out.append([f"{len(out) + 1}. {e.step}: {sql}", []])
            if e.kind == "waiting":
                out[-1][1].append("waits")
            continue
        step = getattr(e, "step", None)
        if step is None or step not in last:
            continue
        parts = out[last[step]][1]
        if isinstance(e, d.Rows):
            parts.append(_short_rows(e.rows))
        elif isinstance(e, d.Command) and e.command:
            failed = e.command == "ROLLBACK" and "COMMIT" in steps[step].sql.upper()
            parts.append("ROLLBACK (failed)" if failed else e.command)
        elif isinstance(e, d.Error):
            parts.append(f"ERROR {e.sqlstate or ''}".rstrip())
        elif isinstance(e, d.Canceled):
            parts.append("cancelled")
    return [(label, ", then ".join(parts) if parts else "ok") for label, parts in out]


def _side_by_side(result: DemoResult) -> list[str]:
    """One table per permutation: a row per step, a column per level, so the levels
    can be read across. Only when the demo ran at more than one level."""
    if len(result.levels) < 2:
        return []
    perms = [tuple(r.permutation for r in lr.run.runs) for lr in result.levels]
    if any(p != perms[0] for p in perms):
        return []
    heads = [_level_sql(lr.level, result.default_isolation) for lr in result.levels]
    out: list[str] = []
    for i in range(len(perms[0])):
        cells = [_step_cells(result, lr.run.runs[i]) for lr in result.levels]
        verdicts = [_cell(lr.verdicts[i]) for lr in result.levels]
        out += ["", "Side by side" + (f" (permutation {i + 1})" if len(perms[0]) > 1 else ""),
                f"{'step':<{SIDE_SQL}}  " + "  ".join(f"{h:<{SIDE_CELL}}" for h in heads).rstrip(),
                "-" * (SIDE_SQL + (SIDE_CELL + 2) * len(heads))]
        labels = [label for label, _ in cells[0]]
        rows = [[label] + [c[n][1] if n < len(c) else "" for c in cells]
                for n, label in enumerate(labels)]
        finals = [_final_cell(result, lr.run.runs[i]) for lr in result.levels]
        if any(finals):
            rows.append(["final state"] + finals)
        rows.append(["verdict"] + verdicts)
        for row in rows:
            label = textwrap.wrap(row[0], SIDE_SQL) or [""]
            cols = [label[:2]] + [_cell_lines(c, SIDE_CELL) for c in row[1:]]
            if len(label) > 2:
                cols[0][1] = cols[0][1][:SIDE_SQL - 3] + "..."
            for k in range(max(len(c) for c in cols)):
                parts = [(c[k] if k < len(c) else "") for c in cols]
                out.append((f"{parts[0]:<{SIDE_SQL}}  "
                            + "  ".join(f"{x:<{SIDE_CELL}}" for x in parts[1:])).rstrip())
    return out


# ---------------------------------------------------------------- matrix


def _cell(v) -> str:
    if v.outcome == "anomaly":
        label = "ANOMALY"
    elif v.outcome == "abort":
        code = v.aborted[0][2] if v.aborted else "abort"
        word = "prevented" if v.teaching else "aborted"
        label = f"{word} ({'wait, ' if v.waited else ''}{code})"
    elif v.outcome == "wait":
        label = "prevented (wait)" if v.teaching else "waited"
    else:
        label = "no anomaly" if v.teaching else "ok"
    return label + (" !" if v.expected is not None and v.expected != v.outcome else "")


def render_matrix(matrix: Matrix, fmt: str = "pretty") -> str:
    if fmt == "json":
        return json.dumps({
            "server_version": matrix.server_version,
            "levels": list(matrix.levels),
            "rows": [{"demo": name, "title": title,
                      "cells": {lvl: {"outcome": v.outcome, "expected": v.expected, "line": v.line}
                                for lvl, v in zip(matrix.levels, vs, strict=True)}}
                     for name, title, vs in matrix.rows],
            "mismatches": [dict(zip(("demo", "level", "expected", "outcome"), m, strict=True))
                           for m in matrix.mismatches],
        }, indent=2) + "\n"
    heads = [db.LEVELS[lvl].sql for lvl in LEVEL_ORDER]
    table = [[_cell(v) for v in verdicts] for _n, _t, verdicts in matrix.rows]
    name_w = max(len(n) for n, _, _ in matrix.rows)
    cell_w = max(len(c) for c in heads + [c for row in table for c in row])
    out = [f"txlab demo matrix on {matrix.server_version}: what each isolation level does",
           "", " " * name_w + "  " + "  ".join(f"{h:<{cell_w}}" for h in heads).rstrip(),
           "-" * (name_w + (cell_w + 2) * len(heads))]
    for (name, _title, _v), cells in zip(matrix.rows, table, strict=True):
        out.append(f"{name:<{name_w}}  " + "  ".join(f"{c:<{cell_w}}" for c in cells).rstrip())
    out += [""] + textwrap.wrap(
        "ANOMALY = the anomaly occurred; prevented (wait) = a session waited for a lock and then "
        "saw a consistent state; prevented (SQLSTATE) = a transaction was aborted with that "
        "error; no anomaly = nothing had to happen. Demos without an anomaly to look for say "
        "waited, aborted (SQLSTATE) or ok. ! = differs from the catalog's expectation.",
        100)
    out.append("")
    bad = matrix.mismatches
    if bad:
        out.append(f"{len(bad)} cell(s) differ from the catalog's expectations (marked !):")
        out += [f"  {n} at {lvl}: expected {exp}, got {got}" for n, lvl, exp, got in bad]
    else:
        out.append(f"All {len(matrix.rows) * len(matrix.levels)} cells match the catalog's "
                   "expectations (the verified matrix).")
    return "\n".join(out) + "\n"
