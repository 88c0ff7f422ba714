"""The demo pages: a step player per run (`txlab demo NAME --html FILE`, one level or
`-i all`), and the anomaly x level matrix with every cell linking to its player
(`txlab demo --all --html FILE`).

Page data is the demo JSON view (interleave.render.to_json, with the committed
state after every step when the demo ran with step_states) and, for --all, the
matrix JSON (render.matrix_json). `steps` turns one run's events into the
player's rows; the renderers below only place them.
"""

from __future__ import annotations

import re

from txlab.html.page import attrs, badge, document, esc, result_table
from txlab.interleave.spec import failed_commit

STATE_NOTE = ("Read after each step on a separate connection at READ COMMITTED: committed data "
              "only. A session's uncommitted writes do not show here until it commits.")


# ---------------------------------------------------------------- page data


def steps(perm: dict, sessions: list[str]) -> tuple[list[dict], list[dict]]:
    """(rows, waits) of one run: a row per step in execution order (1-based "n"),
    each with what every session showed during it; a wait runs from the row whose
    step blocked to the row of the step that released it."""
    rows: list[dict] = []
    waits: list[dict] = []
    open_waits: dict = {}  # session -> (row n, step)
    session_of: dict = {}

    def put(session, item):
        if rows and session in rows[-1]["cells"]:
            rows[-1]["cells"][session].append(item)

    for e in perm["events"]:
        t = e["type"]
        if t == "StepReport":
            session_of[e["step"]] = e["session"]
            if e["kind"] == "resumed":
                start, step = open_waits.pop(e["session"], (None, e["step"]))
                put(e["session"], {"kind": "resumed", "step": e["step"]})
                if start is not None:
                    waits.append({"session": e["session"], "step": step, "from": start,
                                  "to": len(rows), "released_by": rows[-1]["step"]})
                continue
            rows.append({"n": len(rows) + 1, "step": e["step"], "session": e["session"],
                         "cells": {s: [] for s in sessions}})
            put(e["session"], {"kind": "sql", "step": e["step"], "sql": e["sql"].strip()})
            if e["kind"] == "waiting":
                put(e["session"], {"kind": "wait", "by": list(e.get("blocked_by") or ()),
                                   "marker": e.get("marker") or ""})
                open_waits[e["session"]] = (len(rows), e["step"])
        elif e.get("step") is None and t in ("Rows", "Command", "Error"):
            continue  # setup and teardown blocks: not steps
        elif t == "Rows":
            put(e["session"], {"kind": "rows", "columns": e["columns"], "rows": e["rows"]})
        elif t == "Command":
            if e.get("command"):
                put(e["session"], {"kind": "tag", "text": e["command"]})
        elif t == "Error":
            put(e["session"], {"kind": "error", "sqlstate": e.get("sqlstate"),
                               "message": e.get("message") or e.get("text"),
                               "cause": e.get("cause")})
        elif t == "NoticeEvent":
            put(e["session"], {"kind": "notice", "text": f"{e['severity']}: {e['message']}"})
        elif t == "NotifyEvent":
            put(e["session"], {"kind": "notice",
                               "text": f"NOTIFY {e['channel']} {e['payload']!r} from {e['sender']}"})
        elif t == "Canceled":
            put(session_of.get(e["step"]), {"kind": "canceled", "step": e["step"],
                                            "seconds": e["seconds"]})
    for session, (start, step) in open_waits.items():
        waits.append({"session": session, "step": step, "from": start, "to": len(rows),
                      "released_by": None})
    return rows, waits


def build(demo_json: dict) -> dict:
    """Page data for one demo: its JSON view (embedded in the page as it is) plus each
    run's rows and waits (derived from it for placing, not embedded)."""
    sessions = demo_json["sessions"]
    players = []
    for lv in demo_json["levels"]:
        for i, perm in enumerate(lv["permutations"]):
            rows, waits = steps(perm, sessions)
            players.append({"level": lv["isolation"], "level_sql": lv["isolation_sql"],
                            "permutation": i, "rows": rows, "waits": waits})
    return {"demo": demo_json, "players": players}


def page(demo_json: dict) -> str:
    return render(build(demo_json))


def matrix_page(matrix_json: dict, demos: list[dict]) -> str:
    return render_matrix({"matrix": matrix_json, "demos": [build(d) for d in demos]})


# ---------------------------------------------------------------- rendering


def _slug(*parts) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", str(p or "default")).strip("-").lower()
                    for p in parts)


def _item(it: dict, sql: str) -> str:
    k = it["kind"]
    if k == "sql":
        return (f'<span class="stepname">{esc(it["step"])}</span> '
                f'<code class="sql">{esc(it["sql"])}</code>')
    if k == "wait":
        if it.get("marker"):  # the permutation's marker, not a lock
            return f'<span class="waitnote">held back by its {esc(it["marker"])} marker …</span>'
        by = f" for {', '.join(it['by'])}" if it["by"] else ""
        return f'<span class="waitnote">waiting{esc(by)} …</span>'
    if k == "resumed":
        return f'<span class="resumed">… {esc(it["step"])} completes (it was waiting)</span>'
    if k == "rows":
        return result_table({"columns": it["columns"], "rows": it["rows"]})
    if k == "tag":
        note = ""
        if failed_commit(it["text"], sql):
            note = " (COMMIT rolled back: the transaction had failed)"
        return f'<span class="tag">→ {esc(it["text"])}{esc(note)}</span>'
    if k == "error":
        cause = f" ({it['cause']})" if it.get("cause") and it["cause"] != it.get("message") else ""
        return (f'<span class="error">ERROR {esc(it.get("sqlstate") or "")}: '
                f'{esc(it.get("message") or "")}{esc(cause)}</span>')
    if k == "canceled":
        return f'<span class="error">cancelled after {esc(it["seconds"])} s (step timeout)</span>'
    return f'<span class="tag">{esc(it.get("text", ""))}</span>'


def _cell_html(items: list[dict]) -> str:
    sql = next((i["sql"] for i in items if i["kind"] == "sql"), "")
    return "".join(f"<div>{_item(i, sql)}</div>" for i in items)


def _tables(tables: list[dict]) -> str:
    """Tables in the demo JSON's final_states shape: {"table", "columns", "rows"}, or an
    "error" when it could not be read."""
    out = []
    for t in tables:
        if "error" in t:
            out.append(f'<p class="error">{esc(t["table"] or "state")} not readable: '
                       f'{esc(t["error"])}</p>')
        else:
            out.append(result_table(t, t.get("table") or ""))
    return "".join(out)


def _state_blocks(perm: dict) -> str:
    states = perm.get("states") or []
    if not states:
        return ""
    blocks = []
    for st in states:
        what = "before the first step" if st["step"] == 0 else f"after step {st['step']} ({st['after']})"
        blocks.append(f'<div class="st"{attrs(data_state=st["step"])}>'
                      f"<h4>Committed state {esc(what)}</h4>{_tables(st['tables'])}</div>")
    return (f'<aside class="state" aria-live="polite" aria-label="Committed table state">'
            f'{"".join(blocks)}<p class="note">{esc(STATE_NOTE)}</p></aside>')


# Heads that mean "nothing went wrong", green as in the terminal whatever it cost (a
# wait, a 40001): the level prevented the anomaly, or everyone committed.
_GOOD_HEADS = ("PREVENTED", "NO ANOMALY", "COMMITTED")


def _tone(v: dict) -> str:
    """The colour class of a verdict: its outcome (anomaly red, wait and abort amber,
    ok green), except that a PREVENTED or NO ANOMALY verdict is green, as the terminal
    shows it."""
    if v.get("outcome") != "anomaly" and v.get("head") in _GOOD_HEADS:
        return "ok"
    return esc(v.get("outcome") or "")


def _verdict_line(v: dict) -> str:
    out = f'<p class="verdict-line badge outcome-{_tone(v)}">{esc(v["line"])}</p>'
    if v.get("expectation_note"):
        out += (f'<p class="badge {"warn" if v.get("undecided") else "bad"}">'
                f'{esc(v["expectation_note"])}</p>')
    return out


def _left_open(perm: dict) -> str:
    """The note on sessions the teardown waited for and txlab rolled back, if any."""
    note = perm.get("left_open_note")
    return f'<p class="badge warn left-open">{esc(note)}</p>' if note else ""


def _player(demo: dict, p: dict, pid: str) -> str:
    sessions = demo["sessions"]
    level = next(lv for lv in demo["levels"] if lv["isolation"] == p["level"])
    perm = level["permutations"][p["permutation"]]
    rows, waits = p["rows"], p["waits"]
    waiting: dict = {}  # (row n, session) -> wait
    for w in waits:
        for n in range(w["from"], w["to"] + 1):
            waiting[(n, w["session"])] = w
    head = "".join(f'<th scope="col">{esc(s)}</th>' for s in sessions)
    body = []
    for r in rows:
        cells = []
        for s in sessions:
            w = waiting.get((r["n"], s))
            cls = "wait" if w else None
            tip = None
            if w:
                by = f"released by step {w['released_by']}" if w["released_by"] else "never released"
                tip = f"{s}'s step {w['step']} waits for a lock from step {w['from']} to step {w['to']} ({by})"
            cells.append(f"<td{attrs(class_=cls, data_tip=tip)}>{_cell_html(r['cells'][s])}</td>")
        body.append(f'<tr{attrs(data_step=r["n"], data_name=r["step"])}><th class="n" scope="row">'
                    f'{r["n"]}</th>{"".join(cells)}</tr>')
    n = len(rows)
    controls = (
        f'<div class="controls"><button type="button" data-act="first">« First</button>'
        f'<button type="button" data-act="prev">◀ Back</button>'
        f'<span class="pos" aria-live="polite">{n} steps</span>'
        f'<button type="button" data-act="next">Next ▶</button>'
        f'<button type="button" data-act="last">Last »</button>'
        '<span class="caption">keys: ← → step, Home / End</span></div>')
    final = ""
    if perm.get("final_states") and not perm.get("states"):
        final = f'<aside class="state"><h4>Final state</h4>{_tables(perm["final_states"])}</aside>'
    title = f"{p['level_sql']}: permutation {' '.join(perm['permutation'])}"
    return (f'<section class="player" id="{esc(pid)}" tabindex="0" aria-label="{esc(title)}"'
            f' data-steps="{n}"><h3>{esc(title)}</h3>'
            f'<div class="reveal">{_verdict_line(perm["verdict"])}{_left_open(perm)}</div>'
            '<p class="reveal-note">The verdict shows at the last step.</p>'
            f'{controls}'
            f'<div class="stage"><table class="steps"><thead><tr><th class="n" scope="col">#</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f"{_state_blocks(perm) or final}</div></section>")


def _intro(demo: dict) -> str:
    parts = [f"<header><h1>{esc(demo.get('title') or demo['demo'])}</h1>"
             f'<dl class="facts"><div><dt>demo</dt><dd>{esc(demo["demo"])}</dd></div>'
             f'<div><dt>server</dt><dd>{esc(demo.get("server_version"))}</dd></div>'
             + (f'<div><dt>anomaly</dt><dd>{esc(demo["anomaly"])}</dd></div>' if demo.get("anomaly") else "")
             + "</dl></header>"]
    if demo.get("story"):
        parts.append(f'<section class="story"><p>{esc(demo["story"])}</p></section>')
    for w in demo.get("warnings") or ():
        parts.append(f'<p class="badge warn">warning: {esc(w)}</p>')
    return "".join(parts)


def _side_by_side(data: dict, prefix: str) -> str:
    """A row per step, a column per level: what happened, then the final state and verdict."""
    demo = data["demo"]
    levels = demo["levels"]
    if len(levels) < 2:
        return ""
    out = []
    for i in range(len(levels[0]["permutations"])):
        ps = [p for p in data["players"] if p["permutation"] == i]
        runs = [lv["permutations"][i] for lv in levels]
        if len(ps) != len(levels) or any(r["permutation"] != runs[0]["permutation"] for r in runs):
            continue
        head = "".join(f'<th scope="col">{esc(p["level_sql"])}</th>' for p in ps)
        body = []
        # The terminal's rows, from the same data (demo.step_results): a row per step,
        # with all its session got back for it, also after a wait.
        results = [r["step_results"] for r in runs]
        for j, first in enumerate(results[0]):
            cells = "".join(
                f"<td>{esc(', then '.join(w['text'] for w in res[j]['said']) or 'ok')}</td>"
                for res in results)
            body.append(f'<tr><th scope="row">{first["n"]}. {esc(first["step"])}: '
                        f'<code class="sql">{esc(" ".join(first["sql"].split()))}</code></th>'
                        f"{cells}</tr>")
        finals = [lv["permutations"][i].get("final_states") or [] for lv in levels]
        if any(finals):
            body.append('<tr><th scope="row">final state</th>' + "".join(
                f"<td>{_tables(f)}</td>" for f in finals) + "</tr>")
        verdicts = []
        for p, lv in zip(ps, levels, strict=True):
            v = lv["permutations"][i]["verdict"]
            pid = _slug(prefix, p["level"], i)
            verdicts.append(f'<td class="cell outcome-{_tone(v)}">'
                            f'<a href="#{esc(pid)}">{esc(v["line"])}</a></td>')
        body.append('<tr><th scope="row">verdict</th>' + "".join(verdicts) + "</tr>")
        out.append('<table class="side"><caption>Side by side'
                   + (f" (permutation {i + 1})" if len(levels[0]["permutations"]) > 1 else "")
                   + f'</caption><thead><tr><th scope="col">step</th>{head}</tr></thead>'
                   f'<tbody>{"".join(body)}</tbody></table>')
    return ('<section aria-labelledby="h-side"><h2 id="h-side">All levels side by side</h2>'
            + "".join(out) + "</section>")


def _players(data: dict, prefix: str) -> str:
    """One player per run; with several levels, one tab per level."""
    demo = data["demo"]
    levels = demo["levels"]
    if len(levels) == 1:
        return "".join(_player(demo, p, _slug(prefix, p["level"], p["permutation"]))
                       for p in data["players"])
    tabs, panels = [], []
    for k, lv in enumerate(levels):
        tid, panel = _slug(prefix, "tab", lv["isolation"]), _slug(prefix, "panel", lv["isolation"])
        first = k == 0
        outcome = _tone(lv["permutations"][0]["verdict"]) if lv["permutations"] else ""
        tabs.append(f'<button type="button" role="tab" id="{tid}" aria-controls="{panel}" '
                    f'aria-selected="{"true" if first else "false"}" tabindex="{0 if first else -1}"'
                    f' class="outcome-{esc(outcome)}">{esc(lv["isolation_sql"])}</button>')
        players = "".join(_player(demo, p, _slug(prefix, p["level"], p["permutation"]))
                          for p in data["players"] if p["level"] == lv["isolation"])
        panels.append(f'<div role="tabpanel" id="{panel}" aria-labelledby="{tid}"'
                      f'{"" if first else " hidden"}>{players}</div>')
    return (f'<div role="tablist" aria-label="Isolation levels">{"".join(tabs)}</div>'
            + "".join(panels))


def _demo_body(data: dict) -> str:
    prefix = data["demo"]["demo"]
    return (_intro(data["demo"]) + _side_by_side(data, prefix)
            + '<section aria-label="Step players"><h2>Step by step</h2>' + _players(data, prefix)
            + "</section>")


def render(data: dict) -> str:
    demo = data["demo"]
    return document(f"txlab demo: {demo.get('title') or demo['demo']}",
                    "<main>" + _demo_body(data) + "</main>", demo, ("demo",), "demo")


def render_matrix(data: dict) -> str:
    m = data["matrix"]
    by_name = {d["demo"]["demo"]: d for d in data["demos"]}
    levels = m["levels"]
    level_sql = {}
    for d in data["demos"]:
        for lv in d["demo"]["levels"]:
            level_sql[lv["isolation"]] = lv["isolation_sql"]
    head = "".join(f'<th scope="col">{esc(level_sql.get(lv, lv))}</th>' for lv in levels)
    rows = []
    for row in m["rows"]:
        cells = []
        for lv in levels:
            c = row["cells"][lv]
            bad = c.get("as_expected") is False
            pid = _slug(row["demo"], lv, 0)  # its player
            label = c.get("cell") or c["outcome"]
            cls = f"cell outcome-{_tone(c)}" + (" mismatch" if bad else "")
            cell = attrs(class_=cls, data_demo=row["demo"], data_level=lv,
                         data_outcome=c["outcome"], data_tip=c["line"])
            cells.append(f'<td{cell}><a href="#{esc(pid)}">{esc(label)}</a></td>')
        rows.append(f'<tr><th scope="row"><a href="#{esc(_slug(row["demo"], "demo"))}">'
                    f'{esc(row["demo"])}</a> <span class="caption">{esc(row["title"])}</span>'
                    f'</th>{"".join(cells)}</tr>')
    bad = m.get("mismatches") or []
    summary = (badge(f"{len(bad)} cell(s) differ from the catalog's expectations", "bad") if bad
               else badge("every cell matches the catalog's expectations", "ok"))
    sections = [f'<section class="demo-section" id="{esc(_slug(row["demo"], "demo"))}">'
                '<p class="noprint"><a href="#matrix">↑ back to the matrix</a></p>'
                f"{_demo_body(by_name[row['demo']])}</section>"
                for row in m["rows"] if row["demo"] in by_name]
    body = (f'<header><h1>txlab demo matrix: what each isolation level does</h1>'
            f'<p class="caption">{esc(m["server_version"])}. Each cell links to its step player; '
            "ANOMALY = the anomaly occurred; prevented = a session waited for a lock or was "
            "aborted with the SQLSTATE shown; no anomaly = nothing had to happen.</p></header>"
            f'<main><section id="matrix" aria-label="Matrix">{summary}<table class="matrix demo">'
            f'<thead><tr><th scope="col">demo</th>{head}</tr></thead><tbody>{"".join(rows)}'
            f'</tbody></table></section>{"".join(sections)}</main>')
    embedded = {"matrix": m, "demos": [d["demo"] for d in data["demos"]]}
    return document("txlab demo matrix", body, embedded, ("demo",), "demo-matrix")
