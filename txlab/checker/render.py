"""render(result, fmt): text for people, JSON for programs. Never computes anything."""

from __future__ import annotations

import json

from txlab.checker import models

FORMATS = ("text", "json")


def render(result, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, default=_json_default) + "\n"
    if fmt == "text":
        return _text(result)
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _json_default(x):
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    return str(x)


def _text(r) -> str:
    h = r.history
    run = " ".join(f"{h[k]}" for k in ("scenario", "strategy") if k in h)
    lines = [
        f"history    {h['transactions']} transactions ({h['committed']} committed, "
        f"{h['failed']} failed, {h['unknown']} unknown), format {h['format']}"
        + (f", {run}" if run else "") + (f" at {r.isolation}" if r.isolation else ""),
        f"model      {r.model}: {models.MODELS[r.model].summary}",
        "",
    ]
    if r.anomalies:
        w = max(len("anomaly"), *(len(n) for n in r.anomalies))
        lines.append(f"{'anomaly':<{w}}  {'count':>7}  at this level")
        for name, a in r.anomalies.items():
            flag = "FORBIDDEN" if a["status"] == "forbidden" else "allowed"
            lines.append(f"{name:<{w}}  {a['count']:>7}  {flag}")
    else:
        lines.append("no anomalies found")
    if r.unknown:
        lines.append(f"search timed out for: {', '.join(r.unknown)} (raise --time-limit)")
    for name, a in r.anomalies.items():
        for n, ex in enumerate(a["examples"], 1):
            tag = ("FORBIDDEN at this level: a database or harness bug"
                   if a["status"] == "forbidden" else "allowed at this level")
            lines += ["", f"{name} #{n} ({tag})", f"  {a['definition']}", ex["text"]]
    lines.append("")
    if r.models_ruled_out:
        lines.append(f"ruled out: {', '.join(r.models_ruled_out)}")
    s = r.stats["seconds"]
    lines.append(f"checked in {s['total']:.2f} s ({r.stats['edges']} edges, "
                 f"{r.stats['components']} cyclic components, largest {r.stats['largest_component']})")
    verdict = r.verdict.upper()
    if r.verdict == "invalid":
        verdict += f": {', '.join(r.forbidden)} forbidden at {r.model}"
    elif r.verdict == "unknown":
        verdict += ": a forbidden anomaly may have been missed (search timed out)"
    lines.append(verdict)
    return "\n".join(lines) + "\n"
