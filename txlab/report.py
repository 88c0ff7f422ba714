"""render(result, format): the run report as table, markdown or JSON. Never queries."""

from __future__ import annotations

import json
import textwrap

from tabulate import tabulate

from txlab import story
from txlab.errors import RETRYABLE, cause_name, cause_sqlstate
from txlab.runner import RunResult
from txlab.stats import INTERRUPTED_CAUSE

FORMATS = ("table", "json", "markdown")
STORY_WIDTH = 80


def to_dict(r: RunResult) -> dict:
    """The JSON report; its keys are a documented contract (docs/report-format.md)."""
    out = _data(r)
    out.update(story.tell(out))  # "story": [sentences], "next": [{"command", "why"}]
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
            "unknown": r.check.unknown,
        },
        "verdict": verdict(r),
        "params": r.params,
        "think_ms": r.think_ms,
        "retries": r.retries,
        "notes": notes(r),
        "declared": r.declared,
    }


def verdict(r: RunResult) -> str:
    """HOLDS, or VIOLATED when an invariant failed or an anomaly the level forbids occurred."""
    return "VIOLATED" if r.failed_verdict else "HOLDS"


def anomalies(r: RunResult) -> list[dict]:
    """The checker's findings, most severe first: kind, count, status, definition, example
    (the first example's text) and examples (the checker's data for each: transactions,
    cycle steps, text)."""
    if r.check is None:
        return []
    out = []
    for kind, a in r.check.anomalies.items():
        examples = a.get("examples") or []
        out.append({"kind": kind, "count": a["count"], "status": a["status"],
                    "definition": a.get("definition", ""),
                    "example": examples[0].get("text", "") if examples else "",
                    "examples": examples})
    return out


def _example(r: RunResult) -> tuple[str, str] | None:
    found = anomalies(r)
    pick = next((a for a in found if a["status"] == "forbidden" and a["example"]), None)
    pick = pick or next((a for a in found if a["example"]), None)
    return (pick["kind"], pick["example"]) if pick else None


def notes(r: RunResult) -> list[str]:
    out = []
    if r.isolation.note:
        out.append(r.isolation.note)
    if r.interrupted:
        out.append("INTERRUPTED: the run was stopped early; in-flight transactions were rolled back.")
    if r.outcomes.unknown:
        out.append(f"{r.outcomes.unknown} transactions lost their connection during COMMIT: "
                   "their outcome is unknown.")
    if r.violated and r.check is not None and not r.check.anomalies:
        out.append("an invariant was violated but the history checker found no anomaly: it sees "
                   "only the row versions transactions read or wrote, not the rows a predicate "
                   "would have matched but never returned (a phantom, such as two bookings "
                   "inserted after both checks found the room free). See docs/checker.md.")
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _sections(r: RunResult, fmt: str) -> list[tuple[str, list, list]]:
    """(title, headers, rows) for each table of the report."""
    o = r.outcomes
    params = " ".join(f"{k}={v}" for k, v in r.params.items())
    header = [
        ["scenario", r.scenario, "server", r.server],
        ["strategy", r.strategy, "seed", r.seed],
        ["isolation", r.isolation.sql, "workers", r.workers],
        ["duration", f"{r.duration_s:.2f} s", "think time", f"{r.think_ms:g} ms"],
        ["retries allowed", r.retries, "params", params],
    ]
    lat = r.latency_ms
    perf = [
        ["throughput", f"{r.throughput_tps:.1f} committed/s"],
        ["latency p50 / p95 / p99 / max",
         f"{_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])} / {_ms(lat['max'])} ms"],
    ]
    outcome_rows = [
        ["committed", "", o.committed],
        ["declined by business rule", ", ".join(f"{k}: {v}" for k, v in o.declined_reasons.items()),
         o.declined],
    ]
    for cause, n in sorted(o.aborted.items(), key=lambda kv: -kv[1]):
        code = cause_sqlstate(cause) or "-"
        name = "rolled back at interrupt" if cause == INTERRUPTED_CAUSE else cause_name(cause)
        tag = " (retryable)" if cause in RETRYABLE else ""
        outcome_rows.append([f"aborted: {name}{tag}", code, n])
    if not o.aborted:
        outcome_rows.append(["aborted", "", 0])
    outcome_rows += [["retries", "", o.retries], ["failed after all retries", "", o.failed]]
    if o.unknown:
        outcome_rows.append(["unknown (connection lost in COMMIT)", "", o.unknown])
    mark = "**VIOLATED**" if fmt == "markdown" else "VIOLATED"
    inv = [
        [i.name, i.expected, i.actual, "HOLDS" if i.holds else mark, i.detail]
        for i in r.invariants
    ]
    level = r.isolation.sql
    if r.check is None:
        anom = [["not checked (--no-check)", "", "", ""]]
    else:
        anom = [[a["kind"], a["count"],
                 "allowed" if a["status"] == "allowed" else ("**FORBIDDEN**" if fmt == "markdown"
                                                             else "FORBIDDEN"),
                 a["definition"]] for a in anomalies(r)] or [["none found", 0, "", ""]]
    return [
        ("Run", [], header),
        ("Performance (latency of committed transactions, including their retries)", [], perf),
        ("Outcomes", ["outcome", "SQLSTATE", "count"], outcome_rows),
        ("Invariants", ["invariant", "expected", "actual", "verdict", "detail"], inv),
        (_anomaly_title(r), ["anomaly", "count", f"at {level}", "what it is"], anom),
    ]


def _anomaly_title(r: RunResult) -> str:
    if r.check is None:
        return "Anomalies in the history"
    c = r.check
    text = f"Anomalies in the history (checked against the {c.model} model: {c.verdict})"
    if c.unknown:
        text += f"; search timed out for {', '.join(c.unknown)}"
    return text


def _summary(r: RunResult) -> str:
    bad = [i.name for i in r.invariants if not i.holds]
    prefix = "INTERRUPTED: partial run. " if r.interrupted else ""
    lines = []
    if bad:
        lines.append(f"{prefix}VIOLATED: {len(bad)} of {len(r.invariants)} invariants violated "
                     f"({', '.join(bad)})")
    else:
        lines.append(f"{prefix}HOLDS: all {len(r.invariants)} invariants held")
    if r.forbidden:
        lines.append(f"FORBIDDEN ANOMALY: {', '.join(r.forbidden)} found at {r.isolation.sql}, "
                     "which forbids it: a database or harness bug")
    return "\n".join(lines)


def story_block(data: dict, fmt: str = "table") -> str:
    """The report's opening: to_dict()'s story sentences, then the commands worth
    trying next, each with why."""
    text = " ".join(data["story"])
    if not data["next"]:
        return text
    if fmt == "markdown":
        tries = [f"- `{n['command']}`: {n['why']}" for n in data["next"]]
        return text + "\n\nTry next:\n\n" + "\n".join(tries)
    text = textwrap.fill(text, STORY_WIDTH)
    tries = [f"  {n['command']}\n" + textwrap.fill(n["why"], STORY_WIDTH, initial_indent=" " * 6,
                                                    subsequent_indent=" " * 6)
             for n in data["next"]]
    return text + "\n\nTry next:\n" + "\n".join(tries)


def render(r: RunResult, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(to_dict(r), indent=2, default=str) + "\n"
    style = "github" if fmt == "markdown" else "simple"
    parts = []
    title = f"txlab run: {r.scenario} / {r.strategy} / {r.isolation.sql}"
    parts.append(f"# {title}" if fmt == "markdown" else title)
    parts.append(story_block(to_dict(r), fmt))
    for name, headers, rows in _sections(r, fmt):
        heading = f"## {name}" if fmt == "markdown" else name
        if headers:
            body = tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)
        elif fmt == "markdown":
            body = tabulate(rows, headers=[""] * len(rows[0]), tablefmt=style, disable_numparse=True)
        else:
            body = tabulate(rows, tablefmt="plain", disable_numparse=True)
        parts.append(f"{heading}\n{body}")
    example = _example(r)
    if example:
        kind, text = example
        heading = f"## Example: {kind}" if fmt == "markdown" else f"Example: {kind}"
        body = f"```\n{text}\n```" if fmt == "markdown" else text
        parts.append(f"{heading}\n{body}")
    for note in notes(r):
        parts.append(f"Note: {note}")
    summary = _summary(r)
    parts.append(f"**{summary}**" if fmt == "markdown" else summary)
    return "\n\n".join(parts) + "\n"
