"""`txlab describe`: a scenario's story, invariants, strategies by level, and knobs."""

from __future__ import annotations

import inspect

from tabulate import tabulate

from txlab.db import LEVELS
from txlab.matrix import SHORT
from txlab.scenario import Knob, Scenario, number


def _accepted(k: Knob) -> str:
    """The knob's range: its hard bounds, and its sane maximum."""
    if k.choices or isinstance(k.default, (bool, str)):
        return ""
    low = "" if k.min is None else number(k.min)
    if k.sane_max is not None:
        return f"{low or '-' + number(k.sane_max)} to {number(k.sane_max)} (sane)"
    return f"{low} to {number(k.max)}" if k.max is not None else f"at least {low}" if low else ""


def render(s: Scenario) -> str:
    parts = [f"{s.name}: {s.summary}", f"Teaches: {s.teaches}"]
    if s.description:
        text = inspect.cleandoc(s.description)
        first, _, rest = text.partition("\n")
        if first.startswith(f"{s.name}:"):  # the docstring's title repeats the header
            text = rest.strip()
        parts.append(text)
    parts.append("Invariants:\n" + "\n".join(f"  - {i.name}" for i in s.invariants))
    rows = [[st.name, st.help] + ["keeps invariants" if lvl in st.safe_at else "may violate"
                                  for lvl in LEVELS]
            for st in s.strategies]
    parts.append("Strategies (expected behaviour at each level, from the scenario's own "
                 "declaration; `txlab matrix` measures it):\n"
                 + tabulate(rows, headers=["strategy", "what it does"] + [SHORT[k] for k in LEVELS],
                            tablefmt="simple", maxcolwidths=[None, 50, None, None, None, None]))
    knobs = [[k.name, k.default, _accepted(k),
              k.help + (f" ({', '.join(k.choices)})" if k.choices else "")]
             for k in s.knobs]
    parts.append("Knobs (--param NAME=VALUE):\n"
                 + (tabulate(knobs, headers=["knob", "default", "accepted", "meaning"],
                             tablefmt="simple", disable_numparse=True)
                    + "\nA value above a sane maximum needs --allow-large-params."
                    if knobs else "  (none)"))
    if s.path:
        parts.append(f"Source: {s.path}")
    return "\n\n".join(parts) + "\n"
