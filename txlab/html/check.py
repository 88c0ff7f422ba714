"""The check page: `txlab check HISTORY --html FILE`.

From the checker's JSON (Result.to_dict, with the components' graphs when the
check ran with graphs=True): the verdict, the anomaly classes with counts and
definitions, each example's cycle drawn with its explanation, and each cyclic
component's dependency graph on demand (a <details> element).
"""

from __future__ import annotations

from txlab.checker import models
from txlab.checker.render import judged_words, status_words, unknown_words, valid_words
from txlab.html import svg
from txlab.html.anomaly import anomaly_html
from txlab.html.page import badge, document, esc, table

VERDICT_KIND = {"valid": "ok", "invalid": "bad", "unknown": "warn"}


def build(check: dict) -> dict:
    spec = models.MODELS.get(check["model"])
    return {"check": check, "model_summary": spec.summary if spec else ""}


def page(check: dict) -> str:
    return render(build(check))


def _verdict(c: dict) -> str:
    v = c["verdict"]
    if v == "invalid":
        text = f"{', '.join(c['forbidden'])} forbidden at {c['model']}"
    elif v == "unknown":
        text = unknown_words(c)
    else:
        text = valid_words(c)
    kind = VERDICT_KIND.get(v, "warn")
    return (f'<section class="verdict {kind}" aria-label="Verdict">{badge(v.upper(), kind)} '
            f"<span>{esc(text)}</span></section>")


def _component(n: int, comp: dict, who: str) -> str:
    shown = ("all of it" if comp["complete"] else
             f"{comp['shown']} transactions around its example cycles")
    where = f"; holds {', '.join(comp['examples'])}" if comp["examples"] else ""
    rows = [[esc(e["from"]), esc(e["to"]), esc(e["edge"]), esc(e.get("key", "")),
             esc(e.get("because", ""))] for e in comp["edges"]]
    return (f"<details><summary>Component {n}: {esc(comp['size'])} transactions "
            f"(showing {esc(shown)}){esc(where)}</summary>"
            + svg.graph(comp["transactions"], comp["edges"], f"comp{n}",
                        f"component {n}: dependency graph",
                        emphasize=set(comp.get("in_examples") or ()), who=who)
            + '<p class="caption">Thick borders: the transactions of its example cycles.</p>'
            + svg.edge_legend(e["edge"] for e in comp["edges"])
            + "<details><summary>Its edges as a table</summary>"
            + table(["from", "to", "edge", "key", "because"], rows, "edges") + "</details>"
            + "</details>")


def render(data: dict) -> str:
    c = data["check"]
    h = c["history"]
    facts = [("format", h.get("format")), ("transactions", h.get("transactions")),
             ("committed", h.get("committed")),
             ("rolled back" if h.get("format") == "txlab" else "failed", h.get("failed")),
             ("unknown", h.get("unknown"))]
    facts += [(k, h[k]) for k in ("scenario", "strategy", "seed", "workers", "server") if k in h]
    facts += [("isolation", c.get("isolation") or "-"), ("model", c["model"])]
    judged = judged_words(c)
    if judged:
        facts.append(("judged", judged))
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    parts = [f'<header><h1>txlab check: {esc(c["verdict"])} for the {esc(c["model"])} model</h1>'
             f'<dl class="facts">{items}</dl>'
             f'<p class="caption">{esc(c["model"])}: {esc(data["model_summary"])}</p></header>',
             _verdict(c), "<main>"]
    anomalies = c["anomalies"]
    own = c.get("own_model", True)
    who = "worker" if h.get("format") == "txlab" else "process"
    if anomalies:
        rows = [[f'<a href="#k{i}">{esc(k)}</a>', esc(a["count"]),
                 badge("FORBIDDEN", "bad") if a["status"] == "forbidden" else badge("allowed", "info"),
                 esc(a["definition"])] for i, (k, a) in enumerate(anomalies.items(), 1)]
        parts.append('<section aria-labelledby="h-classes"><h2 id="h-classes">Anomaly classes</h2>'
                     + table(["anomaly", "count", f"at {c['model']}", "what it is"], rows, "classes")
                     + "</section>")
        parts.append('<section aria-labelledby="h-ex"><h2 id="h-ex">Examples, explained</h2>'
                     + "".join(anomaly_html(k, a, f"k{i}", who=who, tag=None if own else
                                            status_words(c, a))
                               for i, (k, a) in enumerate(anomalies.items(), 1)) + "</section>")
    else:
        parts.append("<p>No anomalies found.</p>")
    comps = c.get("components")
    if comps:
        parts.append('<section aria-labelledby="h-comp"><h2 id="h-comp">Dependency graphs of the '
                     "cyclic components</h2><p class=\"caption\">Open one to draw it: each "
                     "transaction a box, each dependency an arrow labelled with its kind and key; "
                     "hover an arrow for the reason.</p>"
                     + "".join(_component(n, comp, who) for n, comp in enumerate(comps, 1))
                     + "</section>")
    notes = []
    if c.get("unknown"):
        notes.append(f"search timed out for: {', '.join(c['unknown'])} (raise --time-limit)")
    if c.get("models_ruled_out"):
        notes.append(f"ruled out: {models.ruled_out_text(c['models_ruled_out'])}")
    s = c["stats"]
    in_parts = f", in {s['parts']} parts" if s.get("parts") else ""
    notes.append(f"checked in {s['seconds']['total']} s ({s['edges']} edges, {s['components']} "
                 f"cyclic components, largest {s['largest_component']}"
                 f"{in_parts})")
    parts.append('<section aria-labelledby="h-st"><h2 id="h-st">Checker</h2><ul>'
                 + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></section></main>")
    return document(f"txlab check: {c['verdict']}", "".join(parts), c, (), "check")
