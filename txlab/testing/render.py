"""Text for assertion messages: stress and interleave results. Renders only; the
numbers and verdicts are the results' own."""

from __future__ import annotations

import textwrap
from functools import partial

from txlab import errors
from txlab.testing.specgen import flatten

WIDTH = 78
_tw = partial(textwrap.wrap, break_on_hyphens=False)  # -70 stays whole


def _cause(code: str | None, message: str | None) -> str:
    return errors.cause_name(errors.classify(code, message)) if code else ""


# What a failure with these SQLSTATEs calls for: locking, not the invariant, is the story.
# The retry advice names `retries=N` only to stress, the one that takes it; interleave
# runs each function once per schedule, so the retry belongs in the application.
_RETRY = {
    "stress": ("retry the call (retries=N retries it as a job runner would)",
               "the application must retry it (retries=N retries the call as a job "
               "runner would)"),
    "interleave": ("retry the transaction in the application code (interleave does not "
                   "retry; stress(retries=N) exercises a job runner's retry)",
                   "the application must retry it: catch the error, roll back and run the "
                   "transaction again in your own code (interleave does not retry; "
                   "stress(retries=N) exercises a job runner's retry)"),
}


def hint(code: str, caller: str) -> str:
    """What to do about a 40P01 or 40001 that escaped `caller` (stress or interleave)."""
    deadlock, serialization = _RETRY[caller]
    if code == "40P01":
        return ("Deadlock (40P01): two calls took the same row locks in opposite orders. Lock "
                "rows in one fixed order (e.g. by id: SELECT ... ORDER BY id FOR UPDATE, or "
                f"update the lower id first), or {deadlock}; `txlab explain 40P01`.")
    return ("Serialization failure (40001): the database aborted a transaction rather than "
            f"allow an anomaly at this level; {serialization}; `txlab explain 40001`.")


HINTED = ("40P01", "40001")


def _hints(codes, caller: str) -> list[str]:
    out: list[str] = []
    for code in sorted(set(codes) & set(HINTED), reverse=True):
        out += _tw(hint(code, caller), WIDTH, subsequent_indent="  ")
    return out


# ---------------------------------------------------------------- stress


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_stress(r) -> str:
    head = (f"stress: {r.calls} calls of {r.function} from {r.workers} workers at "
            f"{r.isolation} (think {r.think_ms:g} ms, seed {r.seed}, {r.elapsed_s:.1f} s)")
    out = _tw(head, WIDTH)
    if r.ok:
        out.append("OK: " + ("the invariant held" if r.verdict.held else "no invariant given")
                   + "; no unexpected exception")
    else:
        why = []
        if r.failure:
            why.append(r.failure)
        if r.verdict.held is False:
            why.append(f"the invariant {r.invariant} {r.verdict.detail or 'failed'}")
        elif r.verdict.held is None and r.invariant != "no invariant":
            why.append(r.verdict.detail)
        if r.unexpected:
            why.append(f"{r.unexpected} call(s) raised an exception the application does "
                       "not expect")
        out += _tw("FAILED: " + "; ".join(why), WIDTH, subsequent_indent="  ")
    raised = sum(x.count for x in r.raised)
    out.append(f"  calls       {r.returned} returned, {raised} raised"
               + (f", {r.retried} repeated after 40001/40P01" if r.retried else ""))
    out.append(f"  statements  {r.statements}; {_n(r.commits, 'commit')}, "
               f"{_n(r.rollbacks, 'rollback')}"
               + (f", {r.left_open} left open (rolled back)" if r.left_open else "")
               + (f", {r.ended_by_error} ended by an error (rolled back)"
                  if r.ended_by_error else ""))
    for x in r.raised:
        code = f" SQLSTATE {x.sqlstate} ({_cause(x.sqlstate, x.example)})" if x.sqlstate else ""
        flag = " [allowed]" if x.allowed else ""
        out.append(f"  {x.count:>6} x {x.exception}{code}{flag}: {x.example}")
    if not r.ok:
        out += _hints((x.sqlstate for x in r.raised if x.sqlstate and not x.allowed), "stress")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- interleave


def render_interleave(r) -> str:
    who = ", ".join(f"{s} = {label}" for s, label in zip(r.sessions, r.labels, strict=True))
    out = _tw(f"interleave: {who} at {r.isolation}; invariant {r.invariant}; "
                        f"seed {r.seed}", WIDTH)
    if r.given:
        ran = "the given schedule"
    elif r.exhausted:
        ran = "the only schedule" if r.schedules == 1 else f"all {r.schedules} schedules"
    else:
        ran = f"{r.schedules} schedules (of about {r.estimate})"
    waits = f"; in {r.waited} a session waited for a lock" if r.waited else ""
    if r.ok:
        out += _tw(f"OK: no failure in {ran}{waits} ({r.elapsed_s:.1f} s)", WIDTH)
        if not r.exhausted and not r.given:
            out.append("(max_schedules was reached: raise it to explore more)")
        return "\n".join(out + _diverged(r)) + "\n"
    s = r.schedule
    out += _tw(f"FAILED: {s.failure}", WIDTH, subsequent_indent="  ")
    plural = "" if s.preemptions == 1 else "s"
    which = "The schedule" if r.given else "The shortest failing schedule"
    failed = "" if r.given else f", {r.failures} failed"
    out += _tw(f"Ran {ran}{failed}{waits} ({r.elapsed_s:.1f} s). {which}: "
                         f"{len(s.steps)} steps, {s.preemptions} preemption{plural}.", WIDTH)
    out.append("")
    out += timeline(s)
    if s.final_state:
        out.append("Final state:")
        for table, rows in s.final_state:
            out += _tw(f"{table}: {rows}", WIDTH, initial_indent="  ",
                                 subsequent_indent="    ")
    if r.spec:
        out += _tw("result.spec holds this schedule as an isolation-tester spec: "
                             "save it to a file and replay it with `txlab demo FILE.spec`.",
                             WIDTH)
    elif r.spec_note:
        out += _tw(f"No spec: {r.spec_note}", WIDTH)
    out += _hints([st.sqlstate for st in s.steps if st.sqlstate]
                  + [e.sqlstate for e in s.ends if e.sqlstate], "interleave")
    return "\n".join(out + _diverged(r)) + "\n"


def _diverged(r) -> list[str]:
    if not r.diverged:
        return []
    return _tw(f"note: {r.diverged} schedule(s) did not follow their planned order "
                         "when run (the application or the server behaved differently from "
                         "an earlier run with the same start)", WIDTH)


def timeline(s) -> list[str]:
    """One column per session, one numbered entry per step, like `txlab demo`."""
    n = len(s.sessions)
    col = max(26, min(40, (WIDTH - 4) // max(n, 1)))
    lines = ["    " + "".join(f"{f'{name} {label}':<{col}}"[:col]
                              for name, label in zip(s.sessions, s.labels, strict=True)).rstrip(),
             "    " + "-" * (col * n - 2)]

    def put(session: int, text: str, mark: str = "") -> None:
        for i, line in enumerate(_wrap(text, col - 2)):
            prefix = f"{mark:>3} " if i == 0 and mark else "    "
            lines.append((prefix + " " * (col * session) + line).rstrip())

    number = 0
    for kind, index in s.timeline:
        if kind == "end":
            e = s.ends[index]
            if e.exception:
                code = f" ({e.sqlstate})" if e.sqlstate else ""
                put(index, f"<- raised {e.exception}{code}" + (" [allowed]" if e.allowed else ""))
            else:
                put(index, f"<- returned {e.value}".rstrip())
            continue
        step = s.steps[index]
        if kind == "resumed":
            put(step.session, f"... step {_number(s, index)} completes")
            for line in _outcome(step):
                put(step.session, line)
            continue
        number += 1
        sql = flatten(step.sql)
        sql += "" if sql.endswith(";") else ";"
        text = (f"{step.begin};\n" if step.begin else "") + sql
        if step.closing:
            text += "  (txlab: the function ended with its transaction open)"
        put(step.session, text, f"{number}.")
        if step.waited:
            by = ", ".join(s.sessions[b] for b in step.blocked_by)
            put(step.session, f"WAITING for {by or 'a lock'} ...")
        else:
            for line in _outcome(step):
                put(step.session, line)
    lines.append("    " + "-" * (col * n - 2))
    return lines


def _number(s, index: int) -> int:
    return sum(1 for kind, i in s.timeline if kind == "step" and i <= index)


def _outcome(step) -> list[str]:
    if step.error is not None:
        out = [f"ERROR {step.sqlstate or ''}: {step.error}".replace(" :", ":")]
        cause = _cause(step.sqlstate, step.error)
        if cause and cause != step.error:
            out.append(f"   ({cause})")
        return out
    if not step.done:
        return ["(did not finish)"]
    if step.rows is not None and (step.tag or "").startswith("SELECT"):
        return [f"-> {_rows(step.rows, step.tag)}"]
    if step.rows:
        return [f"-> {step.tag}, returning {_rows(step.rows, None)}"]
    return [f"-> {step.tag}"]


def _rows(rows, tag: str | None) -> str:
    if not rows:
        return "no rows"
    text = "; ".join("|".join("NULL" if v is None else str(v) for v in row) for row in rows)
    total = tag.split()[-1] if tag and tag.split()[-1].isdigit() else None
    if total is not None and int(total) > len(rows):
        text += f"; ... ({total} rows)"
    return text


def _wrap(text: str, width: int) -> list[str]:
    out = []
    for raw in text.splitlines() or [""]:
        out += _tw(raw, width, break_long_words=True, subsequent_indent="  ") or [""]
    return out
