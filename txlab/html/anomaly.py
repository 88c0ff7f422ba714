"""One anomaly class and its examples, as the run and check pages show them: the
checker's definition, each example's cycle drawn (or its transactions listed) and
its explanation text, all from the checker's result."""

from __future__ import annotations

from txlab.html import svg
from txlab.html.page import badge, esc


def example_html(ex: dict, uid: str, highlight: bool, who: str = "worker") -> str:
    """One checker example: its graph (a cycle) and its explanation; with highlight, a
    button that marks its transactions on the run page's timeline."""
    ids = " ".join(str(t["id"]) for t in ex.get("transactions") or ()
                   if isinstance(t.get("id"), int))
    parts = []
    if highlight and ids:
        parts.append(f'<button type="button" class="hl-btn" aria-pressed="false" '
                     f'data-ids="{esc(ids)}">Show its transactions on the timeline</button>')
    if ex.get("steps"):
        cap = f"{ex.get('kind')}: " + " → ".join(ex.get("cycle") or ())
        parts.append(svg.graph(ex.get("transactions") or [], ex["steps"], uid, cap, who=who))
        parts.append(svg.edge_legend(s["edge"] for s in ex["steps"]))
    parts.append(f'<pre class="explain">{esc(ex.get("text") or ex.get("because") or "")}</pre>')
    return "".join(parts)


def anomaly_html(kind: str, a: dict, uid: str, highlight: bool = False,
                 who: str = "worker", tag: str | None = None) -> str:
    """a: the checker's entry for `kind` (count, status, definition, examples); who:
    what a transaction's process is called (worker, or Elle's process); tag: the
    status in words, when judged by another model than the run's own."""
    forbidden = a.get("status") == "forbidden"
    tag = tag or ("FORBIDDEN at this level" if forbidden else "allowed at this level")
    head = (f'<h3 id="{esc(uid)}">{esc(kind)} <span class="count">× {esc(a["count"])}</span> '
            + badge(tag, "bad" if forbidden else "info") + "</h3>")
    exs = a.get("examples") or []
    body = "".join(f"<h4>Example {i}</h4>" + example_html(ex, f"{uid}x{i}", highlight, who)
                   for i, ex in enumerate(exs, 1))
    if not exs and a.get("example"):
        body = f'<pre class="explain">{esc(a["example"])}</pre>'
    return (f'<article class="anomaly">{head}<p class="definition">{esc(a.get("definition"))}'
            f"</p>{body}</article>")
