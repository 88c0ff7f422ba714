"""PostgreSQL isolation-tester specs: data, a hand-written parser, validation.

The grammar (src/test/isolation/specparse.y and specscanner.l, PostgreSQL 14+):

    spec        := setup* [teardown SQL] session+ permutation*
    setup       := 'setup' SQL
    session     := 'session' NAME [setup] step+ ['teardown' SQL]
    step        := 'step' NAME SQL
    permutation := 'permutation' pstep+
    pstep       := NAME ['(' marker (',' marker)* ')']
    marker      := '*' | NAME | NAME 'notices' INTEGER

NAME is an identifier or a double-quoted name ("" stands for one quote). SQL is
`{ ... }` up to the first `}`, with spaces and tabs (not newlines) trimmed at both
ends, exactly as the isolation tester keeps it. `#` starts a comment outside
braces. Keywords are lower case and reserved (quote a step called "setup").

Parsing and validation never touch the database; every error names its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from txlab.errors import UsageError

KEYWORDS = frozenset({"notices", "permutation", "session", "setup", "step", "teardown"})


class SpecError(UsageError):
    """A spec that cannot run: syntax or validation error, with its line."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None):
        where = f"{source}:" if source else ""
        where += f"{line}: " if line is not None else (" " if source else "")
        super().__init__(f"{where}{message}")
        self.line = line
        self.reason = message


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    session: int  # index into Spec.sessions
    line: int


@dataclass(frozen=True)
class Session:
    name: str
    setup: str | None
    steps: tuple[Step, ...]
    teardown: str | None
    line: int


@dataclass(frozen=True)
class Marker:
    """A permutation-step marker: `(*)`, `(other)` or `(other notices N)`."""

    kind: str  # "once" | "step" | "notices"
    step: str | None = None
    notices: int = 0
    line: int = 0

    def __str__(self) -> str:
        """As the spec spells it: `(*)`, `(s1b)`, `(s1b notices 2)`."""
        if self.kind == "once":
            return "(*)"
        if self.kind == "notices":
            return f"({self.step} notices {self.notices})"
        return f"({self.step})"


@dataclass(frozen=True)
class PermutationStep:
    name: str
    markers: tuple[Marker, ...] = ()
    line: int = 0

    def __str__(self) -> str:
        """As the spec spells it: `s2a(*)`."""
        return self.name + "".join(str(m) for m in self.markers)


@dataclass(frozen=True)
class Permutation:
    steps: tuple[PermutationStep, ...]
    line: int = 0


@dataclass(frozen=True)
class Comment:
    line: int
    text: str  # without the leading '#'


@dataclass(frozen=True)
class Spec:
    setups: tuple[str, ...]
    teardown: str | None
    sessions: tuple[Session, ...]
    permutations: tuple[Permutation, ...]
    comments: tuple[Comment, ...] = ()
    source: str = "<spec>"
    warnings: tuple[str, ...] = field(default=())

    def steps(self) -> dict[str, Step]:
        return {s.name: s for sess in self.sessions for s in sess.steps}


# ---------------------------------------------------------------- lexer


@dataclass(frozen=True)
class Token:
    kind: str  # keyword | name | sql | int | punct | eof
    value: str
    line: int

    def describe(self) -> str:
        if self.kind == "eof":
            return "the end of the spec"
        if self.kind == "sql":
            return "an SQL block { ... }"
        if self.kind == "name":
            return f"the name {self.value!r}"
        if self.kind == "int":
            return f"the number {self.value}"
        return f"{self.value!r}"


_IDENT = re.compile(r"[A-Za-z\x80-\U0010ffff_][A-Za-z\x80-\U0010ffff_0-9$]*")
_SPACE = " \t\r\f"


# A line inside an SQL block that reads as the spec's own syntax: the block before it
# was probably not closed (its `{` runs to the next block's `}`).
_SPEC_LINE = re.compile(r"^[ \t]*(?:(?:step|session)[ \t]+\S|permutation\b|"
                        r"(?:setup|teardown)[ \t]*\{)", re.MULTILINE)


def tokenize(text: str, source: str = "<spec>",
             suspects: list[str] | None = None) -> tuple[list[Token], list[Comment]]:
    """The spec's tokens and comments. `suspects`, if given, receives a sentence for
    each SQL block that holds a line of spec syntax (a `}` is probably missing)."""
    tokens: list[Token] = []
    comments: list[Comment] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in _SPACE:
            i += 1
        elif c == "#":
            j = i
            while j < n and text[j] not in "\n\r":
                j += 1
            comments.append(Comment(line, text[i + 1:j]))
            i = j
        elif c == '"':
            start_line, j, buf = line, i + 1, []
            while True:
                if j >= n:
                    raise SpecError("unterminated quoted name", start_line, source)
                if text[j] == "\n":
                    raise SpecError("unexpected newline in quoted name", start_line, source)
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            tokens.append(Token("name", "".join(buf), start_line))
            i = j + 1
        elif c == "{":
            start_line, j = line, i + 1
            while j < n and text[j] in _SPACE:
                j += 1
            end = text.find("}", j)
            if end < 0:
                raise SpecError("unterminated SQL block: no closing '}'", start_line, source)
            body = text[j:end].rstrip(_SPACE)
            tokens.append(Token("sql", body, start_line))
            inner = _SPEC_LINE.search(text, j, end)
            if suspects is not None and inner:
                at = line + text.count("\n", i, inner.start())
                eol = text.find("\n", inner.start())
                held = text[inner.start():end if eol < 0 else min(eol, end)].strip()
                suspects.append(f"the SQL block opened at line {start_line} runs to the '}}' at"
                                f" line {line + text.count(chr(10), i, end)} and holds"
                                f" {held[:40]!r} at line {at}: is a '}}' missing?")
            line += text.count("\n", i, end)
            i = end + 1
        elif c.isdigit() and c.isascii():
            j = i
            while j < n and text[j].isdigit() and text[j].isascii():
                j += 1
            tokens.append(Token("int", text[i:j], line))
            i = j
        elif c in ",()*":
            tokens.append(Token("punct", c, line))
            i += 1
        else:
            m = _IDENT.match(text, i)
            if not m:
                raise SpecError(f"unexpected character {c!r}", line, source)
            word = m.group(0)
            tokens.append(Token("keyword" if word in KEYWORDS else "name", word, line))
            i = m.end()
    tokens.append(Token("eof", "", line))
    return tokens, comments


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[Token], source: str):
        self.toks = tokens
        self.pos = 0
        self.source = source

    def peek(self) -> Token:
        return self.toks[self.pos]

    def next(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def at(self, kind: str, value: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (value is None or tok.value == value)

    def fail(self, expected: str, tok: Token | None = None):
        tok = tok or self.peek()
        raise SpecError(f"expected {expected}, found {tok.describe()}", tok.line, self.source)

    def expect(self, kind: str, what: str, value: str | None = None) -> Token:
        if not self.at(kind, value):
            if kind == "name" and self.peek().kind == "keyword":
                tok = self.peek()
                raise SpecError(f"expected {what}, found the keyword {tok.value!r} "
                                f"(quote it: \"{tok.value}\")", tok.line, self.source)
            self.fail(what)
        return self.next()

    def spec(self) -> tuple:
        setups, teardown = [], None
        while self.at("keyword", "setup"):
            self.next()
            setups.append(self.expect("sql", "an SQL block { ... } after 'setup'").value)
        if self.at("keyword", "teardown"):
            self.next()
            teardown = self.expect("sql", "an SQL block { ... } after 'teardown'").value
        sessions = []
        if not self.at("keyword", "session"):
            what = "'session'" if teardown is not None or self.at("keyword", "teardown") else \
                "'setup', 'teardown' or 'session'"
            if self.at("keyword", "teardown"):
                raise SpecError("a spec has at most one global teardown block, before the sessions",
                                self.peek().line, self.source)
            self.fail(what)
        while self.at("keyword", "session"):
            sessions.append(self.session(len(sessions)))
        perms = []
        while self.at("keyword", "permutation"):
            perms.append(self.permutation())
        if not self.at("eof"):
            tok = self.peek()
            if tok.kind == "keyword" and tok.value in ("setup", "teardown"):
                raise SpecError(f"'{tok.value}' here is out of place: global setup and teardown "
                                "blocks come before the first session; a session's own setup "
                                "comes before its steps", tok.line, self.source)
            if tok.kind == "keyword" and tok.value in ("session", "step"):
                raise SpecError(f"'{tok.value}' after a permutation: permutations come last",
                                tok.line, self.source)
            self.fail("'session', 'step', 'permutation' or the end of the spec")
        return setups, teardown, sessions, perms

    def session(self, index: int) -> Session:
        line = self.next().line
        name = self.expect("name", "a session name after 'session'").value
        setup = teardown = None
        if self.at("keyword", "setup"):
            self.next()
            setup = self.expect("sql", "an SQL block { ... } after 'setup'").value
        steps = []
        while self.at("keyword", "step"):
            sline = self.next().line
            sname = self.expect("name", "a step name after 'step'").value
            sql = self.expect("sql", f"an SQL block {{ ... }} for step {sname!r}").value
            steps.append(Step(sname, sql, index, sline))
        if not steps:
            if self.at("keyword", "setup"):
                raise SpecError(f"session {name!r} has a second setup block; a session has at most one",
                                self.peek().line, self.source)
            self.fail(f"at least one 'step' in session {name!r}")
        if self.at("keyword", "teardown"):
            self.next()
            teardown = self.expect("sql", "an SQL block { ... } after 'teardown'").value
        return Session(name, setup, tuple(steps), teardown, line)

    def permutation(self) -> Permutation:
        line = self.next().line
        steps = []
        while self.at("name"):
            tok = self.next()
            markers = []
            if self.at("punct", "("):
                self.next()
                while True:
                    markers.append(self.marker())
                    if self.at("punct", ","):
                        self.next()
                        continue
                    self.expect("punct", "',' or ')' in the step's markers", ")")
                    break
            steps.append(PermutationStep(tok.value, tuple(markers), tok.line))
        if not steps:
            self.fail("step names after 'permutation'")
        return Permutation(tuple(steps), line)

    def marker(self) -> Marker:
        tok = self.peek()
        if self.at("punct", "*"):
            self.next()
            return Marker("once", line=tok.line)
        name = self.expect("name", "'*' or a step name as a marker").value
        if self.at("keyword", "notices"):
            self.next()
            count = self.expect("int", "a number after 'notices'")
            return Marker("notices", name, int(count.value), tok.line)
        return Marker("step", name, line=tok.line)


def parse(text: str, source: str = "<spec>") -> Spec:
    """Parse and validate a spec. Raises SpecError (exit 2) with the line; where an SQL
    block swallowed spec syntax (an unclosed `{`), the error says so, or else a
    warning does (the isolation tester's grammar takes such a block as it is)."""
    suspects: list[str] = []
    tokens, comments = tokenize(text, source, suspects)
    try:
        setups, teardown, sessions, perms = _Parser(tokens, source).spec()
        spec = Spec(tuple(setups), teardown, tuple(sessions), tuple(perms), tuple(comments),
                    source)
        spec = _validate(spec)
    except SpecError as exc:
        if suspects:
            hinted = SpecError(f"{exc} ({suspects[0]})")
            hinted.line, hinted.reason = exc.line, f"{exc.reason} ({suspects[0]})"
            raise hinted from None
        raise
    if not suspects:
        return spec
    return Spec(spec.setups, spec.teardown, spec.sessions, spec.permutations, spec.comments,
                spec.source, spec.warnings + tuple(f"{source}: {x}" for x in suspects))


def load(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such spec file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return parse(text, str(path))


# ---------------------------------------------------------------- validation


def _validate(spec: Spec) -> Spec:
    """The isolation tester's checks (check_testspec), with lines in the messages."""
    src = spec.source
    seen: dict[str, Step] = {}
    for sess in spec.sessions:
        for step in sess.steps:
            if step.name in seen:
                raise SpecError(f"duplicate step name {step.name!r} (first defined at line "
                                f"{seen[step.name].line})", step.line, src)
            seen[step.name] = step
    used: set[str] = set()
    for perm in spec.permutations:
        in_perm = {}
        for pstep in perm.steps:
            if pstep.name not in seen:
                raise SpecError(f"undefined step {pstep.name!r} in permutation", pstep.line, src)
            used.add(pstep.name)
            in_perm.setdefault(pstep.name, seen[pstep.name])
        for pstep in perm.steps:
            own = seen[pstep.name].session
            for marker in pstep.markers:
                if marker.kind == "once":
                    continue
                if marker.step not in in_perm:
                    raise SpecError(f"undefined blocking step {marker.step!r} referenced in "
                                    f"permutation step {pstep.name!r} (a marker must name a step "
                                    "of the same permutation)", marker.line, src)
                if in_perm[marker.step].session == own:
                    raise SpecError(f"permutation step {pstep.name!r} cannot block on its own "
                                    f"session ({marker.step!r} is also a step of session "
                                    f"{spec.sessions[own].name!r})", marker.line, src)
    warnings = []
    if spec.permutations:
        for name, step in sorted(seen.items()):
            if name not in used:
                warnings.append(f"{src}:{step.line}: unused step name: {name}")
    return Spec(spec.setups, spec.teardown, spec.sessions, spec.permutations, spec.comments,
                spec.source, tuple(warnings))


# ---------------------------------------------------------------- permutations


def all_permutations(spec: Spec) -> list[Permutation]:
    """Every interleaving that keeps each session's steps in order, in the
    isolation tester's order (depth-first, lower session first).

    Iterative, so that a spec with thousands of steps cannot exhaust the stack."""
    sessions = [s.steps for s in spec.sessions]
    total = sum(len(steps) for steps in sessions)
    out: list[Permutation] = []
    piles = [0] * len(sessions)
    chosen: list[int] = []  # the session of each step taken so far
    names: list[PermutationStep] = []
    next_session = [0]  # per depth: the first session not yet tried there
    while next_session:
        i = next_session[-1]
        while i < len(sessions) and piles[i] >= len(sessions[i]):
            i += 1
        if i < len(sessions):
            next_session[-1] = i + 1
            names.append(PermutationStep(sessions[i][piles[i]].name))
            piles[i] += 1
            chosen.append(i)
            next_session.append(0)
            continue
        if len(chosen) == total:
            out.append(Permutation(tuple(names)))
        next_session.pop()
        if chosen:
            piles[chosen.pop()] -= 1
            names.pop()
    return out


def count_permutations(spec: Spec) -> int:
    from math import factorial

    total = factorial(sum(len(s.steps) for s in spec.sessions))
    for s in spec.sessions:
        total //= factorial(len(s.steps))
    return total


def failed_commit(command: str, sql: str) -> bool:
    """A step holding a COMMIT was answered ROLLBACK: the transaction had failed (every
    view says so, in its own words)."""
    return command == "ROLLBACK" and "COMMIT" in sql.upper()


def permutations(spec: Spec) -> list[Permutation]:
    return list(spec.permutations) if spec.permutations else all_permutations(spec)


def parse_permutation(spec: Spec, text: str) -> Permutation:
    """A permutation given on the command line ("s1a s2a(*) s1c"), validated."""
    tokens, _ = tokenize(text, "--permutation")
    parser = _Parser(tokens, "--permutation")
    parser.toks = [Token("keyword", "permutation", 1), *tokens]
    perm = parser.permutation()
    if not parser.at("eof"):
        parser.fail("step names")
    checked = _validate(Spec(spec.setups, spec.teardown, spec.sessions, (perm,), (), "--permutation"))
    return checked.permutations[0]
