"""Inline SVG: dependency graphs (cycles, components), bar charts, axes. No Graphviz.

Everything is drawn from data already computed elsewhere; these functions only
place it. Colours always come with words: edge labels, legends, <title>s.
"""

from __future__ import annotations

import math

from txlab.html.page import attrs, esc

EDGE_STYLE = {  # colour, dash pattern, what it means
    "ww": ("#0072B2", "", "ww: overwrote its version"),
    "wr": ("#009E73", "", "wr: read what it wrote"),
    "rw": ("#D55E00", "6 4", "rw: read a version the other overwrote (anti-dependency)"),
    "process": ("#666666", "2 3", "process: same worker, later"),
    "realtime": ("#B8860B", "2 3", "realtime: completed before the other began"),
}
CAUSE_COLOURS = {
    "40001-concurrent-update": "#D55E00", "40001-rw-dependencies": "#E69F00", "40001": "#E69F00",
    "40P01": "#CC79A7", "55P03": "#882255", "version-conflict": "#56B4E9", "57014": "#999933",
}
SPARE = ("#AA4499", "#44AA99", "#661100", "#6699CC", "#888888")
OUTCOME_COLOURS = {"committed": "#0072B2", "declined": "#8C8C8C", "unknown": "#222222"}


def class_colours(classes: list[dict]) -> dict[str, str]:
    """Colour for each outcome class key (timeline.class_info dicts)."""
    out, spare = {}, iter(SPARE * 4)
    for c in classes:
        if c["outcome"] in OUTCOME_COLOURS:
            out[c["key"]] = OUTCOME_COLOURS[c["outcome"]]
        else:
            out[c["key"]] = CAUSE_COLOURS.get(c.get("cause") or "", None) or next(spare)
    return out


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_step(span: float, target: int = 6) -> float:
    """A 1-2-5 step giving about `target` ticks over span."""
    if span <= 0:
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


# ---------------------------------------------------------------- graphs


def _node_centres(n: int, w: float, h: float) -> list[tuple[float, float]]:
    cx, cy = w / 2, h / 2
    rx, ry = w / 2 - 70, h / 2 - 34
    if n == 1:
        return [(cx, cy)]
    start = math.pi if n == 2 else -math.pi / 2
    return [(cx + rx * math.cos(start + 2 * math.pi * i / n),
             cy + ry * math.sin(start + 2 * math.pi * i / n)) for i in range(n)]


def _clip(cx, cy, tx, ty, hw, hh):
    """The point where the ray from (cx, cy) toward (tx, ty) leaves a hw x hh box."""
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    t = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return cx + dx * t, cy + dy * t


def graph(transactions: list[dict], edges: list[dict], uid: str, caption: str = "",
          labels: bool | None = None, emphasize=(), who: str = "worker") -> str:
    """Transactions as boxes on a ring, edges as arrows labelled `rw account:5`;
    the transactions named in `emphasize` get a thick border; `who` names a
    transaction's process (txlab's worker, Elle's process).

    transactions: [{"name", "outcome", "process"?, "ops"?}] (checker's txn_data);
    edges: [{"from", "to", "edge", "key"?, "because"?}] (cycle steps, component edges).
    """
    n = len(transactions)
    big = n > 8
    w, h = (880, 600) if big else (600, 300 if n <= 2 else 380)
    hw, hh = (34, 17) if big else (46, 22)
    pos = dict(zip((t["name"] for t in transactions), _node_centres(n, w, h), strict=True))
    groups: dict = {}
    for e in edges:
        if e["from"] in pos and e["to"] in pos:
            groups.setdefault((e["from"], e["to"]), []).append(e)
    if labels is None:
        labels = len(groups) <= 16
    out = [f'<svg class="graph{" big" if big else ""}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-labelledby="{uid}-t"><title id="{uid}-t">{esc(caption)}</title><defs>']
    for kind, (colour, _dash, _m) in EDGE_STYLE.items():
        out.append(f'<marker id="{uid}-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
                   f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    for (a, b), es in groups.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1
        bend = 0.22 if (b, a) in groups or n <= 3 else (0.08 if big else 0.12)
        qx, qy = (x1 + x2) / 2 - dy / dist * dist * bend, (y1 + y2) / 2 + dx / dist * dist * bend
        sx, sy = _clip(x1, y1, qx, qy, hw + 2, hh + 2)
        ex, ey = _clip(x2, y2, qx, qy, hw + 4, hh + 4)
        kind = es[0]["edge"] if es[0]["edge"] in EDGE_STYLE else "rw"
        colour, dash, _ = EDGE_STYLE[kind]
        words = ", ".join(dict.fromkeys(
            f"{e['edge']}" + (f" {e['key']}" if e.get("key") is not None else "") for e in es))
        why = "; ".join(e.get("because", "") for e in es if e.get("because"))
        out.append(f'<g class="edge"{attrs(data_edge=kind, data_from=a, data_to=b)}>'
                   f"<title>{esc(f'{a} → {b}: {words}' + (f' ({why})' if why else ''))}</title>"
                   f'<path d="M{_f(sx)},{_f(sy)} Q{_f(qx)},{_f(qy)} {_f(ex)},{_f(ey)}" '
                   f'fill="none" stroke="{colour}" stroke-width="2"'
                   + (f' stroke-dasharray="{dash}"' if dash else "")
                   + f' marker-end="url(#{uid}-{kind})"/>')
        if labels:
            mx, my = 0.25 * sx + 0.5 * qx + 0.25 * ex, 0.25 * sy + 0.5 * qy + 0.25 * ey
            out.append(f'<text class="elabel" x="{_f(mx)}" y="{_f(my)}" fill="{colour}">'
                       f"{esc(words)}</text>")
        out.append("</g>")
    for t in transactions:
        x, y = pos[t["name"]]
        sub = f"{who} {t['process']}" if t.get("process") is not None else (t.get("outcome") or "")
        if t.get("note"):
            sub = t["note"]
        ops = "\n".join(str(o) for o in (t.get("ops") or [])[:8])
        cls = "node hot" if t["name"] in emphasize else "node"
        out.append(f'<g class="{cls}"{attrs(data_txn=t.get("id"), data_outcome=t.get("outcome"))}>'
                   f"<title>{esc(t['name'] + ' (' + (t.get('outcome') or '') + ')' + chr(10) + ops)}"
                   f'</title><rect x="{_f(x - hw)}" y="{_f(y - hh)}" width="{2 * hw}" '
                   f'height="{2 * hh}" rx="6"/>'
                   f'<text x="{_f(x)}" y="{_f(y - (2 if big else 3))}" class="nname">{esc(t["name"])}</text>'
                   f'<text x="{_f(x)}" y="{_f(y + (11 if big else 14))}" class="nsub">{esc(sub)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def edge_legend(kinds) -> str:
    kinds = set(kinds)
    items = [f'<li><svg width="34" height="10" aria-hidden="true"><line x1="0" y1="5" x2="34" '
             f'y2="5" stroke="{c}" stroke-width="2"' + (f' stroke-dasharray="{d}"' if d else "")
             + f"/></svg> {esc(m)}</li>"
             for k, (c, d, m) in EDGE_STYLE.items() if k in kinds]
    return f'<ul class="legend edges">{"".join(items)}</ul>' if items else ""
