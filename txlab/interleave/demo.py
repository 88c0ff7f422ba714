"""Demos: a spec plus metadata, run at one or more isolation levels, with verdicts.

Metadata lives in comment lines, so the spec still runs under the isolation
tester unchanged:

    # txlab: title = P4 lost update
    # txlab: anomaly = P4 (lost update)
    # txlab: explain = T2 overwrote T1's committed write
    # txlab: witness = check SELECT value = 50 FROM test WHERE id = 1
    # txlab: witness = s1b sees 2|18            (a row of s1b's result, cells joined by |)
    # txlab: witness = s2a,s2b sees 1|101       (any of these steps)
    # txlab: witness = s2a tag DELETE 0         (a command tag)
    # txlab: expect read-committed = anomaly    (anomaly | wait | abort | ok)

    # txlab: when abort = false positive: nothing needed preventing
                                                (how to read an outcome: its verdict word and a note)

The anomaly occurred when every witness holds. Otherwise a run is "abort" if a
step failed, "wait" if a step had to wait for a lock, else "ok". READ
UNCOMMITTED expects what READ COMMITTED does.

A verdict says only what the run showed: what happened to each session (who
waited for whom, who aborted with which SQLSTATE, who committed), and, for a
demo with witnesses, whether the anomaly occurred. Only a demo with witnesses
says PREVENTED or NO ANOMALY; one without says what happened (COMMITTED,
WAITED, ABORTED, DEADLOCK), unless its `when` metadata names the outcome.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from txlab import db, errors
from txlab import scenario as scenarios
from txlab.errors import TxlabError, UsageError
from txlab.interleave import driver as d
from txlab.interleave import spec as specs

OUTCOMES = ("anomaly", "wait", "abort", "ok")
LEVEL_ORDER = ("read-uncommitted", "read-committed", "repeatable-read", "serializable")


@dataclass(frozen=True)
class Witness:
    kind: str  # "check" | "sees" | "tag"
    steps: tuple[str, ...] = ()
    value: str = ""
    line: int = 0


@dataclass(frozen=True)
class Meta:
    title: str | None = None
    anomaly: str | None = None
    explain: str | None = None
    witnesses: tuple[Witness, ...] = ()
    expect: dict = field(default_factory=dict)  # level key -> outcome
    story: str = ""  # the other comment lines, as a paragraph
    show: str | None = None  # a query showing the final state
    when: dict = field(default_factory=dict)  # outcome -> "WORD: note" (how to read it)
    builtin: bool = False  # a demo from txlab's catalog (its `expect` lines: the verified matrix)
    # --permutation ran a schedule the spec does not list: its `expect` lines (which
    # are about its own permutations) were set aside, not compared.
    expect_set_aside: bool = False

    @property
    def check_sql(self) -> str | None:
        checks = [w.value for w in self.witnesses if w.kind == "check"]
        if not checks:
            return None
        return "SELECT " + " AND ".join(f"({c})" for c in checks)

    def expected(self, level: str) -> str | None:
        if level == "read-uncommitted" and level not in self.expect:
            level = "read-committed"
        return self.expect.get(level)


_CREATE_TABLE = re.compile(
    r"\bcreate\s+(?:(?:global|local)\s+)?(?:temp\s+|temporary\s+|unlogged\s+)?table\s+"
    r"(?:if\s+not\s+exists\s+)?((?:[A-Za-z_][\w$]*|\"(?:[^\"]|\"\")+\")"
    r"(?:\s*\.\s*(?:[A-Za-z_][\w$]*|\"(?:[^\"]|\"\")+\"))?)", re.I)


def created_tables(spec: specs.Spec) -> tuple[str, ...]:
    """The tables the spec's setup blocks create, in order (names as written)."""
    blocks = list(spec.setups) + [s.setup or "" for s in spec.sessions]
    out: list[str] = []
    for sql in blocks:
        for m in _CREATE_TABLE.finditer(sql):
            name = re.sub(r"\s+", "", m.group(1))
            if name not in out:
                out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class FinalPlan:
    """The queries run on the final state, before the teardown: the witnesses'
    check (if any) first, then the state shown: `show`, else every table the
    spec created."""

    check: str | None
    shown: tuple[tuple[str, str], ...]  # (label, query); label "" for `show`

    @property
    def queries(self) -> tuple[str, ...]:
        return ((self.check,) if self.check else ()) + tuple(q for _, q in self.shown)

    def states(self, run: d.PermutationRun) -> list[tuple[str, object]]:
        """(label, result) of each shown query, for a finished run."""
        start = 1 if self.check else 0
        results = list(run.final[start:])
        return [(label, results[i] if i < len(results) else None)
                for i, (label, _q) in enumerate(self.shown)]


def final_plan(meta: Meta, spec: specs.Spec) -> FinalPlan:
    if meta.show:
        shown = (("", meta.show),)
    else:
        shown = tuple((t, f"SELECT * FROM {t} ORDER BY 1") for t in created_tables(spec))
    return FinalPlan(meta.check_sql, shown)


_META = re.compile(r"^\s*txlab:\s*([A-Za-z-]+)(?:\s+([A-Za-z -]+?))?\s*=\s*(.*?)\s*$")


def parse_meta(spec: specs.Spec) -> Meta:
    fields: dict[str, str] = {}
    witnesses, expect, story, when = [], {}, [], {}
    steps = spec.steps()
    for c in spec.comments:
        m = _META.match(c.text)
        if not m:
            if c.text.strip().startswith("txlab:"):
                raise specs.SpecError("cannot read this txlab: line; write `# txlab: key = value`",
                                      c.line, spec.source)
            note = c.text.startswith("#")  # `## ...`: a note for the spec's author
            if not note and (not spec.sessions or c.line < spec.sessions[0].line):
                story.append(c.text.strip())
            continue
        key, arg, value = m.group(1).lower(), (m.group(2) or "").strip(), m.group(3)
        if key in ("title", "anomaly", "explain", "show"):
            fields[key] = value
        elif key == "witness":
            witnesses.append(_witness(value, c.line, spec, steps))
        elif key == "expect":
            try:
                level = db.parse_isolation(arg).key
            except UsageError:
                raise specs.SpecError(f"unknown isolation level {arg!r} in `expect`", c.line,
                                      spec.source) from None
            if value not in OUTCOMES:
                raise specs.SpecError(f"expected outcome must be one of {', '.join(OUTCOMES)}, "
                                      f"not {value!r}", c.line, spec.source)
            expect[level] = value
        elif key == "when":
            if arg not in OUTCOMES:
                raise specs.SpecError(f"`when` takes an outcome ({', '.join(OUTCOMES)}), not "
                                      f"{arg!r}", c.line, spec.source)
            when[arg] = value
        else:
            raise specs.SpecError(f"unknown txlab metadata key {key!r} (title, anomaly, explain, "
                                  "witness, show, expect, when)", c.line, spec.source)
    text = " ".join(line for line in story if line)
    return Meta(fields.get("title"), fields.get("anomaly"), fields.get("explain"),
                tuple(witnesses), expect, text, fields.get("show"), when)


def _witness(value: str, line: int, spec: specs.Spec, steps: dict) -> Witness:
    if value.startswith("check "):
        return Witness("check", value=value[6:].strip(), line=line)
    m = re.match(r"^(\S+)\s+(sees|tag)\s+(.*)$", value)
    if not m:
        raise specs.SpecError("a witness is `check SQL`, `STEP[,STEP] sees A|B` or "
                              "`STEP[,STEP] tag TAG`", line, spec.source)
    names = tuple(m.group(1).split(","))
    for n in names:
        if n not in steps:
            raise specs.SpecError(f"witness names an undefined step {n!r}", line, spec.source)
    return Witness(m.group(2), names, m.group(3).strip(), line)


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Fate:
    """What happened to one session in one run, as the events showed it."""

    session: str
    # (step, sessions it waited for, the permutation's marker that held it back or "")
    waits: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    error: tuple[str, str, str] | None = None  # (step, sqlstate, message): the first one
    end: str = ""  # "committed" | "rolled back" | "" (no COMMIT or ROLLBACK seen)
    error_at_commit: bool = False  # the failing step was a COMMIT (the server rolled back)

    @property
    def aborted(self) -> bool:
        return self.error is not None

    def words(self) -> str:
        """`s2 waited for s1 at s2b, then aborted with 40001 at s2b (...)`"""
        parts = []
        for step, by, marker in self.waits:
            if marker:  # reported as waiting because the permutation says so
                parts.append(f"was held back at {step} by its {marker} marker")
            else:
                parts.append(f"waited for {' and '.join(by) if by else 'a lock'} at {step}")
        if self.error:
            step, code, msg = self.error
            cause = errors.cause_name(errors.classify(code, msg)) if code else "no SQLSTATE"
            cause = cause.replace(" (", ": ").rstrip(")") if "(" in cause else cause
            at = "" if self.waits and self.waits[-1][0] == step else f" at {step}"
            if self.error_at_commit:
                at += ", its COMMIT"
            if code == errors.DEADLOCK:
                parts.append(f"was chosen as the deadlock victim ({code}{at}) and rolled back")
            elif self.end == "rolled back" or self.error_at_commit:
                parts.append(f"aborted with {code}{at} ({cause})")
            else:
                parts.append(f"got error {code}{at} ({cause})")
        elif self.end:
            parts.append(self.end)
        return f"{self.session} " + ", then ".join(parts) if parts else ""


@dataclass(frozen=True)
class Verdict:
    outcome: str  # anomaly | wait | abort | ok (what `expect` compares)
    line: str  # "HEAD: what the run showed"
    aborted: tuple[tuple[str, str, str, str], ...] = ()  # (session, step, sqlstate, message)
    waited: tuple[tuple[str, str], ...] = ()  # (session, step)
    expected: str | None = None
    teaching: bool = True  # the demo looks for an anomaly (it has witnesses)
    head: str = ""  # ANOMALY, PREVENTED, NO ANOMALY, COMMITTED, WAITED, ABORTED, DEADLOCK, ...
    happened: str = ""  # what happened to each session, one sentence
    cell: str = ""  # the short form for tables: "prevented (wait, 40001)"
    expected_by: str = "the spec"  # whose `expect` line: "the spec" or "the catalog"
    expect_set_aside: bool = False  # Meta.expect_set_aside

    @property
    def undecided(self) -> bool:
        """`anomaly` is expected, but the demo has no witness: whether the anomaly
        occurred cannot be read off the run, so the expectation is neither met nor
        missed."""
        return self.expected == "anomaly" and not self.teaching

    @property
    def as_expected(self) -> bool | None:
        """True or False when the run can be compared with `expect`; None when nothing
        is expected or the comparison cannot be made (`undecided`)."""
        if self.expected is None or self.undecided:
            return None
        return self.expected == self.outcome

    @property
    def expectation_note(self) -> str:
        """The line under the verdict about its `expect` metadata, or ""."""
        if self.expect_set_aside:
            return (f"NOT COMPARED with {self.expected_by}'s `expect` lines: they are about "
                    "its own permutations, and --permutation ran another")
        if self.undecided:
            return (f"CANNOT TELL whether this is the anomaly {self.expected_by} expects at "
                    "this level: it has no witness line")
        if self.as_expected is False:
            return f"UNEXPECTED: {self.expected_by} expects '{self.expected}' at this level"
        return ""


def fates(run: d.PermutationRun, sessions: tuple[str, ...]) -> list[Fate]:
    """Each session's waits, first error and end, from the events alone."""
    waits: dict[str, list] = {s: [] for s in sessions}
    first_error: dict[str, tuple] = {}
    end: dict[str, str] = {}
    commits = set()  # steps whose SQL is a COMMIT
    for e in run.events:
        if isinstance(e, d.StepReport) and re.fullmatch(r"\s*(commit|end)\s*;?\s*", e.sql, re.I):
            commits.add(e.step)
        if isinstance(e, d.StepReport) and e.kind == "waiting":
            waits.setdefault(e.session, []).append((e.step, tuple(e.blocked_by), e.marker))
        elif isinstance(e, d.Error) and e.step and e.session not in first_error:
            first_error[e.session] = (e.step, e.sqlstate or "", e.message or e.text or "")
        elif isinstance(e, d.Command) and e.step and e.session:
            if e.command == "COMMIT":
                end[e.session] = "committed"
            elif e.command == "ROLLBACK":
                end[e.session] = "rolled back"
    return [Fate(s, tuple(waits.get(s, ())), first_error.get(s), end.get(s, ""),
                 first_error.get(s, ("",))[0] in commits) for s in sessions]


def happened(found: list[Fate]) -> str:
    """`both committed` / `s1 committed; s2 waited for s1 at s2b, then ...`"""
    plain = [f for f in found if not f.waits and not f.error]
    if found and all(f.end == "committed" for f in plain) and len(plain) == len(found):
        return "both committed" if len(found) == 2 else (
            f"{found[0].session} committed" if len(found) == 1 else f"all {len(found)} committed")
    said = [f.words() for f in found]
    said = [w for w in said if w]
    return "; ".join(said) if said else "no step waited or failed"


def short_rows(rows) -> str:
    """Rows in a few words, for a table cell: `1|100; 2|20`, `5 rows: ...`, `0 rows`."""
    if not rows:
        return "0 rows"
    text = "; ".join("|".join("" if v is None else v for v in row) for row in rows)
    return text if len(rows) <= 3 else f"{len(rows)} rows: {text}"


@dataclass(frozen=True)
class StepResult:
    """What one step of a run came to, in a few words, for the side-by-side tables
    (terminal and page): everything its session got back for it, in order, even
    what arrived rows later, after a wait (`waits`, then `UPDATE 1`)."""

    n: int  # 1-based, in the permutation's order
    step: str
    session: str
    sql: str
    said: tuple[tuple[str, str], ...]  # (words, meaning: a term.STYLES key or "")


def step_results(spec: specs.Spec, run: d.PermutationRun) -> list[StepResult]:
    """A StepResult per step launched, from the run's events."""
    steps = spec.steps()
    out: list[tuple[d.StepReport, list]] = []
    last: dict[str, int] = {}  # step name -> its latest row in `out`
    for e in run.events:
        if isinstance(e, d.StepReport):
            if e.kind == "resumed":
                continue
            last[e.step] = len(out)
            out.append((e, []))
            if e.kind == "waiting":
                out[-1][1].append((f"held by {e.marker}" if e.marker else "waits", "waiting"))
            continue
        step = getattr(e, "step", None)
        if step is None or step not in last:
            continue
        said = out[last[step]][1]
        if isinstance(e, d.Rows):
            said.append((short_rows(e.rows), ""))
        elif isinstance(e, d.Command) and e.command:
            failed = specs.failed_commit(e.command, steps[step].sql)
            meaning = {"COMMIT": "committed", "ROLLBACK": "aborted"}.get(e.command, "")
            said.append(("ROLLBACK (failed)" if failed else e.command, meaning))
        elif isinstance(e, d.Error):
            said.append((f"ERROR {e.sqlstate or ''}".rstrip(), "aborted"))
        elif isinstance(e, d.Canceled):
            said.append(("cancelled", "aborted"))
    return [StepResult(n, r.step, r.session, r.sql, tuple(said))
            for n, (r, said) in enumerate(out, 1)]


def left_open_note(sessions: list[str] | tuple[str, ...]) -> str:
    """What txlab did about the sessions the teardown waited for (PermutationRun.left_open),
    in a student's words; "" when there were none."""
    if not sessions:
        return ""
    one = len(sessions) == 1
    who = " and ".join(sessions) if len(sessions) < 3 else (
        ", ".join(sessions[:-1]) + f" and {sessions[-1]}")
    their, them = ("its", "it") if one else ("their", "them")
    return (f"{who} left {their} transaction{'' if one else 's'} open: the permutation ends "
            f"before {their} COMMIT or ROLLBACK, and the teardown had to wait for the locks "
            f"{'it' if one else 'they'} still held. txlab rolled {them} back, so what "
            f"{'it' if one else 'they'} had not committed is gone (PostgreSQL's isolationtester "
            "would wait here for ever).")


def _witnessed(meta: Meta, run: d.PermutationRun) -> bool:
    if not meta.witnesses:
        return False
    for w in meta.witnesses:
        if w.kind == "check":
            check = run.final[0] if run.final else None
            if check is None or not check.has_tuples or not check.rows or check.rows[0][0] != "t":
                return False
        elif w.kind == "sees":
            rows = {"|".join("" if v is None else v for v in e.rows[i])
                    for e in run.events if isinstance(e, d.Rows) and e.step in w.steps
                    for i in range(len(e.rows))}
            if w.value not in rows:
                return False
        elif w.kind == "tag":
            tags = {e.command for e in run.events
                    if isinstance(e, (d.Command, d.Rows)) and e.step in w.steps}
            if w.value not in tags:
                return False
    return True


def _head_and_note(meta: Meta, outcome: str, default: str) -> tuple[str, str]:
    text = meta.when.get(outcome)
    if not text:
        return default, ""
    word, _, note = text.partition(":")
    return word.strip().upper(), note.strip()


def verdict(meta: Meta, run: d.PermutationRun, level: str | None,
            sessions: tuple[str, ...] = ()) -> Verdict:
    """What the run showed. Words claim only what the events and witnesses show."""
    sessions = sessions or tuple(dict.fromkeys(
        e.session for e in run.events if isinstance(e, d.StepReport)))
    found = fates(run, sessions)
    aborted = tuple((f.session, *f.error) for f in found if f.error)
    # Waits for a lock; a step a marker held back (`s2a(*)`) is not one: it says so in
    # `what`, and it prevents nothing.
    waited = tuple((f.session, step) for f in found for step, _, marker in f.waits
                   if not marker)
    expected = meta.expected(level) if level else None
    what = happened(found)
    teaching = bool(meta.witnesses)
    codes = list(dict.fromkeys(a[2] or "error" for a in aborted))
    deadlock = errors.DEADLOCK in codes
    if _witnessed(meta, run):
        outcome = "anomaly"
    elif aborted:
        outcome = "abort"
    elif waited:
        outcome = "wait"
    else:
        outcome = "ok"
    anomaly = meta.anomaly or meta.title or "the anomaly"
    if outcome == "anomaly":
        head, note = _head_and_note(meta, outcome, "ANOMALY")
        line = f"{head}: {anomaly}: {meta.explain or 'the witness held'} ({what})"
        cell = head.lower() if head != "ANOMALY" else "ANOMALY"
    else:
        if teaching:
            default = "NO ANOMALY" if outcome == "ok" else "PREVENTED"
        elif deadlock:
            default = "DEADLOCK"
        else:
            default = {"abort": "ABORTED", "wait": "WAITED", "ok": "COMMITTED"}[outcome]
            if outcome == "ok" and what != "both committed" and not what.startswith("all "):
                default = "DONE"
        head, note = _head_and_note(meta, outcome, default)
        if teaching and head in ("PREVENTED", "NO ANOMALY"):
            line = f"{head}: {anomaly} did not occur; {what}"
        else:
            line = f"{head}: {what}"
        word = head.lower()
        if outcome == "abort":
            cell = f"{word} ({'wait, ' if waited else ''}{', '.join(codes)})"
        elif outcome == "wait" and head == "PREVENTED":
            cell = "prevented (wait)"
        else:
            cell = word
    if note:
        line += f". {note[0].upper()}{note[1:]}"
    return Verdict(outcome, line, aborted, waited, expected, teaching, head, what, cell,
                   "the catalog" if meta.builtin else "the spec", meta.expect_set_aside)


# ---------------------------------------------------------------- catalog


def demos_dir() -> Path:
    return scenarios.builtin_dir() / "demos"


def catalog() -> dict[str, Path]:
    """The built-in demos, in the order of demos/catalog.txt, then the rest by name."""
    found = {p.stem: p for p in sorted(demos_dir().glob("*.spec"))}
    index = demos_dir() / "catalog.txt"
    order = []
    if index.exists():
        order = [ln.split("#")[0].strip() for ln in index.read_text().splitlines()]
    ordered = {n: found[n] for n in order if n in found}
    ordered.update({n: p for n, p in found.items() if n not in ordered})
    return ordered


def template() -> str:
    """The commented spec `txlab demo --new` writes (a runnable double booking)."""
    return (demos_dir() / "new.spec.in").read_text()


def write_template(path: str) -> Path:
    """Write the template to `path`, whole or not at all; never overwrites a file. A
    full disk is a TxlabError (exit 3), any other refusal a UsageError."""
    from txlab import paths

    target = Path(path)
    exists = UsageError(f"{path} already exists; choose another name (txlab never overwrites "
                        "a file with a template)")
    if target.exists():
        raise exists
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: no such directory {target.parent}")
    try:
        paths.write_whole(target, template(), replace=False)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        kind = TxlabError if exc.errno in paths.FULL else UsageError
        raise kind(f"cannot write {path}: {exc.strerror or exc}") from None
    return target


def resolve(ref: str) -> Path:
    """A demo name from the catalog, or a path to a .spec file."""
    path = Path(ref)
    if ref.endswith(".spec") or path.exists() or "/" in ref:
        if not path.is_file():
            raise UsageError(f"no such spec file: {ref}")
        return path
    found = catalog()
    if ref in found:
        return found[ref]
    key = ref.lower().replace("_", "-")
    for name, p in found.items():
        if name == key:
            return p
    raise UsageError(f"unknown demo {ref!r}; the catalog has: {', '.join(found)} "
                     "(or give a path to a .spec file)")


@dataclass
class LevelRun:
    level: str | None  # a LEVELS key, or None for the server's default
    run: d.SpecRun
    verdicts: list[Verdict]


@dataclass
class DemoResult:
    name: str
    spec: specs.Spec
    meta: Meta
    levels: list[LevelRun]
    server_version: str = ""
    default_isolation: str = ""  # the server's default_transaction_isolation
    plan: FinalPlan = field(default_factory=lambda: FinalPlan(None, ()))

    def final_states(self, run: d.PermutationRun) -> list[tuple[str, object]]:
        return self.plan.states(run)


def levels_for(option: str | None) -> list[str | None]:
    """The levels `--isolation` names: one, `all`, or a list (`rc,ser`), in the order
    weakest first; None alone for the server's default."""
    if option is None:
        return [None]
    if option.strip().lower() == "all":
        return list(LEVEL_ORDER)
    parts = [p for p in option.split(",") if p.strip()]
    try:
        keys = {db.parse_isolation(p).key for p in parts}
    except UsageError as exc:
        raise UsageError(f"{exc}; or `all` for the four side by side, or a list such as rc,ser"
                         ) from None
    if not keys:
        raise UsageError(f"no isolation level in {option!r}; give a level, a list such as "
                         "rc,ser, or all")
    return [lv for lv in LEVEL_ORDER if lv in keys]


def prepare(ref: str, permutation: str | None = None,
            max_permutations: int = 200) -> tuple[DemoResult, list]:
    """The demo (spec, metadata, final-state plan) and the permutations to run."""
    path = resolve(ref)
    spec = specs.load(path)
    meta = parse_meta(spec)
    if path.resolve().parent == demos_dir().resolve():
        meta = dataclasses.replace(meta, builtin=True)
    if not permutation and not spec.permutations:
        count = specs.count_permutations(spec)
        if count > max_permutations:
            raise UsageError(f"{path} has no permutation lines and {count} interleavings; "
                             "pick one with --permutation or raise --max-permutations")
    perms = [specs.parse_permutation(spec, permutation)] if permutation else specs.permutations(spec)
    listed = {" ".join(str(p) for p in perm.steps) for perm in spec.permutations}
    if permutation and listed and " ".join(str(p) for p in perms[0].steps) not in listed:
        meta = dataclasses.replace(meta, expect={}, expect_set_aside=bool(meta.expect))
    return DemoResult(path.stem, spec, meta, [], plan=final_plan(meta, spec)), perms


def run_demo(ref: str, dsn: str, isolation: str | None = None, permutation: str | None = None,
             step_timeout: float = 30.0, max_permutations: int = 200,
             schema: str = d.DEFAULT_SCHEMA, step_states: bool = False) -> DemoResult:
    """Run a demo at the levels `isolation` names. step_states: also read the shown
    tables (the plan's `shown` queries) after every step: each run's `states`."""
    result, perms = prepare(ref, permutation, max_permutations)
    names = tuple(s.name for s in result.spec.sessions)
    for level in levels_for(isolation):
        iso_sql = db.LEVELS[level].sql if level else None
        run = d.run_spec(result.spec, dsn, perms, iso_sql, step_timeout, result.plan.queries,
                         schema, result.plan.shown if step_states else ())
        result.levels.append(LevelRun(level, run, [verdict(result.meta, r, level, names)
                                                   for r in run.runs]))
    result.server_version, result.default_isolation = server_facts(dsn)
    return result


def server_facts(dsn: str) -> tuple[str, str]:
    """The server's version and its default_transaction_isolation."""
    conn = db.connect(dsn, "txlab-demo")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW default_transaction_isolation")
            default = cur.fetchone()[0]
        return db.server_version(conn), default
    finally:
        conn.close()


def _version(dsn: str) -> str:
    return server_facts(dsn)[0]


_SETS_LEVEL = re.compile(r"isolation\s+level|transaction_isolation", re.I)
_BEGINS = re.compile(r"^\s*(begin|start\s+transaction)\b", re.I)


def explicit_levels(spec: specs.Spec) -> list[str]:
    """Steps or session setups that set their own isolation level (--isolation cannot
    change those)."""
    out = []
    for sess in spec.sessions:
        blocks = [("setup of session " + sess.name, sess.setup or "")]
        blocks += [("step " + st.name, st.sql) for st in sess.steps]
        out += [where for where, sql in blocks if _SETS_LEVEL.search(sql)]
    return out


def pinned_sessions(spec: specs.Spec) -> list[str]:
    """The sessions --isolation cannot reach, when that is every session with steps (else
    []): each sets the level in its setup, or opens with a BEGIN that names one and never
    runs a plain BEGIN. Then every level would run the same thing."""
    pinned = []
    for sess in spec.sessions:
        if not sess.steps:
            continue
        first = sess.steps[0].sql
        begins = [st.sql for st in sess.steps if _BEGINS.match(st.sql)]
        if _SETS_LEVEL.search(sess.setup or "") or (
                _BEGINS.match(first) and all(_SETS_LEVEL.search(b) for b in begins)):
            pinned.append(sess.name)
        else:
            return []
    return pinned


@dataclass
class Matrix:
    server_version: str
    levels: tuple[str, ...]
    rows: list[tuple[str, str, list[Verdict]]]  # (demo, title, verdict per level)
    results: list[DemoResult] = field(default_factory=list)  # each row's demo, every level

    @property
    def mismatches(self) -> list[tuple[str, str, str, str]]:
        out = []
        for name, _title, verdicts in self.rows:
            for level, v in zip(self.levels, verdicts, strict=True):
                if v.as_expected is False:
                    out.append((name, level, v.expected, v.outcome))
        return out


def run_matrix(dsn: str, step_timeout: float = 30.0, schema: str = d.DEFAULT_SCHEMA,
               step_states: bool = False) -> Matrix:
    rows, results = [], []
    for name, path in catalog().items():
        res = run_demo(str(path), dsn, "all", step_timeout=step_timeout, schema=schema,
                       step_states=step_states)
        rows.append((name, res.meta.title or name, [lr.verdicts[0] for lr in res.levels]))
        results.append(res)
    return Matrix(_version(dsn), LEVEL_ORDER, rows, results)
