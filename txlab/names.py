"""txlab's namespaces point at each other.

Scenarios (`txlab run NAME`), demos (`txlab demo NAME`), strategies (`-s NAME`),
isolation levels (`-i NAME`) and explained terms (`txlab explain NAME`) are
separate lists; a name typed in the wrong place gets a pointer to the right
one ("p4 is a demo: txlab demo p4"), and a typo gets "did you mean" from every
list. `scenario(ref)` and `demo(ref)` resolve like txlab.scenario.resolve and
txlab.interleave.demo.resolve, with those hints added to the error.
"""

from __future__ import annotations

import shlex
from difflib import get_close_matches
from pathlib import Path

from txlab.errors import UsageError


def _scenarios(extra=()) -> dict:
    from txlab import scenario

    try:
        return scenario.discover(extra)
    except UsageError:
        return {}


def _demos() -> list[str]:
    from txlab.interleave import demo

    return list(demo.catalog())


def _levels() -> dict[str, str]:
    from txlab.db import LEVELS

    out = {}
    for key, level in LEVELS.items():
        out[key] = key
        out[level.sql.lower().replace(" ", "-")] = key
    out.update({"ru": "read-uncommitted", "rc": "read-committed", "rr": "repeatable-read",
                "ser": "serializable"})
    return out


def where_else(name: str, asked: str, extra=()) -> str:
    """A sentence pointing NAME at the namespace it belongs to, or at close names; ""
    when there is nothing to say. `asked` is the namespace that did not know it:
    "scenario" or "demo"."""
    key = name.strip().lower().replace("_", "-")
    scenarios = _scenarios(extra)
    demos = _demos()
    if asked != "demo" and key in demos:
        return f"{name} is a demo: txlab demo {key}"
    if asked != "scenario" and key in scenarios:
        return f"{name} is a scenario: txlab run {key}"
    levels = _levels()
    if key.replace(" ", "-") in levels:
        level = levels[key.replace(" ", "-")]
        return (f"{name} is an isolation level: txlab run SCENARIO -i {level}, or "
                f"txlab demo NAME -i {level}")
    owners = sorted(s.name for s in scenarios.values()
                    if any(st.name == key for st in s.strategies))
    if owners:
        from txlab.scenario import command_words

        run = shlex.join(command_words(owners[0], extra))  # its --scenario-path, if given
        return f"{name} is a strategy of {', '.join(owners)}: txlab run {run} -s {key}"
    from txlab import glossary

    try:
        known = glossary.index()
    except Exception:  # a broken scenario file must not hide the real message
        known = {}
    if glossary.key(name) in known:
        shown = _demo_showing(name) if asked == "scenario" else None
        if shown is not None:  # an anomaly typed as a scenario: the demo that shows it
            runs = [c for c in glossary.lookup(name).show if c.startswith("txlab run ")]
            under = f"; `{runs[0]}` produces it under load" if runs else ""
            return (f"{name} is an anomaly: `txlab demo {key}` shows it step by step"
                    f"{under}; `txlab explain {name}` tells its story")
        return f"{name} is explained by: txlab explain {name}"
    # Close names of the kind asked for first; the other kind's only when they are
    # much closer (a typo of a demo's name given to `run`).
    if asked == "scenario":
        mine, other, other_kind, verb = scenarios, demos, "demo", "txlab demo"
    else:
        mine, other, other_kind, verb = demos, scenarios, "scenario", "txlab run"
    close = get_close_matches(key, list(mine), n=3, cutoff=0.5)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    close = get_close_matches(key, list(other), n=2, cutoff=0.75)
    if close:
        return "Did you mean the " + " or the ".join(
            f"{other_kind} {c} ({verb} {c})" for c in close) + "?"
    return ""


def _sentence(hint: str) -> str:
    return hint if hint.endswith(("?", ".")) else hint + "."


def scenario(ref: str, extra=()):
    """txlab.scenario.resolve, with a pointer when REF is a demo, a level, a strategy ..."""
    from txlab import scenario as scenarios

    try:
        return scenarios.resolve(ref, extra)
    except UsageError as exc:
        if ref.endswith(".py") or "/" in ref:
            raise
        hint = where_else(ref, "scenario", extra)
        if not hint or hint.startswith("Did you mean") and "Did you mean" in str(exc):
            raise
        raise UsageError(f"unknown scenario {ref!r}: {_sentence(hint)} Scenarios: "
                         f"{', '.join(sorted(_scenarios(extra)))} (see `txlab list`).") from None


def demo(ref: str) -> tuple[Path, str | None]:
    """txlab.interleave.demo.resolve, and a note or None. An anomaly `txlab explain`
    knows (lost-update, write-skew, dirty-read ...) whose lesson shows it with a demo
    gives that demo, and a note saying so; anything else unknown gets a pointer when
    REF is a scenario, a level ..."""
    from txlab.interleave import demo as demos

    try:
        return demos.resolve(ref), None
    except UsageError:
        if ref.endswith(".spec") or "/" in ref:
            raise
        shown = _demo_showing(ref)
        if shown is not None:
            name, command = shown
            return demos.resolve(name), (f"{ref} is shown by the demo {name} (`{command}`; "
                                         f"`txlab explain {ref}` tells the story)")
        hint = where_else(ref, "demo")
        if not hint or hint.startswith("Did you mean"):  # a misspelt anomaly is closer
            hint = _close_anomaly(ref) or hint
        if not hint:
            raise
        raise UsageError(f"unknown demo {ref!r}: {_sentence(hint)} Demos: {', '.join(_demos())} "
                         "(see `txlab demo --list`), or give a path to a .spec file.") from None


def _close_anomaly(term: str) -> str:
    """`Did you mean 'lost-update' (txlab demo lost-update)?` for a misspelt anomaly a demo
    shows (`lostupdate`, `write skew`), else ""."""
    from txlab import glossary

    shown = {}
    for k, e in glossary.index().items():
        if e.kind == "anomaly" and _demo_showing(k) is not None:
            shown[k.replace(" ", "")] = k.replace(" ", "-")
    close = get_close_matches(glossary.key(term).replace(" ", ""), list(shown), n=1, cutoff=0.8)
    if not close:
        return ""
    name = shown[close[0]]
    return f"Did you mean {name!r} (txlab demo {name})?"


def _demo_showing(term: str) -> tuple[str, str] | None:
    """(demo name, command) of the demo that the lesson on anomaly `term` shows it
    with, or None (not an anomaly `txlab explain` knows, or no demo shows it)."""
    from txlab import glossary

    try:
        entry = glossary.lookup(term)
    except UsageError:
        return None
    if entry.kind != "anomaly":  # `demo 40001`, `demo serializable`: the usual pointers
        return None
    for command in entry.show:
        words = command.split()
        if words[:2] == ["txlab", "demo"] and len(words) > 2:
            return words[2], command
    return None
