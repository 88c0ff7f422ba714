"""render(result, fmt): text for people, JSON for programs. Never computes anything."""

from __future__ import annotations

import json

from txlab.checker import models

FORMATS = ("text", "json")


def render(result, fmt: str = "text", term=None) -> str:
    """JSON, or text fitted to `term` (txlab.term.Term; default plain, 80 columns)."""
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, default=_json_default) + "\n"
    if fmt == "text":
        return _text(result.to_dict(), term)
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _json_default(x):
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    return str(x)


def judged_words(d: dict) -> str:
    """How the model was chosen, when not by the level the run used (Result.to_dict)."""
    given = d.get("judged_isolation")
    how = f"the model of {given} (--isolation)" if given else "given with --model"
    if not d.get("own_model", True):
        return (f"against {d['model']}, {how}; the run used {d['isolation']}, whose model "
                f"is {d['run_model']}")
    return f"against {d['model']}, {how}" if given else ""


def status_words(d: dict, a: dict) -> str:
    """`FORBIDDEN at this level: a database or harness bug` or `allowed at this level`;
    judged by another model than the run's own, a bug only if the run's level forbids it."""
    if not d.get("isolation"):  # an Elle history: no level recorded, only the model judged
        return (f"FORBIDDEN at {d['model']}: a bug if the system promises {d['model']}"
                if a["status"] == "forbidden" else f"allowed at {d['model']}")
    if d.get("own_model", True):
        return ("FORBIDDEN at this level: a database or harness bug" if a["status"] == "forbidden"
                else "allowed at this level")
    if a["status"] != "forbidden":
        return f"allowed at {d['model']}"
    if a.get("run_status") == "forbidden":
        return f"FORBIDDEN at {d['model']} and at {d['isolation']}: a database or harness bug"
    return f"FORBIDDEN at {d['model']}; allowed at {d['isolation']}, the level the run used"


def unknown_words(d: dict) -> str:
    """Why an "unknown" verdict is unknown, in words (text, HTML, run reports)."""
    if d.get("unknown"):
        return f"a forbidden anomaly may have been missed (search timed out for " \
               f"{', '.join(d['unknown'])})"
    if not d["history"]["transactions"]:
        return "the history holds no transactions"
    return ("no dependency was found between the transactions, so no cycle could be looked "
            "for (Elle: empty transaction graph)")


def valid_words(d: dict) -> str:
    """What a "valid" verdict says, in words (text, HTML): nothing the model forbids,
    and, where the history shows anomalies the model allows, that those were found
    and what that means (the data may still be wrong: the application's rules)."""
    said = f"no anomaly that {d['model']} forbids"
    allowed = d.get("allowed") or []
    if not allowed:
        return said
    kinds = "kind" if len(allowed) == 1 else "kinds"
    run = " (the run's invariants say whether it did)" if d["history"]["format"] == "txlab" else ""
    return (f"{said}; {len(allowed)} {kinds} that it allows were found ({', '.join(allowed)}):"
            f" the database kept its promise, but that promise lets the application's data go"
            f" wrong{run}")


def _text(d: dict, t) -> str:
    from rich.console import Group
    from rich.text import Text

    from txlab import term as term_mod

    t = t or term_mod.plain()
    h = d["history"]
    run = " ".join(f"{h[k]}" for k in ("scenario", "strategy") if k in h)
    # Elle's :fail; in txlab's own histories those are declined or aborted (run's words)
    failed = "rolled back" if h["format"] == "txlab" else "failed"
    summary = (f"{h['transactions']} transaction{'' if h['transactions'] == 1 else 's'} ({h['committed']} committed, {h['failed']} "
               f"{failed}, {h['unknown']} unknown), format {h['format']}"
               + (f", {run}" if run else "") + (f" at {d['isolation']}" if d["isolation"] else ""))
    pairs = [("history", summary),
             ("model", f"{d['model']}: {models.MODELS[d['model']].summary}")]
    judged = judged_words(d)
    if judged:
        pairs.append(("judged", judged))
    parts: list = [term_mod.pairs(pairs, t, columns=1), ""]
    own = d.get("own_model", True)
    at = "at this level" if own and d["isolation"] else f"at {d['model']}"
    anomalies = d["anomalies"]
    if anomalies:
        rows = [[name, f"{a['count']} {a.get('unit', '')}".strip(),
                 "FORBIDDEN" if a["status"] == "forbidden" else "allowed"]
                for name, a in anomalies.items()]
        parts.append(term_mod.table(["anomaly", "found", at], rows, t, wrap={1: 12}))
    elif not h["transactions"]:
        parts.append(Text(term_mod.wrapped(
            "no transactions to check: the history holds none (a run killed before it wrote "
            "them, one whose history could not be written, or a file cut short)", t),
            style=term_mod.STYLES["warning"]))
    elif d.get("empty_graph"):
        parts.append(Text(term_mod.wrapped(
            "no anomalies found, but no dependency between the transactions either: the "
            "history gave no graph to look for cycles in", t), style=term_mod.STYLES["warning"]))
    else:
        parts.append(Text("no anomalies found"))
    if d["unknown"]:
        parts.append(Text(term_mod.wrapped(f"search timed out for: {', '.join(d['unknown'])} "
                                           "(raise --time-limit-s)", t),
                          style=term_mod.STYLES["warning"]))
    for name, a in anomalies.items():
        for n, ex in enumerate(a["examples"], 1):
            forbidden = a["status"] == "forbidden"
            tag = status_words(d, a)
            head = Text(f"{name} #{n} (", style=term_mod.STYLES["heading"])
            head.append(tag, style=term_mod.STYLES["forbidden" if forbidden else "allowed"])
            head.append(")")
            parts += ["", head, Text(term_mod.wrapped(a["definition"], t, indent=2, hang=2)),
                      Text(term_mod.wrapped(ex["text"], t, hang=4))]
    parts.append("")
    if d["models_ruled_out"]:
        parts.append(Text(term_mod.wrapped(
            f"ruled out: {models.ruled_out_text(d['models_ruled_out'])}", t)))
    st = d["stats"]
    in_parts = f", in {st['parts']} parts" if st.get("parts") else ""
    parts.append(Text(term_mod.wrapped(
        f"checked in {st['seconds']['total']:.2f} s ({st['edges']} edges, {st['components']} "
        f"cyclic component{'' if st['components'] == 1 else 's'}, largest "
        f"{st['largest_component']}"
        f"{in_parts})", t),
        style=term_mod.STYLES["muted"]))
    verdict = d["verdict"].upper()
    if d["verdict"] == "invalid":
        verdict += f": {', '.join(d['forbidden'])} forbidden at {d['model']}"
    elif d["verdict"] == "unknown":
        verdict += f": {unknown_words(d)}"
    elif d["allowed"]:
        verdict += f": {valid_words(d)}"
    word, sep, rest = verdict.partition(":")
    parts.append(Text(word, style=term_mod.style_of(word) or term_mod.STYLES["warning"])
                 .append(sep + rest))
    return term_mod.to_text(Group(*parts), t)
