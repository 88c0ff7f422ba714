"""The run page: `txlab run ... --html FILE`.

build(report, records) -> page data: the report's JSON (report.to_dict) and the
timeline summary of the attempt records (txlab.timeline); render(data) -> HTML.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from txlab import timeline
from txlab.html import svg
from txlab.html.anomaly import anomaly_html
from txlab.html.page import attrs, badge, document, esc, table
from txlab.report import level_sql

W, LEFT, RIGHT = 1160, 96, 14
PLOT = W - LEFT - RIGHT
MIN_MARK = 2.0


def build(report: dict, records: Iterable[dict], *, max_marks: int = timeline.MAX_MARKS,
          max_bins: int = timeline.MAX_BINS) -> dict:
    """Page data from the report's JSON and ONE pass over the attempt records."""
    keep = {t["id"] for a in report.get("anomalies") or () for ex in a.get("examples") or ()
            for t in ex.get("transactions") or () if isinstance(t.get("id"), int)}
    tl = timeline.summarize(records, keep_ids=keep, max_marks=max_marks, max_bins=max_bins,
                            seed=report.get("seed") or 0)
    causes = {c: timeline.class_info(f"aborted:{c}")
              for c in (report.get("outcomes") or {}).get("aborted") or {}}
    return {"report": report, "timeline": tl, "causes": causes}


def page(report: dict, records: Iterable[dict], **limits) -> str:
    return render(build(report, records, **limits))


# ---------------------------------------------------------------- sections


def _header(r: dict) -> str:
    params = " ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
    facts = [("server", r.get("server")), ("isolation", _level(r)),
             ("workers", r.get("workers")), ("seed", r.get("seed")),
             ("duration", f"{r.get('duration_s')} s"), ("think time", f"{r.get('think_ms')} ms"),
             ("retries allowed", r.get("retries")), ("params", params or "-")]
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    return (f"<header><h1>txlab run: {esc(r.get('scenario'))} / {esc(r.get('strategy'))} / "
            f"{esc(_level(r))}</h1><dl class=\"facts\">{items}</dl></header>")


def _level(r: dict) -> str:
    """READ COMMITTED, as the text report says it (the report's key is read-committed)."""
    return level_sql(r) if r.get("isolation") else str(r.get("isolation"))


def _next_item(n) -> str:
    if isinstance(n, dict):
        cmd = n.get("command") or n.get("cmd") or ""
        why = n.get("reason") or n.get("why") or n.get("because") or ""
        return f"<li><code>{esc(cmd)}</code>" + (f" — {esc(why)}" if why else "") + "</li>"
    return f"<li><code>{esc(n)}</code></li>"


def _story(r: dict) -> str:
    story, nxt = r.get("story"), r.get("next")
    if not story and not nxt:
        return ""
    parts = ['<section class="story" aria-label="What happened">']
    if story:
        sentences = story if isinstance(story, list) else [story]
        parts.append("".join(f"<p>{_code_spans(s)}</p>" for s in sentences))
    if nxt:
        parts.append('<h2 class="small">Try next</h2><ul class="next">'
                     + "".join(_next_item(n) for n in nxt) + "</ul>")
        if r.get("next_note"):
            parts.append(f'<p class="caption">{_code_spans(r["next_note"])}</p>')
    parts.append("</section>")
    return "".join(parts)


def _code_spans(text: str) -> str:
    """The story's `commands` as <code>, the rest escaped (the terminal shows the
    backticks; a page should not)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an odd backtick: leave it as text
        return esc(text)
    return "".join(esc(p) if i % 2 == 0 else f"<code>{esc(p)}</code>"
                   for i, p in enumerate(parts))


def _verdict(r: dict) -> str:
    holds = r.get("verdict") == "HOLDS"
    bad = [i["name"] for i in r.get("invariants") or () if not i.get("holds")]
    check = r.get("check") or {}
    lines = []
    if bad:
        lines.append(", ".join(bad))
    else:
        lines.append("every invariant held")
    if check.get("forbidden"):
        lines.append(f"anomalies {r.get('isolation')} forbids: {', '.join(check['forbidden'])} "
                     "(a database or harness bug)")
    if r.get("interrupted"):
        lines.append("INTERRUPTED: a partial run")
    notes = "".join(f"<li>{esc(n)}</li>" for n in r.get("notes") or ())
    return (f'<section class="verdict {"ok" if holds else "bad"}" aria-label="Verdict">'
            f'{badge(r.get("verdict") or "?", "ok" if holds else "bad")} '
            f'<span>{esc("; ".join(lines))}</span>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</section>")


def _outcomes(r: dict, causes: dict) -> str:
    o = r.get("outcomes") or {}
    reasons = ", ".join(f"{k}: {v}" for k, v in (o.get("declined_reasons") or {}).items())
    rows = [["committed", "", esc(o.get("committed"))],
            ["declined by a business rule", esc(reasons), esc(o.get("declined"))]]
    for cause, n in (o.get("aborted") or {}).items():
        info = causes.get(cause) or {"label": f"aborted: {cause}", "sqlstate": None}
        rows.append([esc(info["label"]), esc(info.get("sqlstate") or "-"), esc(n)])
    rows += [["retries", "", esc(o.get("retries"))],
             ["failed after all retries", "", esc(o.get("failed"))]]
    if o.get("unknown"):
        rows.append(["unknown (connection lost in COMMIT)", "", esc(o["unknown"])])

    return ('<section aria-labelledby="h-outcomes"><h2 id="h-outcomes">Outcomes</h2>'
            + table(["outcome", "SQLSTATE / reason", "attempts"], rows, "outcomes") + "</section>")


def _perf(r: dict) -> str:
    lat = r.get("latency_ms") or {}

    def ms(k):
        return "-" if lat.get(k) is None else f"{lat[k]} ms"

    return (f'<p class="perf"><strong>{esc(r.get("throughput_tps"))}</strong> committed/s; '
            f"latency of committed transactions (retries included): p50 {esc(ms('p50'))}, "
            f"p95 {esc(ms('p95'))}, p99 {esc(ms('p99'))}, max {esc(ms('max'))}</p>")


def _invariants(r: dict) -> str:
    rows = [[esc(i["name"]), esc(i.get("expected")), esc(i.get("actual")),
             badge("HOLDS", "ok") if i.get("holds") else badge("VIOLATED", "bad"),
             esc(i.get("detail") or "")] for i in r.get("invariants") or ()]
    return ('<section aria-labelledby="h-inv"><h2 id="h-inv">Invariants: expected vs actual</h2>'
            + table(["invariant", "expected", "actual", "verdict", "detail"], rows, "invariants")
            + "</section>")


def _legend(tl: dict, colours: dict) -> str:
    items = []
    for i, c in enumerate(tl["classes"]):
        code = f" ({c['sqlstate']})" if c.get("sqlstate") else ""
        items.append(f'<li><svg width="22" height="14" aria-hidden="true"><rect width="22" '
                     f'height="14" fill="{_fill(c, i, colours)}"/></svg> {esc(c["label"])}{esc(code)}'
                     f" <span class=\"count\">{esc(c['count'])}</span></li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def _fill(c: dict, i: int, colours: dict) -> str:
    return f"url(#hatch-{i})" if c["outcome"] == "aborted" else colours[c["key"]]


def _patterns(tl: dict, colours: dict) -> str:
    """Each outcome class's fill (.k0, .k1, ...); aborted classes are hatched, so they
    differ from committed ones without colour."""
    out = []
    for i, c in enumerate(tl["classes"]):
        if c["outcome"] == "aborted":
            out.append(f'<pattern id="hatch-{i}" width="5" height="5" patternUnits="userSpaceOnUse" '
                       f'patternTransform="rotate(45)"><rect width="5" height="5" '
                       f'fill="{colours[c["key"]]}"/><line x1="0" y1="0" x2="0" y2="5" '
                       'stroke="#fff" stroke-width="1.6"/></pattern>')
    fills = "".join(f".k{i}{{fill:{_fill(c, i, colours)}}}" for i, c in enumerate(tl["classes"]))
    return (f"<style>{fills}</style>"
            f'<svg width="0" height="0" class="defs" aria-hidden="true"><defs>{"".join(out)}</defs></svg>')


def _axis(duration: float, y: float, height: float) -> str:
    step = svg.nice_step(duration / 1000) * 1000 if duration > 0 else 1000
    ticks, t = [], 0.0
    k = PLOT / duration if duration > 0 else 0
    while t <= duration + 1e-9:
        x = LEFT + t * k
        ticks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + height}"/>'
                     f'<text x="{x:.1f}" y="{y - 4}">{_sec(t, step)}</text>')
        t += step
    return f'<g class="axis" data-y="{y}" data-h="{height}">{"".join(ticks)}</g>'


def _sec(ms: float, step_ms: float) -> str:
    digits = 0 if step_ms >= 1000 else 1 if step_ms >= 100 else 2 if step_ms >= 10 else 3
    return f"{ms / 1000:.{digits}f} s"


def _x(ms: float, k: float) -> float:
    return LEFT + ms * k


def _timeline(tl: dict, colours: dict) -> str:
    dur = tl["duration_ms"] or 1.0
    k = PLOT / dur
    exact = tl["exact"]
    lane = 24 if exact else 44
    top = 26
    workers = tl["workers"]
    h = top + lane * len(workers) + 6
    lane_of = {w: i for i, w in enumerate(workers)}
    out = [f'<svg id="timeline" class="zoomable" viewBox="0 0 {W} {h}" data-left="{LEFT}" '
           f'data-plot="{PLOT}" data-min="{MIN_MARK}" role="group" '
           f'aria-label="Timeline: one lane per worker, one mark per attempt">']
    for i, w in enumerate(workers):
        y = top + i * lane
        out.append(f'<rect class="lane" x="{LEFT}" y="{y}" width="{PLOT}" height="{lane - 2}"/>'
                   f'<text class="lanelabel" x="{LEFT - 8}" y="{y + lane / 2 + 2}">worker {esc(w)}</text>')
    out.append(_axis(dur, top, h - top))
    classes = tl["classes"]
    if not exact:
        b = tl["bins"]
        totals: dict = {}
        for bi, w, _c, n in b["cells"]:
            totals[(bi, w)] = totals.get((bi, w), 0) + n
        peak = max(totals.values(), default=1)
        stacks: dict = {}
        for bi, w, c, n in b["cells"]:
            stacks.setdefault((bi, w), []).append((c, n))
        for (bi, w), segs in sorted(stacks.items()):
            s, e = b["start_ms"][bi], b["end_ms"][bi]
            x, wd = _x(s, k), max(MIN_MARK, (e - s) * k - 0.5)
            y = top + lane_of[w] * lane + 24 - 2
            counts = ",".join(f"{c}:{n}" for c, n in segs)
            out.append(f'<g class="mk bin"{attrs(data_w=w, data_s=s, data_e=e, data_counts=counts)}>')
            for c, n in sorted(segs):
                hh = 22 * n / peak
                y -= hh
                out.append(f'<rect class="z seg k{c}"{attrs(data_s=s, data_e=e, data_outcome=classes[c]["outcome"], data_count=n)} '
                           f'x="{x:.1f}" y="{y:.2f}" width="{wd:.1f}" height="{max(hh, 0.6):.2f}"/>')
            out.append("</g>")
    for m in tl["marks"]:
        c = classes[m["c"]]
        y = top + lane_of[m["w"]] * lane + (3 if exact else 26)
        mh = (lane - 8) if exact else 12
        if c["outcome"] == "declined":
            y, mh = y + mh / 2, mh / 2
        x, wd = _x(m["s"], k), max(MIN_MARK, (m["e"] - m["s"]) * k)
        out.append(f'<rect class="mk z mark k{m["c"]}"{attrs(data_id=m["id"], data_w=m["w"], data_s=m["s"], data_e=m["e"], data_outcome=c["outcome"])} '
                   f'x="{x:.1f}" y="{y:.1f}" width="{wd:.1f}" height="{mh:.1f}"/>')
    out.append('<rect class="brush" x="0" y="0" width="0" height="0" visibility="hidden"/></svg>')
    if exact:
        what = f"every attempt: {tl['attempts']} marks"
    else:
        what = (f"{tl['attempts']} attempts in time bins of {tl['bins']['width_ms']:g} ms per worker "
                f"(upper band: attempts completed in the bin, by outcome); lower band: exact marks "
                f"for a random sample of {tl['sampled']} attempts"
                + (f" and the {tl['kept']} attempts of the anomaly examples" if tl["kept"] else ""))
    controls = (
        '<form class="zoom" aria-label="Zoom into a time window" onsubmit="return false">'
        '<label>from <input type="number" name="a" step="any" min="0" value="0"> s</label> '
        f'<label>to <input type="number" name="b" step="any" min="0" value="{dur / 1000:.3f}"> s</label> '
        '<button type="submit" data-zoom="apply">Zoom</button> '
        '<button type="button" data-zoom="in" aria-label="Zoom in">+</button> '
        '<button type="button" data-zoom="out" aria-label="Zoom out">−</button> '
        '<button type="button" data-zoom="left" aria-label="Earlier">◀</button> '
        '<button type="button" data-zoom="right" aria-label="Later">▶</button> '
        '<button type="button" data-zoom="reset">Whole run</button></form>')
    return ('<section aria-labelledby="h-tl"><h2 id="h-tl">Timeline</h2>'
            f'<p class="caption">One lane per worker; {esc(what)}. Hover or focus a mark for its '
            "transaction (Tab into the timeline, then arrow keys); drag across the timeline or "
            "use the fields to zoom into a time window.</p>"
            + _legend(tl, colours) + controls + "".join(out) + "</section>")


def _rates(tl: dict, colours: dict) -> str:
    """Committed per second above, aborted per second by cause below; zooms with the timeline."""
    b = tl["bins"]
    if not b["start_ms"]:
        return ""
    dur = tl["duration_ms"] or 1.0
    k = PLOT / dur
    classes = {c["key"]: (i, c) for i, c in enumerate(tl["classes"])}
    committed = next((r["per_s"] for r in tl["rates"] if r["class"] == "committed"),
                     [0] * len(b["start_ms"]))
    aborted = [r for r in tl["rates"] if classes[r["class"]][1]["outcome"] == "aborted"]
    up_h, down_h, top = 120, 60 if aborted else 0, 20
    zero = top + up_h
    h = zero + down_h + 26
    peak_up = max(committed, default=0) or 1
    peak_down = max((sum(r["per_s"][i] for r in aborted) for i in range(len(b["start_ms"]))),
                    default=0) or 1
    out = [f'<svg id="rates" class="zoomable" viewBox="0 0 {W} {h}" data-left="{LEFT}" '
           f'data-plot="{PLOT}" data-min="1" role="img" aria-labelledby="rates-t">'
           '<title id="rates-t">Committed per second (up) and aborted per second by cause (down), '
           f'per {b["width_ms"]:g} ms bin</title>']
    out.append(_axis(dur, top, up_h + down_h))
    out.append(_yaxis(peak_up, zero, up_h, 1, "committed/s"))
    if aborted:
        out.append(_yaxis(peak_down, zero, down_h, -1, "aborted/s"))
    for i, (s, e) in enumerate(zip(b["start_ms"], b["end_ms"], strict=True)):
        x, wd = _x(s, k), max(1.0, (e - s) * k - 0.5)
        v = committed[i]
        if v:
            hh = up_h * v / peak_up
            out.append(f'<rect class="z"{attrs(data_s=s, data_e=e, data_outcome="committed", data_rate=v)} '
                       f'x="{x:.1f}" y="{zero - hh:.2f}" width="{wd:.1f}" height="{hh:.2f}" '
                       f'fill="{colours["committed"]}"><title>{s / 1000:.2f}–{e / 1000:.2f} s: '
                       f"{v:g} committed/s</title></rect>")
        y = zero
        for r in aborted:
            v = r["per_s"][i]
            if not v:
                continue
            ci, c = classes[r["class"]]
            hh = down_h * v / peak_down
            out.append(f'<rect class="z"{attrs(data_s=s, data_e=e, data_outcome="aborted", data_class=c["key"], data_rate=v)} '
                       f'x="{x:.1f}" y="{y:.2f}" width="{wd:.1f}" height="{hh:.2f}" '
                       f'fill="{_fill(c, ci, colours)}"><title>{s / 1000:.2f}–{e / 1000:.2f} s: '
                       f"{v:g}/s {esc(c['label'])}</title></rect>")
            y += hh
    out.append(f'<line class="zero" x1="{LEFT}" x2="{W - RIGHT}" y1="{zero}" y2="{zero}"/></svg>')
    return ('<section aria-labelledby="h-rates"><h2 id="h-rates">Throughput and aborts per second'
            "</h2>" + "".join(out) + "</section>")


def _yaxis(peak: float, zero: float, height: float, sign: int, label: str) -> str:
    step = svg.nice_step(peak, 3)
    out, v = [], 0.0
    while v <= peak + 1e-9:
        y = zero - sign * height * v / peak
        out.append(f'<line x1="{LEFT - 4}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text x="{LEFT - 8}" y="{y + 4:.1f}">{v:g}</text>')
        v += step
    ly = zero - sign * height / 2
    return (f'<g class="yaxis">{"".join(out)}<text class="ylabel" x="12" y="{ly:.1f}">'
            f"{esc(label)}</text></g>")


def _latency(tl: dict, r: dict, colours: dict) -> str:
    hist = tl["latency"]
    if not hist:
        return ""
    top, hh, h = 20, 120, 190
    n = len(hist)
    colw = PLOT / n
    peak = max(b["n"] for b in hist) or 1
    out = [f'<svg id="latency" viewBox="0 0 {W} {h}" role="img" aria-labelledby="lat-t">'
           '<title id="lat-t">Latency of committed transactions: how many took how long '
           "(logarithmic buckets, 4 per doubling)</title>"]
    out.append(_yaxis(peak, top + hh, hh, 1, "transactions"))
    for i, b in enumerate(hist):
        if not b["n"]:
            continue
        bh = hh * b["n"] / peak
        out.append(f'<rect class="hbar"{attrs(data_n=b["n"])} x="{LEFT + i * colw:.1f}" '
                   f'y="{top + hh - bh:.2f}" width="{max(colw - 1, 1):.1f}" height="{bh:.2f}" '
                   f'fill="{colours.get("committed", "#0072B2")}"><title>{b["lo_ms"]:g}–'
                   f'{b["hi_ms"]:g} ms: {b["n"]} transactions</title></rect>')
    lo = hist[0]["lo_ms"]
    per = 4  # buckets per doubling (timeline._PER_OCTAVE)

    def x_of(ms):
        return LEFT + (math.log2(ms / lo) * per) * colw

    for i, b in enumerate(hist):  # label bucket edges at round values
        v = b["lo_ms"]
        if i % 4 == 0:
            out.append(f'<text class="tick" x="{LEFT + i * colw:.1f}" y="{top + hh + 16}">'
                       f"{v:.3g} ms</text>")
    lat = r.get("latency_ms") or {}
    for j, key in enumerate(("p50", "p95", "p99", "max")):
        v = lat.get(key)
        if v is None or v <= 0:
            continue
        x = min(max(x_of(v), LEFT), W - RIGHT)
        right = x > W - 160  # near the right edge: the label goes left of its line
        anchor = ' text-anchor="end"' if right else ""
        out.append(f'<g class="pct"><line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" '
                   f'y2="{top + hh}"/><text x="{x - 3 if right else x + 3:.1f}" '
                   f'y="{top + 8 + 13 * j}"{anchor}>{key} {v:g} ms</text></g>')
    out.append("</svg>")
    return ('<section aria-labelledby="h-lat"><h2 id="h-lat">Latency distribution</h2>'
            + "".join(out) + "</section>")


def _anomalies(r: dict) -> str:
    found = r.get("anomalies") or []
    if r.get("check") is None:
        body = "<p>Not checked (<code>--no-check</code>).</p>"
    elif not found and r["check"].get("empty_graph"):
        body = ("<p>The checker found no anomaly, but the history gave no dependency between "
                "its transactions either, so there was no cycle to look for: the verdict is "
                "unknown.</p>")
    elif not found:
        body = "<p>The checker found no anomaly in the history.</p>"
    else:
        body = "".join(anomaly_html(a["kind"], a, f"a{n}", highlight=True)
                       for n, a in enumerate(found, 1))
    check = r.get("check") or {}
    model = (f" (checked against the {esc(check.get('model'))} model: "
             f"{esc(check.get('verdict'))})") if check else ""
    if check.get("unknown"):
        body += (f"<p>The cycle search timed out for {esc(', '.join(check['unknown']))}: "
                 "an anomaly of those kinds may have been missed.</p>")
    return ('<section aria-labelledby="h-anom"><h2 id="h-anom">Anomalies in the history'
            f"{model}</h2>{body}</section>")


def render(data: dict) -> str:
    r, tl = data["report"], data["timeline"]
    colours = svg.class_colours(tl["classes"])
    body = "".join([
        _header(r), _verdict(r), _story(r), _perf(r), '<main>', _patterns(tl, colours),
        _timeline(tl, colours) if tl["attempts"] else "", _rates(tl, colours),
        _latency(tl, r, colours), _outcomes(r, data.get("causes") or {}), _invariants(r),
        _anomalies(r), "</main>",
    ])
    title = f"txlab run: {r.get('scenario')} / {r.get('strategy')} / {_level(r)}"
    return document(title, body, data, ("run",), "run")
