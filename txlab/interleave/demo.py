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

The anomaly occurred when every witness holds. Otherwise a run is "abort" if a
step failed (the anomaly was prevented by aborting), "wait" if a step had to
wait for a lock, else "ok". READ UNCOMMITTED expects what READ COMMITTED does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from txlab import db, errors
from txlab import scenario as scenarios
from txlab.errors import UsageError
from txlab.interleave import driver as d
from txlab.interleave import spec as specs

OUTCOMES = ("anomaly", "wait", "abort", "ok")
OUTCOME_LABELS = {
    "anomaly": "ANOMALY",
    "wait": "prevented by waiting",
    "abort": "prevented by abort",
    "ok": "no anomaly",
}
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

    @property
    def check_sql(self) -> str | None:
        checks = [w.value for w in self.witnesses if w.kind == "check"]
        if not checks:
            return None
        return "SELECT " + " AND ".join(f"({c})" for c in checks)

    @property
    def final_queries(self) -> tuple[str, ...]:
        return tuple(q for q in (self.check_sql, self.show) if q)

    def expected(self, level: str) -> str | None:
        if level == "read-uncommitted" and level not in self.expect:
            level = "read-committed"
        return self.expect.get(level)


_META = re.compile(r"^\s*txlab:\s*([A-Za-z-]+)(?:\s+([A-Za-z -]+?))?\s*=\s*(.*?)\s*$")


def parse_meta(spec: specs.Spec) -> Meta:
    fields: dict[str, str] = {}
    witnesses, expect, story = [], {}, []
    steps = spec.steps()
    for c in spec.comments:
        m = _META.match(c.text)
        if not m:
            if c.text.strip().startswith("txlab:"):
                raise specs.SpecError("cannot read this txlab: line; write `# txlab: key = value`",
                                      c.line, spec.source)
            if not spec.sessions or c.line < spec.sessions[0].line:
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
        else:
            raise specs.SpecError(f"unknown txlab metadata key {key!r} (title, anomaly, explain, "
                                  "witness, show, expect)", c.line, spec.source)
    text = " ".join(line for line in story if line)
    return Meta(fields.get("title"), fields.get("anomaly"), fields.get("explain"),
                tuple(witnesses), expect, text, fields.get("show"))


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
class Verdict:
    outcome: str  # anomaly | wait | abort | ok
    line: str  # "ANOMALY: ..." / "PREVENTED: ..." / "NO ANOMALY: ..."
    aborted: tuple[tuple[str, str, str, str], ...] = ()  # (session, step, sqlstate, message)
    waited: tuple[tuple[str, str], ...] = ()  # (session, step)
    expected: str | None = None
    teaching: bool = True  # the demo looks for an anomaly (it has witnesses)

    @property
    def as_expected(self) -> bool | None:
        return None if self.expected is None else self.expected == self.outcome


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


def verdict(meta: Meta, run: d.PermutationRun, level: str | None) -> Verdict:
    aborted, seen_sessions = [], set()
    for e in run.events:
        if isinstance(e, d.Error) and e.step and e.session not in seen_sessions:
            seen_sessions.add(e.session)
            aborted.append((e.session, e.step, e.sqlstate or "", e.message or e.text or ""))
    waited = [(e.session, e.step) for e in run.events
              if isinstance(e, d.StepReport) and e.kind == "waiting"]
    expected = meta.expected(level) if level else None
    if _witnessed(meta, run):
        what = meta.anomaly or meta.title or "anomaly"
        return Verdict("anomaly", f"ANOMALY: {what}: {meta.explain or 'the witness held'}",
                       tuple(aborted), tuple(waited), expected)
    # A spec without an anomaly to look for gets neutral words instead of "PREVENTED".
    teaching = bool(meta.witnesses)
    if aborted:
        s, step, code, msg = aborted[0]
        cause = errors.cause_name(errors.classify(code, msg))
        more = f" (and {len(aborted) - 1} more)" if len(aborted) > 1 else ""
        head = "PREVENTED" if teaching else "ABORTED"
        return Verdict("abort", f"{head}: {s} aborted with {code} at step {step}: {msg} "
                                f"[{cause}]{more}", tuple(aborted), tuple(waited), expected,
                       teaching)
    if waited:
        s, step = waited[0]
        holders = sorted({b for e in run.events if isinstance(e, d.StepReport)
                          and e.kind == "waiting" and e.step == step for b in e.blocked_by})
        by = " and ".join(holders) if holders else "another session"
        head = "PREVENTED" if teaching else "WAITED"
        return Verdict("wait", f"{head}: {s} waited for {by} (step {step} blocked on a lock "
                               "until the other transaction finished)", (), tuple(waited), expected,
                       teaching)
    if not teaching:
        return Verdict("ok", "DONE: no step waited or failed", (), (), expected, False)
    return Verdict("ok", f"NO ANOMALY: {meta.anomaly or 'the anomaly'} did not occur; nothing "
                         "had to wait or abort", (), (), expected)


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


def levels_for(option: str | None) -> list[str | None]:
    if option is None:
        return [None]
    if option.strip().lower() == "all":
        return list(LEVEL_ORDER)
    return [db.parse_isolation(option).key]


def run_demo(ref: str, dsn: str, isolation: str | None = None, permutation: str | None = None,
             step_timeout: float = 30.0, max_permutations: int = 200,
             schema: str = d.DEFAULT_SCHEMA) -> DemoResult:
    path = resolve(ref)
    spec = specs.load(path)
    meta = parse_meta(spec)
    if not permutation and not spec.permutations:
        count = specs.count_permutations(spec)
        if count > max_permutations:
            raise UsageError(f"{path} has no permutation lines and {count} interleavings; "
                             "pick one with --permutation or raise --max-permutations")
    perms = [specs.parse_permutation(spec, permutation)] if permutation else specs.permutations(spec)
    result = DemoResult(path.stem, spec, meta, [])
    for level in levels_for(isolation):
        iso_sql = db.LEVELS[level].sql if level else None
        run = d.run_spec(spec, dsn, perms, iso_sql, step_timeout, meta.final_queries, schema)
        result.levels.append(LevelRun(level, run, [verdict(meta, r, level) for r in run.runs]))
    result.server_version, result.default_isolation = _server_facts(dsn)
    return result


def _server_facts(dsn: str) -> tuple[str, str]:
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
    return _server_facts(dsn)[0]


def explicit_levels(spec: specs.Spec) -> list[str]:
    """Steps or session setups that set their own isolation level (--isolation cannot
    change those)."""
    out = []
    for sess in spec.sessions:
        blocks = [("setup of session " + sess.name, sess.setup or "")]
        blocks += [("step " + st.name, st.sql) for st in sess.steps]
        out += [where for where, sql in blocks
                if re.search(r"isolation\s+level|transaction_isolation", sql, re.I)]
    return out


@dataclass
class Matrix:
    server_version: str
    levels: tuple[str, ...]
    rows: list[tuple[str, str, list[Verdict]]]  # (demo, title, verdict per level)

    @property
    def mismatches(self) -> list[tuple[str, str, str, str]]:
        out = []
        for name, _title, verdicts in self.rows:
            for level, v in zip(self.levels, verdicts, strict=True):
                if v.expected is not None and v.expected != v.outcome:
                    out.append((name, level, v.expected, v.outcome))
        return out


def run_matrix(dsn: str, step_timeout: float = 30.0, schema: str = d.DEFAULT_SCHEMA) -> Matrix:
    rows = []
    for name, path in catalog().items():
        res = run_demo(str(path), dsn, "all", step_timeout=step_timeout, schema=schema)
        rows.append((name, res.meta.title or name, [lr.verdicts[0] for lr in res.levels]))
    return Matrix(_version(dsn), LEVEL_ORDER, rows)
