"""`txlab list` and `txlab describe`: the scenarios, fitted to the terminal."""

from __future__ import annotations

import inspect
import shlex

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from txlab import term as term_mod
from txlab.db import LEVELS, SHORT
from txlab.scenario import Knob, Scenario, command_words, number
from txlab.term import STYLES, Term, heading


def _accepted(k: Knob) -> str:
    """The knob's range: its hard bounds, and its sane maximum."""
    if k.choices or isinstance(k.default, (bool, str)):
        return ""
    low = "" if k.min is None else number(k.min)
    if k.sane_max is not None:
        return f"{low or '-' + number(k.sane_max)} to {number(k.sane_max)} (sane)"
    return f"{low} to {number(k.max)}" if k.max is not None else f"at least {low}" if low else ""


def render_list(found: dict[str, Scenario], t: Term, scenario_path=()) -> str:
    """The scenarios as a table; `scenario_path`: the --scenario-path folders `txlab
    list` was given, which the commands it suggests give again."""
    rows = [[s.name, s.summary, s.teaches, ", ".join(x.name for x in s.strategies),
             " ".join(f"{k.name}={k.default}" for k in s.knobs)]
            for s in sorted(found.values(), key=lambda s: s.name)]
    body = term_mod.table(["scenario", "summary", "teaches", "strategies", "knobs (-p)"], rows,
                          t, wrap={1: 24, 2: 18, 3: 18, 4: 18})
    try:
        from txlab.interleave import demo

        demos = list(demo.catalog())
    except Exception:  # the demo catalog is optional for listing scenarios
        demos = []
    named = shlex.join(["SCENARIO", *command_words("SCENARIO", scenario_path)[1:]])
    tail = (f"Run one: txlab run {named} [-s STRATEGY] [-i LEVEL] [-p KNOB=VALUE]; more "
            f"about one: txlab describe {named}.")
    if demos:
        tail += (f" Step-by-step demos ({len(demos)}: {', '.join(demos[:6])}, ...) are a "
                 "separate list: txlab demo --list, then txlab demo NAME -i all.")
    tail += " Terms: txlab explain."
    return term_mod.to_text(Group(body, "", Text(term_mod.wrapped(tail, t),
                                                  style=STYLES["muted"])), t)


def render(s: Scenario, t: Term | None = None, named: list[str] | None = None) -> str:
    """`txlab describe`; `named`: how a command names the scenario as it was reached
    (scenario.command_words: its file's path, or its name and --scenario-path), else
    its name."""
    t = t or term_mod.plain()
    named_as = shlex.join(named or [s.name])
    parts: list = [Text.assemble((s.name, STYLES["heading"]), f": {s.summary}"),
                   Text(f"Teaches: {s.teaches}")]
    if s.description:
        text = inspect.cleandoc(s.description)
        first, _, rest = text.partition("\n")
        if first.startswith(f"{s.name}:"):  # the docstring's title repeats the header
            text = rest.strip()
        if text:  # a docstring that was only its title says nothing more
            parts += ["", Text(_reflow(text))]
    parts += ["", heading("Invariants")]
    parts += [Padding(Text(f"- {i.name}"), (0, 0, 0, 2)) for i in s.invariants]
    rows = [[st.name, st.help] + ["safe" if lvl in st.safe_at else "unsafe"
                                  for lvl in LEVELS]
            for st in s.strategies]
    # the command stays whole on one line (no-break spaces), so that it can be copied
    measure = f"txlab matrix {named_as}".replace(" ", "\xa0")
    parts += ["", heading("Strategies"),
              Text(term_mod.wrapped("Expected behaviour at each level, from the scenario's own "
                                    f"declaration (safe: keeps every invariant); `{measure}` "
                                    "measures it.", t, fold=False).replace("\xa0", " "),
                   style=STYLES["muted"]),
              term_mod.table(["strategy", "what it does"] + [SHORT[k] for k in LEVELS], rows, t,
                             wrap={1: 20})]
    knobs = [[k.name, k.default, _accepted(k),
              k.help + (f" ({', '.join(k.choices)})" if k.choices else "")]
             for k in s.knobs]
    parts += ["", heading("Knobs (-p NAME=VALUE)")]
    parts.append(term_mod.table(["knob", "default", "accepted", "meaning"], knobs, t, wrap={3: 24})
                 if knobs else Text("  (none)"))
    if knobs:
        parts.append(Text(term_mod.wrapped("A value above a sane maximum needs "
                                           "--allow-large-params.", t), style=STYLES["muted"]))
    if s.path:
        parts += ["", Text(f"Source: {s.path}", style=STYLES["muted"])]
    return term_mod.to_text(Group(*parts), t)


def _reflow(text: str) -> str:
    """A docstring's paragraphs as one line each (the renderer wraps them to the width).

    An indented paragraph is a list: each item (a line indented by two spaces; deeper
    lines continue it) becomes a paragraph of its own, and a "name    text" item
    (its text in the column the continuation lines start at) becomes "name: text"."""
    out = []
    for para in text.split("\n\n"):
        lines = [line for line in para.split("\n") if line.strip()]
        if not lines:
            continue
        if not all(line.startswith("  ") for line in lines):
            out.append(" ".join(para.split()))
            continue
        deeper = [len(line) - len(line.lstrip()) for line in lines if line.startswith("   ")]
        col = min(deeper) if deeper else None
        items: list[list[str]] = []
        for line in lines:
            if not line.startswith("   ") or not items:  # two spaces: a new item
                name, text = line[2:col].strip() if col else "", line[col:] if col else line
                if not name or " " in name or not text.strip():
                    name, text = "", line
                items.append([name, text])
            else:
                items[-1][1] += " " + line
        out += [(f"{name}: " if name else "") + " ".join(text.split()) for name, text in items]
    return "\n\n".join(out)
