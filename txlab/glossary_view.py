"""`txlab explain` as text (fitted to the terminal, coloured there) or JSON."""

from __future__ import annotations

import json

from txlab import term as term_mod
from txlab.glossary import KINDS, Entry

FORMATS = ("text", "json")


def render_entry(e: Entry, fmt: str, t: term_mod.Term) -> str:
    if fmt == "json":
        return json.dumps(e.to_dict(), indent=2) + "\n"
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    head = Text()
    head.append(e.term, style=term_mod.STYLES["heading"])
    head.append(f"  {e.title}")
    head.append(f"  ({e.kind})", style=term_mod.STYLES["muted"])
    parts: list = [head]
    for title, body in (("What it is", e.what), ("Why it happens", e.why),
                        ("What to do", e.fix)):
        if body:
            parts += ["", term_mod.heading(title), Padding(Text(body), (0, 0, 0, 2))]
    if e.uses:
        parts += [""] + [Padding(Text(u), (0, 0, 0, 2)) for u in e.uses]
    if e.show:
        parts += ["", term_mod.heading("See it")]
        parts += [Padding(term_mod.styled(c, "command"), (0, 0, 0, 2)) for c in e.show]
    if e.see:
        parts += ["", Text("Related: " + ", ".join(e.see), style=term_mod.STYLES["muted"])]
    return term_mod.to_text(Group(*parts), t)


def render_list(entries: list[Entry], fmt: str, t: term_mod.Term) -> str:
    if fmt == "json":
        return json.dumps([e.to_dict() for e in entries], indent=2) + "\n"
    from rich.console import Group
    from rich.text import Text

    parts: list = [Text("txlab explain TERM: what a term in txlab's output means, why it "
                        "happens, what to do, and a command that shows it. Terms:")]
    for kind in KINDS:
        rows = [[e.term, e.title] for e in entries if e.kind == kind]
        if rows:
            parts += ["", term_mod.heading(_plural(kind)),
                      term_mod.table([], rows, t, wrap={1: 24})]
    return term_mod.to_text(Group(*parts), t)


def _plural(kind: str) -> str:
    return {"SQLSTATE": "SQLSTATEs and abort causes", "anomaly": "Anomaly classes",
            "isolation level": "Isolation levels", "model": "Checker models",
            "strategy": "Strategies (from the scenarios)",
            "report term": "Words the reports use"}[kind]
