"""render(result, format): the run report as text, markdown or JSON. Never queries.

`to_dict` is the report's data; the text view (txlab.report_term, for terminals
and plain files) and the markdown view below render it and add nothing.
"""

from __future__ import annotations

import json

from txlab import story
from txlab.checker import models
from txlab.errors import RETRYABLE, cause_name, cause_sqlstate
from txlab.runner import RunResult
from txlab.stats import INTERRUPTED_CAUSE

FORMATS = ("text", "json", "markdown")  # "table" is the old name of "text"


def to_dict(r: RunResult) -> dict:
    """The JSON report; its keys are a documented contract (docs/report-format.md)."""
    out = _data(r)
    out.update(story.tell(out))  # "story", "next": [{"command", "why"}], "next_note"
    return out


def _data(r: RunResult) -> dict:
    o = r.outcomes
    return {
        "scenario": r.scenario,
        "strategy": r.strategy,
        "isolation": r.isolation.key,
        "workers": r.workers,
        "seed": r.seed,
        "duration_s": round(r.duration_s, 3),
        "server": r.server,
        "interrupted": r.interrupted,
        "outcomes": {
            "committed": o.committed,
            "declined": o.declined,
            "retries": o.retries,
            "aborted": dict(sorted(o.aborted.items())),
            "failed": o.failed,
            "unknown": o.unknown,
            "declined_reasons": dict(sorted(o.declined_reasons.items())),
        },
        "throughput_tps": round(r.throughput_tps, 2),
        "latency_ms": {k: (round(v, 3) if v is not None else None) for k, v in r.latency_ms.items()},
        "invariants": [
            {"name": i.name, "holds": i.holds, "expected": i.expected, "actual": i.actual,
             "detail": i.detail, "story": i.story}
            for i in r.invariants
        ],
        "anomalies": anomalies(r),
        "check": None if r.check is None else {
            "model": r.check.model, "verdict": r.check.verdict, "forbidden": r.check.forbidden,
            "unknown": r.check.unknown, "parts": r.check.stats.get("parts", 1),
            "empty_graph": r.check.empty_graph,
        },
        "verdict": verdict(r),
        "params": r.params,
        "think_ms": r.think_ms,
        "retries": r.retries,
        "notes": notes(r),
        "declared": r.declared,
        "rerun": r.rerun,
        "terms": terms(r),
        "summary": summary(r),
        "failure": r.failure,
        "schema_taken": r.schema_taken,
        "checks_unreachable": r.checks_unreachable,
        "load_whole": r.load_whole,
        "history_error": r.history_error,
        "invariants_unchecked": list(r.invariants_unchecked),
        "check_skipped": r.check_skipped,
    }


def verdict(r: RunResult) -> str:
    """HOLDS, or VIOLATED when an invariant failed or an anomaly the level forbids occurred;
    INCOMPLETE when neither was found but some invariants could not be checked."""
    if r.failed_verdict:
        return "VIOLATED"
    return "INCOMPLETE" if r.invariants_unchecked else "HOLDS"


def anomalies(r: RunResult) -> list[dict]:
    """The checker's findings, most severe first: kind, count, status, definition, example
    (the first example's text) and examples (the checker's data for each: transactions,
    cycle steps, text)."""
    if r.check is None:
        return []
    out = []
    for kind, a in r.check.anomalies.items():
        examples = a.get("examples") or []
        out.append({"kind": kind, "count": a["count"],
                    "unit": a.get("unit") or models.count_unit(kind, a["count"]),
                    "status": a["status"],
                    "definition": a.get("definition", ""),
                    "example": examples[0].get("text", "") if examples else "",
                    "examples": examples})
    return out


def terms(r: RunResult) -> list[str]:
    """The terms this report prints that `txlab explain` explains, in order of appearance."""
    out = [r.strategy, r.isolation.sql]
    out += [c for c in sorted(r.outcomes.aborted, key=lambda c: -r.outcomes.aborted[c])]
    if r.outcomes.declined:
        out.append("declined")
    if r.retries or r.outcomes.retries:
        out.append("retries")
    out += [a["kind"] for a in anomalies(r)]
    if r.check is not None:
        out.append("model")
    from txlab import glossary

    known = glossary.index()
    return list(dict.fromkeys(t for t in out if glossary.key(t) in known))


def notes(r: RunResult) -> list[str]:
    out = []
    if r.isolation.note:
        out.append(r.isolation.note)
    if r.interrupted and r.load_whole:
        out.append("INTERRUPTED: the load ran to its end; the checks after it were stopped "
                   "(what they could not check is said below).")
    elif r.interrupted:
        out.append("INTERRUPTED: the run was stopped early; in-flight transactions were rolled back.")
    unread = story.unread_params({"declared": r.declared, "params": r.params,
                                  "strategy": r.strategy})
    if unread:
        whose = sorted({s for readers in unread.values() for s in readers})
        out.append(f"{', '.join(unread)} changed nothing: the {r.strategy} strategy does not "
                   f"read {'it' if len(unread) == 1 else 'them'} (only {', '.join(whose)} "
                   f"{'does' if len(whose) == 1 else 'do'}).")
    if r.schema_taken:
        out.append(f"SCHEMA TAKEN: {r.failure}. The report covers the run until then; the "
                   "history has every attempt recorded, but the final state is not this run's "
                   "alone, so nothing was judged.")
    elif r.failure:
        out.append(f"SERVER LOST: {r.failure}. The report covers the run until then; the history "
                   "has every attempt recorded.")
    if r.history_error:
        out.append(f"HISTORY NOT WRITTEN: {r.history_error}.")
    if r.invariants_unchecked:
        why = story.why_unchecked({"schema_taken": r.schema_taken, "failure": r.failure,
                                   "checks_unreachable": r.checks_unreachable})
        out.append(f"invariants not checked ({why}): {', '.join(r.invariants_unchecked)}.")
    if r.check_skipped and r.history_error:
        out.append(f"the anomaly check did not run ({r.check_skipped}).")
    elif r.check_skipped:
        out.append(f"the anomaly check did not run ({r.check_skipped}); run `txlab check` on the "
                   "history file (--history) to check it later.")
    if r.outcomes.unknown:
        out.append(f"{r.outcomes.unknown} transactions lost their connection during COMMIT: "
                   "their outcome is unknown.")
    worn = _work_ran_out(r)
    if worn:
        out.append(worn)
    if r.violated and r.check is not None and not r.check.anomalies:
        out.append("an invariant was violated but the history checker found no anomaly: it sees "
                   "only the row versions transactions read or wrote, not the rows a predicate "
                   "would have matched but never returned (a phantom: a row one transaction "
                   "inserted after another's count or search had run without it). See "
                   "docs/checker.md.")
    return out


DECLINED_MOST = 0.9  # at least this share of the ended transactions declined: say why


def _work_ran_out(r: RunResult) -> str | None:
    """A note for a run whose transactions were nearly all declined by the scenario's
    own rules (on-call: once every shift is down to its last doctor, every request
    is declined): throughput counts the few that committed, which looks like a
    slow database on a projector."""
    o = r.outcomes
    ended = o.committed + o.declined
    if ended < 100 or o.declined < DECLINED_MOST * ended:
        return None
    shorter = " A short run (-n 100) tells the same story." if ended > 1000 else ""
    return (f"{o.declined:,} of {ended:,} transactions were declined by the scenario's own "
            f"rules: the work it can do ran out early in the run, and throughput counts only "
            f"the {o.committed:,} committed.{shorter}")


def summary(r: RunResult) -> list[str]:
    """The closing verdict lines every view prints."""
    bad = [i.name for i in r.invariants if not i.holds]
    prefix = ("" if not r.interrupted else "INTERRUPTED: checks cut short. " if r.load_whole
              else "INTERRUPTED: partial run. ")
    if bad:
        lines = [f"{prefix}VIOLATED: {len(bad)} of {len(r.invariants)} invariants violated "
                 f"({', '.join(bad)})"]
    elif r.invariants_unchecked:
        lines = [f"{prefix}NOT CHECKED: {len(r.invariants_unchecked)} of "
                 f"{len(r.invariants) + len(r.invariants_unchecked)} invariants not checked; "
                 f"the {len(r.invariants)} checked held"]
    else:
        o = r.outcomes
        idle = not (o.committed or o.declined or o.unknown or sum(o.aborted.values()))
        lines = [f"{prefix}HOLDS: " + ("the invariant held" if len(r.invariants) == 1
                                        else f"all {len(r.invariants)} invariants held")
                 + (" (no transaction ran: nothing was tested)" if idle else "")]
    if r.forbidden:
        lines.append(f"FORBIDDEN ANOMALY: {', '.join(r.forbidden)} found at {r.isolation.sql}, "
                     "which forbids it: a database or harness bug")
    return lines


# ---------------------------------------------------------------- views of to_dict


def render(r: RunResult, fmt: str = "text", term=None) -> str:
    """The report as `fmt`; `term` (txlab.term.Term) sets the text view's width and
    colour (default: plain, 80 columns)."""
    d = to_dict(r)
    if fmt == "json":
        return json.dumps(d, indent=2, default=str) + "\n"
    if fmt == "markdown":
        return markdown(d)
    if fmt in ("text", "table"):
        from txlab import report_term
        from txlab import term as term_mod

        return report_term.render(d, term or term_mod.plain())
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def level_sql(d: dict) -> str:
    from txlab.db import LEVELS

    return LEVELS[d["isolation"]].sql if d["isolation"] in LEVELS else d["isolation"]


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def run_rows(d: dict) -> list[tuple[str, object]]:
    params = " ".join(f"{k}={v}" for k, v in d["params"].items())
    return [("scenario", d["scenario"]), ("server", d["server"]), ("strategy", d["strategy"]),
            ("seed", d["seed"]), ("isolation", level_sql(d)), ("workers", d["workers"]),
            ("duration", f"{d['duration_s']:.2f} s"), ("think time", f"{d['think_ms']:g} ms"),
            ("retries allowed", d["retries"]), ("params", params)]


def latency(d: dict) -> str:
    lat = d["latency_ms"]
    return (f"p50 {ms(lat['p50'])} / p95 {ms(lat['p95'])} / p99 {ms(lat['p99'])} / "
            f"max {ms(lat['max'])} ms")


def outcome_rows(d: dict) -> list[list]:
    """[outcome, SQLSTATE, count] rows; the first column starts with the status word."""
    o = d["outcomes"]
    reasons = o["declined_reasons"]
    # one reason: its count is the row's; several: a row each, under the total (inside
    # the label, their counts wrapped into a line that read as another row's)
    why = next(iter(reasons)) if len(reasons) == 1 else ""
    rows = [["committed", "", o["committed"]],
            ["declined by business rule" + (": " + why if why else ""), "", o["declined"]]]
    if len(reasons) > 1:
        rows += [[f"  - {k}", "", v] for k, v in reasons.items()]
    for cause, n in sorted(o["aborted"].items(), key=lambda kv: -kv[1]):
        name = "rolled back at interrupt" if cause == INTERRUPTED_CAUSE else cause_name(cause)
        tag = " (retryable)" if cause in RETRYABLE else ""
        rows.append([f"aborted: {name}{tag}", cause_sqlstate(cause) or "-", n])
    if not o["aborted"]:
        rows.append(["aborted", "", 0])
    rows += [["retries", "", o["retries"]], ["failed after all retries", "", o["failed"]]]
    if o.get("unknown"):
        rows.append(["unknown (connection lost in COMMIT)", "", o["unknown"]])
    return rows


def anomaly_title(d: dict) -> str:
    c = d["check"]
    if c is None:
        return "Anomalies in the history"
    text = f"Anomalies in the history (checked against the {c['model']} model: {c['verdict']})"
    if c["unknown"]:
        text += f"; search timed out for {', '.join(c['unknown'])}"
    elif c.get("empty_graph"):
        text += "; no dependency between the transactions, so no cycle to look for"
    return text


def example(d: dict) -> tuple[str, str] | None:
    found = d["anomalies"]
    pick = next((a for a in found if a["status"] == "forbidden" and a["example"]), None)
    pick = pick or next((a for a in found if a["example"]), None)
    return (pick["kind"], pick["example"]) if pick else None


def story_lines(d: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """What to_dict()["story"] (sentences) and ["next"] ({"command", "why"} each) hold,
    as (sentences, [(command, why)]); every view prints them first. Either key may be
    absent; a plain string stands for a list of one."""
    story = d.get("story") or []
    story = [story] if isinstance(story, str) else [str(x) for x in story if x]
    tries = []
    for item in d.get("next") or []:
        if isinstance(item, dict):
            tries.append((str(item.get("command", "")), str(item.get("why", ""))))
        else:
            tries.append((str(item), ""))
    return story, tries


def markdown(d: dict) -> str:
    from tabulate import tabulate

    def table(headers, rows):
        return tabulate(rows, headers=headers or [""] * len(rows[0]), tablefmt="github",
                        disable_numparse=True)

    parts = [f"# txlab run: {d['scenario']} / {d['strategy']} / {level_sql(d)}"]
    story, tries = story_lines(d)
    if story:
        parts.append(" ".join(story))
    if tries:
        parts.append("Try next:\n\n" + "\n".join(f"- `{c}`" + (f": {w}" if w else "")
                                                   for c, w in tries))
        if d.get("next_note"):
            parts.append(d["next_note"])
    run = run_rows(d)
    parts.append("## Run\n" + table([], [[k, v, *(run[i + 1] if i + 1 < len(run) else ("", ""))]
                                           for i, (k, v) in enumerate(run) if i % 2 == 0]))
    parts.append("## Performance (latency of committed transactions, including their retries)\n"
                 + table([], [["throughput", f"{d['throughput_tps']:.1f} committed/s"],
                              ["latency", latency(d)]]))
    parts.append("## Outcomes\n" + table(["outcome", "SQLSTATE", "count"], outcome_rows(d)))
    parts.append("## Invariants\n" + table(
        ["invariant", "verdict", "expected", "actual", "detail"],
        [[i["name"], "HOLDS" if i["holds"] else "**VIOLATED**", i["expected"], i["actual"],
          i["detail"]] for i in d["invariants"]]))
    level = level_sql(d)
    if d["check"] is None:
        anom = [[f"not checked ({d.get('check_skipped') or '--no-check'})", "", "", ""]]
    else:
        anom = [[a["kind"], f"{a['count']} {a['unit']}",
                 "allowed" if a["status"] == "allowed" else "**FORBIDDEN**", a["definition"]]
                for a in d["anomalies"]] or [["none found", "", "", ""]]
    parts.append(f"## {anomaly_title(d)}\n" + table(["anomaly", "found", f"at {level}",
                                                      "what it is"], anom))
    ex = example(d)
    if ex:
        parts.append(f"## Example: {ex[0]}\n```\n{ex[1]}\n```")
    parts += [f"Note: {n}" for n in d["notes"]]
    parts.append("\n".join(f"**{line}**" for line in d["summary"]))
    if d.get("terms"):
        parts.append("Explain a term: " + ", ".join(f"`txlab explain {t}`" for t in d["terms"]))
    return "\n\n".join(parts) + "\n"
