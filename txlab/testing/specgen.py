"""Write a schedule as an isolation-tester spec, which `txlab demo FILE.spec` (and
PostgreSQL's own isolationtester) replays.

Each statement the application sent becomes a step, with its parameters as
literals; the BEGIN psycopg2 sent in front of a transaction's first statement is
a step of its own, right before it; COMMIT and ROLLBACK are steps; the schedule
is the permutation line. The setup block builds the starting state.
"""

from __future__ import annotations

import re
import string

from txlab.interleave import spec as specs
from txlab.testing import snapshot


class SpecUnavailable(Exception):
    """The schedule cannot be written as a spec (the reason is the message)."""


_LITERAL = re.compile(r"(?P<prefix>\b[Ee]|\b[Uu]&)?'(?P<body>(?:[^']|'')*)'")


def brace_safe(text: str) -> str:
    """The spec format ends an SQL block at the first '}', with no escape: write
    string literals that hold one with an escape instead (same value)."""
    if "}" not in text:
        return text
    out, pos = [], 0
    for m in _LITERAL.finditer(text):
        out.append(text[pos:m.start()])
        prefix, body = m.group("prefix") or "", m.group("body")
        if "}" not in body:
            out.append(m.group(0))
        elif prefix.upper() == "E":
            out.append(f"{prefix}'{body.replace('}', chr(92) + 'x7D')}'")
        elif prefix:
            out.append(f"{prefix}'{body.replace('}', chr(92) + '007D')}'")
        else:
            body = body.replace("\\", "\\\\").replace("}", "\\007D")
            out.append(f"U&'{body}'")
        pos = m.end()
    out.append(text[pos:])
    safe = "".join(out)
    outside = _LITERAL.sub("''", safe)
    if "}" in outside:
        raise SpecUnavailable(f"a statement has a '}}' outside a string literal, which the "
                              f"spec format cannot hold: {_one_line(text)[:120]}")
    return safe


def _one_line(text: str) -> str:
    return " ".join(text.split())


def flatten(sql: str) -> str:
    """SQL on one line: line breaks (and the spaces around them) outside string
    literals become one space, as SQLAlchemy's multi-line statements read better so."""
    out, pos = [], 0
    for m in _LITERAL.finditer(sql):
        out.append(re.sub(r"[ \t]*\n\s*", " ", sql[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(re.sub(r"[ \t]*\n\s*", " ", sql[pos:]))
    return "".join(out).strip()


def _step_name(session: str, n: int) -> str:
    letters, out = string.ascii_lowercase, ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = letters[r] + out
    return session + out


def _block(sql: str) -> str:
    sql = brace_safe(flatten(sql))
    return sql if sql.endswith(";") else sql + ";"


def build(steps, sessions: tuple[str, ...], state: snapshot.State, *, title: str,
          explain: str, notes: tuple[str, ...] = (), invariant_sql: str | None = None) -> str:
    """The spec text. `steps` are interleave Steps in schedule order."""
    per_session: dict[int, list[tuple[str, str]]] = {i: [] for i in range(len(sessions))}
    permutation = []
    for step in steps:
        own = per_session[step.session]
        for sql in ((step.begin, step.sql) if step.begin else (step.sql,)):
            name = _step_name(sessions[step.session], len(own))
            own.append((name, _block(sql)))
            permutation.append(name)
    # No `show` line: `txlab demo` shows every table the setup creates.
    head = [f"# txlab: title = {_one_line(title)}", f"# txlab: explain = {_one_line(explain)}"]
    if invariant_sql:
        head.append("# txlab: anomaly = broken invariant")
        head.append(f"# txlab: witness = check SELECT NOT ({_one_line(invariant_sql)})")
    head.append("#")
    head += [f"# {line}".rstrip() for line in notes]
    body = []
    setup = snapshot.setup_sql(state)
    if setup:
        body += ["setup", "{", *("  " + line for line in brace_safe(setup).splitlines()), "}"]
        body.append(f"teardown {{ {snapshot.teardown_sql(state)} }}")
    for i, name in enumerate(sessions):
        if not per_session[i]:
            continue
        body += ["", f"session {name}"]
        body += [f"step {step} {{ {sql} }}" for step, sql in per_session[i]]
    body += ["", "permutation " + " ".join(permutation)]
    text = "\n".join(head) + "\n\n" + "\n".join(body) + "\n"
    specs.parse(text, "<generated spec>")  # it must read back (raises SpecError if not)
    return text
