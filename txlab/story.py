"""The run report's opening story: what happened, in numbers and why, and what to try next.

Data in, data out: `tell(report)` takes the report's dictionary (report.to_dict
without these keys) and returns two to four plain sentences and a few
suggested commands, each with why it is worth running. Every sentence follows
from the data: the invariants' expected and actual values (and the scenario's
own words for a violation, `Verdict.story`), the outcomes by cause, the
checker's anomalies, the run's level and strategy, and the levels each
strategy is declared safe at (with the scenario's words for its risk,
`Strategy.risk`). Nothing here names a particular scenario.

Terms are explained once, inline, and point at `txlab explain TERM`.
"""

from __future__ import annotations

import shlex
from dataclasses import fields

from txlab.db import LEVELS
from txlab.errors import (
    DEADLOCK,
    RETRYABLE,
    SERIALIZATION_CONCURRENT_UPDATE,
    SERIALIZATION_RW_DEPENDENCIES,
    VERSION_CONFLICT,
    cause_name,
    cause_sqlstate,
)
from txlab.settings import RunSettings
from txlab.stats import INTERRUPTED_CAUSE

LEVEL_ORDER = ("read-uncommitted", "read-committed", "repeatable-read", "serializable")
MOST = 0.5  # "most attempts aborted": more than this share
MANY = 0.1  # worth a sentence: more than this share
RETRIES_TO_SUGGEST = 10

# Why an attempt was aborted, in a clause (cause key -> words).
ABORT_WHY = {
    SERIALIZATION_CONCURRENT_UPDATE: "a row it wanted to change had been changed by a "
                                     "transaction that committed after its snapshot",
    SERIALIZATION_RW_DEPENDENCIES: "SERIALIZABLE saw reads and writes that could not be put in "
                                   "any serial order",
    "40001": "the server could not serialize it with the others",
    DEADLOCK: "it and another transaction each waited for a lock the other held",
    "55P03": "it waited for a lock longer than lock_timeout",
    "57014": "a statement ran longer than statement_timeout",
    VERSION_CONFLICT: "the row's version had changed since it was read",
}

# The checker's anomaly classes in plain words (the definitions cite the papers).
ANOMALY_WHY = {
    "lost update": "two transactions read the same version of a row and both wrote it, so the "
                   "later write replaced the earlier one unseen",
    "G-single": "read skew, a transaction saw some of another's changes but not the rest",
    "G-nonadjacent": "a cycle of transactions that each missed another's write",
    "G2-item": "write skew, two transactions each changed what the other had read, and both "
               "committed",
    "G0": "dirty write, transactions overwrote each other's uncommitted writes",
    "G1a": "aborted read, a transaction read a write that was rolled back",
    "G1b": "intermediate read, a transaction read a value its writer changed again before "
           "committing",
    "G1c": "circular information flow, transactions read each other's writes",
    "internal": "a transaction's read disagreed with its own earlier write",
    "garbage-read": "a read returned a value nobody wrote",
}


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{_n(n)} {word if n == 1 else (plural or word + 's')}"


def _level(key: str) -> str:
    return LEVELS[key].sql if key in LEVELS else key


def _levels(keys) -> str:
    names = [_level(k) for k in LEVEL_ORDER if k in keys]
    if len(names) == len(LEVEL_ORDER):
        return "every level"
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _unit(a: dict) -> str:
    """What the count counts (the report's `unit` when it has one): a lost-update group of
    n adds n - 1 overwritten updates; a cycle kind counts strongly connected groups of
    transactions holding such a cycle; the rest count reads or findings."""
    if a.get("unit"):
        return a["unit"]
    one = a["count"] == 1
    if a["kind"] == "lost update":
        return "overwritten update" if one else "overwritten updates"
    if a["kind"] in ("G1a", "G1b", "internal", "garbage-read"):
        return "read" if one else "reads"
    if a["kind"].split("-process")[0].split("-realtime")[0] in _CYCLES:
        return "group with a cycle" if one else "groups with a cycle"
    return "finding" if one else "findings"


_CYCLES = ("G0", "G1c", "G-single", "G-nonadjacent", "G2-item")


def _anomaly_words(a: dict) -> str:
    """`2,932 overwritten updates (lost update: ...; `txlab explain lost-update`)`"""
    kind = a["kind"]
    base = kind.split("-process")[0].split("-realtime")[0]
    why = ANOMALY_WHY.get(kind) or ANOMALY_WHY.get(base) or a.get("definition", "")
    return (f"{_n(a['count'])} {_unit(a)} ({kind}: {why}; "
            f"`txlab explain {kind.replace(' ', '-')}`)")


# ---------------------------------------------------------------- commands


def _defaults() -> dict:
    return {f.name: f.default for f in fields(RunSettings)}


# Where a copied command finds the database a run was given by --dsn: its URL is never
# printed (it may hold a password), so the commands name the variable txlab reads.
DSN_PLACEHOLDER = '"$TXLAB_DSN"'


def _command(r: dict, **change) -> str:
    """`txlab run SCENARIO ...` for the same run with `change` applied: the scenario as
    it was reached (its file's path, or its name and --scenario-path), the same run
    length, options and database (`rerun`); options left at their defaults are not
    spelled out."""
    declared = r.get("declared") or {}
    rerun = r.get("rerun") or {}  # absent from an older report: the options it had
    strategies = [s["name"] for s in declared.get("strategies", [])]
    defaults = _defaults()
    want = {"strategy": r["strategy"], "isolation": r["isolation"], "retries": r["retries"],
            "workers": r["workers"], "think_ms": r["think_ms"], "params": r.get("params") or {},
            "check": rerun.get("check", True)}
    want.update(change)
    parts = ["txlab", "run", declared.get("ref") or r["scenario"]]
    for folder in rerun.get("scenario_path") or ():
        parts += ["--scenario-path", folder]
    if want["strategy"] != (strategies[0] if strategies else None):
        parts += ["-s", want["strategy"]]
    if want["isolation"] != defaults["isolation"].key:
        parts += ["-i", want["isolation"]]
    if want["workers"] != defaults["workers"]:
        parts += ["-w", str(want["workers"])]
    if rerun.get("transactions"):
        parts += ["-n", str(rerun["transactions"])]
    elif rerun.get("duration_s") not in (None, defaults["duration_s"]):
        parts += ["-d", f"{rerun['duration_s']:g}"]
    if want["think_ms"] != defaults["think_ms"]:
        parts += ["--think-ms", f"{want['think_ms']:g}"]
    if want["retries"] != defaults["retries"]:
        parts += ["--retries", str(want["retries"])]
    knobs = declared.get("knobs", {})
    readers = declared.get("knob_strategies", {})
    for k, v in want["params"].items():
        if k in knobs and v != knobs[k] and want["strategy"] in readers.get(k, [want["strategy"]]):
            parts += ["-p", f"{k}={v}"]
    if rerun.get("allow_large_params"):
        parts.append("--allow-large-params")
    for key in ("lock_timeout_ms", "statement_timeout_ms", "deadlock_timeout_ms"):
        if rerun.get(key, defaults[key]) != defaults[key]:
            parts += ["--" + key.replace("_", "-"), str(rerun[key])]
    if not want["check"]:
        parts.append("--no-check")
    line = shlex.join(parts)
    if rerun.get("dsn_option"):
        line += f" --dsn {DSN_PLACEHOLDER}"
    if rerun.get("schema", defaults["schema"]) != defaults["schema"]:
        line += f" --schema {shlex.quote(rerun['schema'])}"
    return line


def next_note(r: dict) -> str | None:
    """What the suggested commands need from the reader: the run's --dsn, which no
    report prints."""
    if not (r.get("rerun") or {}).get("dsn_option"):
        return None
    return (f"`--dsn {DSN_PLACEHOLDER}` stands for this run's --dsn, which txlab never prints "
            "(it may hold a password): set TXLAB_DSN to it first, `export TXLAB_DSN=URL`.")


def unread_params(r: dict) -> dict[str, list[str]]:
    """The knobs this run set (away from their defaults) that its strategy does not read,
    each as `name=value` -> the strategies that do: they changed nothing."""
    declared = r.get("declared") or {}
    knobs, readers = declared.get("knobs", {}), declared.get("knob_strategies", {})
    return {f"{k}={v}": readers[k] for k, v in (r.get("params") or {}).items()
            if k in readers and r["strategy"] not in readers[k] and v != knobs.get(k)}


# ---------------------------------------------------------------- the story


def _strategies(r: dict) -> tuple[dict | None, list[dict]]:
    declared = (r.get("declared") or {}).get("strategies", [])
    mine = next((s for s in declared if s["name"] == r["strategy"]), None)
    return mine, declared


def _aborts(r: dict) -> tuple[int, int, list[tuple[str, int]]]:
    o = r["outcomes"]
    aborted = {k: v for k, v in o["aborted"].items() if k != INTERRUPTED_CAUSE}
    attempts = o["committed"] + o["declined"] + sum(o["aborted"].values()) + o["unknown"]
    return attempts, sum(aborted.values()), sorted(aborted.items(), key=lambda kv: -kv[1])


def _checked(r: dict) -> str:
    """How the history checker's finding ends the first sentence of a clean run."""
    if r["check"] is None:
        return f" (the history was not checked: {r.get('check_skipped') or '--no-check'})"
    allowed = [a for a in r["anomalies"] if a["status"] != "forbidden"]
    if not r["anomalies"] and r["check"].get("empty_graph"):
        return (", but the history checker had nothing to go on: no transaction depended on "
                "another (its verdict is unknown)")
    if not r["anomalies"]:
        return ", and the history checker found no anomaly"
    if allowed and len(allowed) == len(r["anomalies"]):
        return (f"; the history checker found {_anomaly_words(allowed[0])}, which "
                f"{_level(r['isolation'])} allows, and it broke no invariant here")
    return ""


def why_unchecked(r: dict) -> str:
    """Why a report's invariants went unchecked, in a clause (the notes say it too)."""
    if r.get("schema_taken"):
        return "another txlab took the schema"
    if r.get("failure"):
        return "the server was lost"
    if r.get("checks_unreachable"):
        return "interrupted while the server could not be reached"
    return "interrupted"


def _what_broke(r: dict) -> str:
    invs = r["invariants"]
    bad = [i for i in invs if not i["holds"]]
    unchecked = r.get("invariants_unchecked") or []
    if unchecked and not bad:
        why = why_unchecked(r)
        why = f"the run was {why}" if why.startswith("interrupted") else why
        held = f"the {_plural(len(invs), 'invariant')} checked held, " if invs else ""
        names = ", ".join(f'"{n}"' for n in unchecked)
        return f"Not every invariant was checked ({why}): {held}{names} not checked."
    if not invs:
        return "The scenario declares no invariants, so nothing was checked on the final state."
    if not bad:
        o = r["outcomes"]
        held = "The invariant held" if len(invs) == 1 else f"All {len(invs)} invariants held"
        if not _aborts(r)[0]:
            return (f"No transaction ran, so nothing was tested: {held[0].lower()}{held[1:]} "
                    "on the initial state.")
        return (f"{held} over "
                f"{_plural(o['committed'], 'committed transaction')}"
                + (f" ({_n(o['declined'])} more declined by the scenario's own rules)"
                   if o["declined"] else "") + _checked(r) + ".")
    first = bad[0]
    said = first.get("story") or (f"\"{first['name']}\" was violated: expected "
                                  f"{first['expected']}, found {first['actual']}")
    more = f" ({len(bad)} of {len(invs)} invariants violated)" if len(bad) > 1 else ""
    return f"{said[0].upper()}{said[1:]}{more}."


def _strategy_words(r: dict, violated: bool) -> str | None:
    mine, _ = _strategies(r)
    if not mine or not mine["safe_at"]:
        return None
    level = r["isolation"]
    who = f"The {mine['name']} strategy ({mine['help']})"
    if level in mine["safe_at"]:
        if violated:
            return (f"{who} is declared safe at {_level(level)}, so this is unexpected: a bug in "
                    "the scenario, the harness or the database.")
        return f"{who} is declared safe at {_levels(mine['safe_at'])}."
    risk = f": {mine['risk']}" if mine.get("risk") else ""
    # unchecked, or no transaction ran: no luck to speak of
    if violated or r.get("invariants_unchecked") or not _aborts(r)[0]:
        return (f"{who} is declared safe only at {_levels(mine['safe_at'])}, not at "
                f"{_level(level)}{risk}.")
    return (f"{who} is declared safe only at {_levels(mine['safe_at'])}, not at {_level(level)}: "
            "this run was lucky, or too short to show it.")


def _found(r: dict) -> str:
    """The checker's first two anomaly kinds in a sentence (r["anomalies"] not empty)."""
    found = [_anomaly_words(a) for a in r["anomalies"][:2]]
    more = len(r["anomalies"]) - len(found)
    tail = f"; {_plural(more, 'more kind')} in the table below" if more else ""
    return f"The history checker found {' and '.join(found)}{tail}."


def _unchecked_found(r: dict) -> str | None:
    """With invariants left unchecked, what the checker found still counts (the held
    branch says it with the invariants; here nothing else would)."""
    if not r.get("invariants_unchecked") or not r.get("anomalies"):
        return None
    return _found(r)


def _why_broke(r: dict) -> list[str]:
    out = []
    said = _strategy_words(r, True)
    if said:
        out.append(said)
    if r["check"] is None:
        out.append(f"The history was not checked ({r.get('check_skipped') or '--no-check'}), "
                   "so txlab cannot say which anomaly did it.")
    elif r["anomalies"]:
        out.append(_found(r))
        kinds = {a["kind"] for a in r["anomalies"]}
        if "lost update" in kinds and "G-single" in kinds:  # the count is not the loss
            out.append("Overwritten updates count only transactions that read the same "
                       "version; one that wrote over later versions it never read forms a "
                       "G-single cycle instead, so how much was lost is what the invariant "
                       "says.")
    else:
        out.append("The history checker found no anomaly among the rows transactions read or "
                   "wrote, so the cause is one it cannot see (see the note below).")
    return out


def _flat(name: str) -> str:
    """A cause's name without parentheses, for use inside them: "optimistic version
    conflict (no row matched)" -> "optimistic version conflict, no row matched"."""
    return name.replace(" (", ", ").replace(")", "")


def _why_aborted(r: dict) -> str | None:
    attempts, aborted, causes = _aborts(r)
    if not attempts or aborted / attempts <= MANY:
        return None
    by_code: dict[str, list] = {}
    for cause, n in causes:  # 40001-concurrent-update under 40001; version-conflict whole
        by_code.setdefault(cause_sqlstate(cause) or cause, []).append((cause, n))
    code, flavours = max(by_code.items(), key=lambda kv: sum(n for _, n in kv[1]))
    total = sum(n for _, n in flavours)
    share = "all" if total == aborted else f"{_n(total)} of them"
    whys = [f"{_n(n)} because {ABORT_WHY[c]}" if len(flavours) > 1 and c in ABORT_WHY
            else ABORT_WHY.get(c, cause_name(c)) for c, n in flavours]
    text = (f"{_n(aborted)} of {_n(attempts)} attempts ({round(100 * aborted / attempts)}%) were "
            f"aborted, {share} with {code} ({_flat(cause_name(code))}: {', '.join(whys)}; "
            f"`txlab explain {code}`)")
    o = r["outcomes"]
    if r["retries"] == 0:
        text += "; with --retries 0 none was tried again"
    elif o["failed"]:
        text += (f"; {_plural(o['failed'], 'transaction')} still failed after "
                 f"{_plural(r['retries'], 'retry', 'retries')}")
    else:
        text += "; retried, each one eventually committed or was declined"
    return text + "."


def _deadlocks(r: dict) -> str | None:
    """Deadlock victims, however few (a sentence of their own unless _why_aborted's is
    about them): a deadlock is a bug in the transactions' lock order, never noise."""
    attempts, aborted, causes = _aborts(r)
    n = dict(causes).get(DEADLOCK, 0)
    if not n or (aborted / attempts > MANY and causes[0][0] == DEADLOCK):
        return None
    victims = "attempt was" if n == 1 else "attempts were"
    return (f"{_n(n)} {victims} chosen as the deadlock victim ({DEADLOCK}: "
            f"{ABORT_WHY[DEADLOCK]}; `txlab explain {DEADLOCK}`): transactions that take "
            "their row locks in one order never deadlock.")


def _forbidden(r: dict) -> str | None:
    forbidden = [a for a in r["anomalies"] if a["status"] == "forbidden"]
    if r["check"] is None or not forbidden:
        return None
    return (f"But the history checker found {_anomaly_words(forbidden[0])}, which "
            f"{_level(r['isolation'])} forbids: a database or harness bug.")


def _retry_kind(cause: str) -> str | None:
    """Which lesson retrying a retryable cause teaches: 40001 at the level, a deadlock,
    an optimistic version check."""
    if cause == VERSION_CONFLICT:
        return "version"
    if cause == DEADLOCK:
        return "deadlock"
    if cause in RETRYABLE:
        return "serialization"
    return None


def _why_retry(causes: list[tuple[str, int]], level: str) -> str:
    """Why to retry, from what aborted the attempts (largest first): a serialization
    failure is how REPEATABLE READ and SERIALIZABLE say "try again", a version conflict
    is how optimistic locking does; a deadlock victim is retried whatever the level."""
    told = {"serialization": ("serialization failures (40001)",
                              f"how {_level(level)} is meant to be used"),
            "version": ("optimistic version conflicts", "how optimistic locking is meant to be used"),
            "deadlock": ("deadlocks (40P01)", "the usual cure for a deadlock victim")}
    kinds: dict[str, int] = {}
    for cause, n in causes:
        kind = _retry_kind(cause)
        if kind:
            kinds[kind] = kinds.get(kind, 0) + n
    order = sorted(kinds, key=lambda k: -kinds[k])
    return (f"most attempts were aborted by {' and '.join(told[k][0] for k in order)}: "
            f"retrying them is {', and '.join(told[k][1] for k in order)}")


def _next(r: dict, violated: bool) -> list[dict]:
    mine, declared = _strategies(r)
    level = r["isolation"]
    attempts, aborted, causes = _aborts(r)
    out: list[dict] = []
    if r["interrupted"]:
        out.append({"command": _command(r), "why": "its checks were interrupted; run it again to "
                    "have them" if r.get("load_whole") else "the run was interrupted; run it to "
                    "the end"})
    knobs = (r.get("declared") or {}).get("knobs", {})
    params = r.get("params") or {}
    if (dict(causes).get(DEADLOCK) and "lock_order" in knobs
            and params.get("lock_order", knobs["lock_order"]) != knobs["lock_order"]):
        out.append({"command": _command(r, params={**params, "lock_order": knobs["lock_order"]}),
                    "why": f"the same transactions taking their locks in one order "
                           f"(lock_order={knobs['lock_order']}): no deadlock"})
    if violated:
        safe_here = [s for s in declared if level in s["safe_at"] and s["name"] != r["strategy"]]
        if safe_here:
            s = safe_here[0]
            out.append({"command": _command(r, strategy=s["name"]),
                        "why": f"{s['name']} is declared safe at {_level(level)}: {s['help']}"})
        if mine:
            stronger = [lv for lv in LEVEL_ORDER
                        if lv in mine["safe_at"] and LEVEL_ORDER.index(lv) > LEVEL_ORDER.index(level)]
            if stronger:
                out.append({"command": _command(r, isolation=stronger[0]),
                            "why": f"the same {mine['name']} transactions at "
                                   f"{_level(stronger[0])}, where they are declared safe"})
        if r["check"] is None:
            out.append({"command": _command(r, check=True),
                        "why": "without --no-check: the history checker names the anomaly "
                               "that broke the invariant"})
        return out
    retryable = sum(n for c, n in causes if c in RETRYABLE)
    if attempts and retryable / attempts > MOST and (r["retries"] == 0 or r["outcomes"]["failed"]):
        tries = max(RETRIES_TO_SUGGEST, r["retries"] * 2)
        if r["retries"] == 0:
            why = _why_retry(causes, level)
        else:
            why = (f"{_plural(r['outcomes']['failed'], 'transaction')} still failed after "
                   f"{_plural(r['retries'], 'retry', 'retries')}: more retries give them more "
                   "chances (so do fewer workers)")
        out.append({"command": _command(r, retries=tries), "why": why})
    if mine and level != "read-committed" and "read-committed" not in mine["safe_at"]:
        out.append({"command": _command(r, isolation="read-committed", retries=0),
                    "why": f"the contrast: {mine['name']} is not declared safe at READ COMMITTED; "
                           "see what goes wrong there"})
    elif mine and level in mine["safe_at"]:
        unsafe = [s for s in declared if level not in s["safe_at"]]
        if unsafe:
            s = unsafe[0]
            out.append({"command": _command(r, strategy=s["name"], retries=0),
                        "why": f"the contrast: {s['name']} ({s['help']}) is not declared safe "
                               f"at {_level(level)}"})
    return out


def tell(r: dict) -> dict:
    """{"story": [sentences], "next": [{"command", "why"}], "next_note": what the
    commands need from the reader, or None} for a report dictionary."""
    violated = any(not i["holds"] for i in r["invariants"])
    story = []
    if r["interrupted"] and r.get("load_whole"):
        story.append(f"The run was interrupted during its checks; its load had run to its end "
                     f"({r['duration_s']:.1f} s), so these numbers are whole.")
    elif r["interrupted"]:
        story.append(f"The run was interrupted after {r['duration_s']:.1f} s, so these numbers "
                     "cover only the part that ran.")
    elif r.get("schema_taken"):
        story.append(f"Another txlab took this run's schema while the run's hold on it was "
                     f"lost (the run stopped after {r['duration_s']:.1f} s), so these numbers "
                     "cover only the part that ran and the final state was not judged.")
    elif r.get("failure"):
        story.append(f"The server went away and did not come back in time; the run stopped "
                     f"after {r['duration_s']:.1f} s, so these numbers cover only the part "
                     "that ran.")
    elif r.get("history_error"):
        story.append(r["history_error"][0].upper() + r["history_error"][1:] + ".")
    story.append(_what_broke(r))
    if violated:
        story += _why_broke(r)
    else:
        story += [s for s in (_forbidden(r), _strategy_words(r, False), _unchecked_found(r),
                              _why_aborted(r), _deadlocks(r)) if s]
    if r["outcomes"]["unknown"]:
        story.append(f"{_plural(r['outcomes']['unknown'], 'transaction')} lost the connection "
                     "during COMMIT: their outcome is unknown.")
    tries = _next(r, violated)
    return {"story": story, "next": tries, "next_note": next_note(r) if tries else None}
