"""The matrix page: `txlab matrix --html FILE`.

The grid scenario x strategy x level from the matrix's JSON rows (matrix.to_dicts),
each cell coloured by verdict and saying it in words, with throughput, aborts by
cause and anomalies; the cells violated at a level their strategy declares safe
are called out at the top.
"""

from __future__ import annotations

from txlab import db, timeline
from txlab.html.page import attrs, badge, document, esc


def build(rows: list[dict], server: str = "", interrupted: str | None = None) -> dict:
    causes = {}
    for r in rows:
        for c in r["aborted"]:
            info = timeline.class_info(f"aborted:{c}")
            causes[c] = info["label"].removeprefix("aborted: ") + (
                f" ({info['sqlstate']})" if info["sqlstate"] else "")
    levels = [k for k in db.LEVELS if any(r["isolation"] == k for r in rows)]
    return {"server": server, "rows": rows, "causes": causes,
            "levels": {k: db.LEVELS[k].sql for k in levels}, "interrupted": interrupted}


def page(rows: list[dict], server: str = "", interrupted: str | None = None) -> str:
    """`interrupted`: what a matrix cut short says about itself (matrix.interrupted)."""
    return render(build(rows, server, interrupted))


def _cell_id(r: dict) -> str:
    return f"c-{r['scenario']}-{r['strategy']}-{r['isolation']}"


def _cell(r: dict, causes: dict) -> str:
    cls = "cell " + ("holds" if r["holds"] else "violated") + (" surprise" if r["surprise"] else "")
    words = [badge("holds", "ok") if r["holds"] else badge("VIOLATED", "bad")]
    if r["surprise"]:
        words.append(badge("UNEXPECTED: declared safe", "bad"))
    rate = f"{r['committed_per_s']:g}"
    lines = [f'<span class="line"><strong>{esc(rate)}</strong> '
             f'committed/s ({esc(r["committed"])} committed)</span>']
    aborted = ", ".join(f"{causes.get(k, k)} ×{n}" for k, n in r["aborted"].items())
    lines.append(f'<span class="line">aborted: {esc(aborted or "none")}</span>')
    if r.get("unknown"):
        lines.append(f'<span class="line">outcome unknown (COMMIT unanswered, connection lost):'
                     f' {esc(r["unknown"])}</span>')
    if r["retries"] or r["failed"]:
        lines.append(f'<span class="line">retries {esc(r["retries"])}, failed {esc(r["failed"])}'
                     "</span>")
    if r["violated"]:
        lines.append(f'<span class="line">violated: {esc(", ".join(r["violated"]))}</span>')
    anomalies = ", ".join(f"{k} {n}" + (" FORBIDDEN" if k in r["forbidden"] else "")
                          for k, n in r["anomalies"].items())
    lines.append(f'<span class="line">anomalies: {esc(anomalies or "none found")}</span>')
    return (f'<td{attrs(id=_cell_id(r), class_=cls, data_scenario=r["scenario"], data_strategy=r["strategy"], data_isolation=r["isolation"], data_verdict="holds" if r["holds"] else "VIOLATED", data_surprise="true" if r["surprise"] else None)}>'
            + " ".join(words) + "".join(lines) + "</td>")


def _callouts(rows: list[dict], levels: dict) -> str:
    def link(r):
        return (f'<li><a href="#{esc(_cell_id(r))}">{esc(r["scenario"])} / {esc(r["strategy"])} / '
                f'{esc(levels[r["isolation"]])}</a>: ' + esc(", ".join(r["violated"]) or
                                                           ", ".join(r["forbidden"])) + "</li>")

    surprises = [r for r in rows if r["surprise"]]
    forbidden = [r for r in rows if r["forbidden"]]
    out = []
    if surprises:
        out.append('<div class="callout" role="alert"><strong>Declared safe but violated</strong> '
                   "(the strategy says this level is safe; a bug to look at):<ul>"
                   + "".join(link(r) for r in surprises) + "</ul></div>")
    if forbidden:
        out.append('<div class="callout" role="alert"><strong>Anomalies the level forbids</strong> '
                   "(a database or harness bug):<ul>" + "".join(link(r) for r in forbidden)
                   + "</ul></div>")
    if not out:
        out.append(badge("no combination violated a level its strategy declares safe", "ok"))
    return "".join(out)


def render(data: dict) -> str:
    rows, levels, causes = data["rows"], data["levels"], data["causes"]
    parts = [f"<header><h1>txlab isolation matrix</h1><p class=\"caption\">{esc(data['server'])}. "
             "Each cell is one short run of the scenario with that strategy at that level: "
             "whether its invariants held, committed transactions per second, aborted attempts "
             "by cause (SQLSTATE), and the anomalies the history checker named.</p></header>",
             "<main>"]
    if data.get("interrupted"):
        parts.append(f'<div class="callout" role="alert"><strong>{esc(data["interrupted"])}'
                     "</strong></div>")
    parts.append(_callouts(rows, levels))
    head = "".join(f'<th scope="col">{esc(sql)}</th>' for sql in levels.values())
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        body = []
        for strategy in dict.fromkeys(r["strategy"] for r in rows if r["scenario"] == scenario):
            by_level = {r["isolation"]: r for r in rows
                        if r["scenario"] == scenario and r["strategy"] == strategy}
            cells = "".join(_cell(by_level[k], causes) if k in by_level else "<td>-</td>"
                            for k in levels)
            body.append(f'<tr><th scope="row">{esc(strategy)}</th>{cells}</tr>')
        parts.append(f"<section><h2>{esc(scenario)}</h2><table class=\"matrix\"><thead><tr>"
                     f'<th scope="col">strategy</th>{head}</tr></thead><tbody>{"".join(body)}'
                     "</tbody></table></section>")
    parts.append("</main>")
    return document("txlab isolation matrix", "".join(parts),
                    {"server": data["server"], "rows": rows}, (), "matrix")
