"""The isolation matrix: every scenario x strategy x level, one short run each.

`run_matrix` returns plain rows; `render` formats them (table, markdown, json, csv)
grouped by scenario, violations marked, and whether each verdict was expected
from the strategy's declared `safe_at` levels. A matrix cut short by an interrupt
has the rows of the combinations that finished; given how many were planned,
`render` says it is partial (text and markdown; json and csv stay lists of rows).

A server that goes away mid-matrix: a restart that a cell's run survives (its
workers reconnect) changes nothing; one that cuts a cell short before its load
(its connection or its setup) is waited out for up to `reconnect_timeout_s`, and
the cell runs again. A server that stays away ends the matrix as an interrupt
does, with `MatrixFailed` carrying the rows that finished and naming the
combination that was running; `render` then marks them SERVER LOST.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import psycopg2
from tabulate import tabulate

from txlab import runner, signals
from txlab.db import LEVELS, SHORT, ConnectError, Isolation
from txlab.errors import DatabaseError, UsageError
from txlab.scenario import Scenario
from txlab.settings import RunSettings

FORMATS = ("table", "markdown", "json", "csv")


@dataclass(frozen=True)
class Row:
    scenario: str
    strategy: str
    isolation: str  # key, e.g. read-committed
    committed_per_s: float
    committed: int
    aborted: dict[str, int]
    retries: int
    failed: int
    holds: bool
    violated: list[str]
    anomalies: dict[str, int]
    forbidden: list[str]  # anomaly classes found that the level forbids
    expected_safe: bool  # the strategy declares this level safe
    unknown: int = 0  # COMMITs whose answer was lost with the connection: outcome unknown

    @property
    def surprise(self) -> bool:
        """Violated where the strategy promised to be safe: a bug to look at."""
        return self.expected_safe and not self.holds


Combo = tuple[Scenario, str, Isolation]

# A cell cut short before its load by a server that went away (a restart): the
# matrix waits for the server and runs the cell again, up to TRIES times in all.
BEFORE_LOAD = (ConnectError, runner.SetupLost, psycopg2.OperationalError,
               psycopg2.InterfaceError)
TRIES = 3


class MatrixFailed(DatabaseError):
    """The matrix stopped early for a reason other than an interrupt: the server lost
    (it stayed away longer than the reconnect timeout), or a cell's run failed
    otherwise (runner.RunFailed). `rows`: the combinations that finished;
    `running`: the one that was running (left out)."""

    def __init__(self, message: str, rows: list[Row], running: Combo, lost: bool = True):
        super().__init__(message)
        self.rows = rows
        self.running = running
        self.lost = lost  # the server was lost (else: the cell's run failed otherwise)


def name(combo: Combo) -> str:
    """A combination as the summary names it: bank-transfer/atomic/RR."""
    scenario, strategy, level = combo
    return f"{scenario.name}/{strategy}/{SHORT[level.key]}"


def plan(scenarios: Iterable[Scenario], strategies: list[str] | None,
         levels: list[Isolation], params: Iterable[tuple[str, str]] = ()) -> list[Combo]:
    """Every (scenario, strategy, level) selected (`strategies` None, or with `all` in
    it: every strategy); unknown strategy names are an error, and so is a knob (-p)
    that no selected scenario has, or a bad value for one."""
    scenarios = list(scenarios)
    for name, _ in params:
        if not any(_knobs_of(s, ((name, ""),)) for s in scenarios):
            raise UsageError(f"--param {name}: no selected scenario has this knob")
    for s in scenarios:
        s.params(dict(_knobs_of(s, params)))  # validate values before any run
    every = strategies is None or any(x.lower() == "all" for x in strategies)
    named = [x for x in strategies or () if x.lower() != "all"]
    have = list(dict.fromkeys(st.name for s in scenarios for st in s.strategies))
    missing = [x for x in dict.fromkeys(named) if x not in have]
    if missing:
        raise UsageError(_no_strategy(missing, have))
    combos: list[Combo] = []
    for s in scenarios:
        for strat in s.strategies:
            if every or strat.name in named:
                combos.extend((s, strat.name, level) for level in levels)
    if not combos:
        raise UsageError("nothing to run: no scenario, strategy and level selected "
                         "(give names, or all)")
    return combos


def _no_strategy(missing: list[str], have: list[str]) -> str:
    """What `txlab run` says of a strategy its scenario lacks, for the selection:
    `no selected scenario has strategy 'atomc'. Did you mean 'atomic'? Choose from: ...`"""
    from difflib import get_close_matches

    def named(name: str) -> str:
        close = get_close_matches(name, have, n=1, cutoff=0.6)
        return f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")

    if len(missing) == 1:
        said = named(missing[0]).replace(" (did you mean", ". Did you mean").rstrip(")")
        said = said if said.endswith("?") else said + "."
        head = f"no selected scenario has strategy {said}"
    else:
        head = f"no selected scenario has strategies {', '.join(map(named, missing))}."
    return f"{head} Choose from: {', '.join(have)}, or all."


def _knobs_of(s: Scenario, params: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The knobs among `params` that scenario `s` has."""
    names = {k.name for k in s.knobs}
    return tuple((k, v) for k, v in params if k.replace("-", "_") in names)


def run_matrix(combos: list[Combo], base: RunSettings, dsn: str,
               progress: Callable[[int, int, Combo], None] | None = None,
               interrupts: signals.Interrupts | None = None) -> list[Row]:
    """One short run per combination, a row each. Ctrl-C, SIGTERM or SIGHUP stops
    the matrix: the running cell winds down as a run does and is left out (it did
    not run its time), no further cell starts, and the rows of the cells that
    finished come back. Pass the caller's `interrupts` (signals.deferred) to look at
    them, as the CLI does to print the partial table (exit 130); without them the
    interrupt goes on to the caller once the matrix has stopped (KeyboardInterrupt
    for Ctrl-C): left to each run, it would end only that cell.

    A server lost for good (each run waits `base.reconnect_timeout_s` for it, and so
    does the matrix for a cell cut short before its load) raises MatrixFailed with
    the rows of the cells that finished."""
    if interrupts is None:
        with signals.deferred() as interrupts:
            rows = _run_matrix(combos, base, dsn, progress, interrupts)
        interrupts.deliver()
        return rows
    return _run_matrix(combos, base, dsn, progress, interrupts)


def _run_matrix(combos: list[Combo], base: RunSettings, dsn: str,
                progress: Callable[[int, int, Combo], None] | None,
                interrupts: signals.Interrupts) -> list[Row]:
    rows = []
    for i, (scenario, strategy, level) in enumerate(combos):
        if interrupts:
            break
        if progress:
            progress(i, len(combos), (scenario, strategy, level))
        settings = replace(base, scenario=scenario.name, strategy=strategy, isolation=level,
                           params=_knobs_of(scenario, base.params))
        running = (scenario, strategy, level)
        try:
            r = _run_cell(settings, scenario, dsn, interrupts, base.reconnect_timeout_s)
        except KeyboardInterrupt:  # during the cell's setup: cancelled, nothing to show
            break
        except runner.RunFailed as exc:  # the server lost for good (the run waited for it)
            lost = isinstance(exc, runner.ServerLost)
            raise MatrixFailed(_failed(exc, running, rows, len(combos), lost), rows, running,
                               lost) from None
        except _Gone as exc:  # the same before the cell's load (the matrix waited for it)
            raise MatrixFailed(_failed(exc, running, rows, len(combos), True), rows,
                               running) from None
        if r is None or r.interrupted:
            break
        o = r.outcomes
        rows.append(Row(
            scenario=scenario.name, strategy=strategy, isolation=level.key,
            committed_per_s=round(r.throughput_tps, 1), committed=o.committed,
            aborted=dict(sorted(o.aborted.items())), retries=o.retries, failed=o.failed,
            holds=not r.violated, violated=[i.name for i in r.invariants if not i.holds],
            anomalies={k: a["count"] for k, a in r.check.anomalies.items()} if r.check else {},
            forbidden=r.forbidden,
            expected_safe=level.key in scenario.strategy(strategy).safe_at,
            unknown=o.unknown,
        ))
    return rows


class _Gone(DatabaseError):
    """A cell cut short before its load, and the server did not come back in time."""


def _run_cell(settings: RunSettings, scenario: Scenario, dsn: str,
              interrupts: signals.Interrupts, wait_s: float) -> runner.RunResult | None:
    """One cell's run. Cut short before its load by a server that went away, it runs
    again once the server takes connections (waited for up to `wait_s`), up to TRIES
    times in all; then _Gone. None: interrupted while waiting."""
    for attempt in range(1, TRIES + 1):
        try:
            return runner.run(settings, scenario, dsn, interrupts=interrupts, command="matrix")
        except BEFORE_LOAD as exc:
            if interrupts:
                return None
            if attempt == TRIES:
                raise _Gone(f"{_first_line(exc)} (tried {TRIES} times)") from None
            failure = exc
        try:
            if not runner.wait_for_server(dsn, wait_s, lambda: bool(interrupts)):
                return None
        except DatabaseError:  # it did not come back in time
            raise _Gone(f"{_first_line(failure)} (and no answer within {wait_s:g} s)") from None
    raise AssertionError("unreachable")


def _failed(exc: Exception, running: Combo, rows: list[Row], planned: int, lost: bool) -> str:
    s, strategy, level = running
    what = "the server was lost" if lost else "the run failed"
    return (f"{what} during {s.name} {strategy} {level.sql}, after {len(rows)} of {planned} "
            f"combinations: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_levels(text: str) -> list[Isolation]:
    """`rc,ser`, `all`, or a list with `all` in it (every level; an unknown name in the
    list is still refused): each level once, in the order given."""
    from txlab.db import parse_isolation

    levels: list[Isolation] = []
    for part in (p.strip() for p in text.split(",")):
        if part.lower() == "all":
            levels += LEVELS.values()
        elif part:
            levels.append(parse_isolation(part))
    if not levels:
        raise UsageError(f"no isolation level in {text!r}; give levels such as rc,ser, or all")
    return list(dict.fromkeys(levels))


# ---------------------------------------------------------------- rendering


SHORT_CAUSES = {"40001-concurrent-update": "40001-cu", "40001-rw-dependencies": "40001-rw"}


def _aborted(row: Row) -> str:
    """The aborts by cause, and the COMMITs whose outcome is unknown (no answer: the
    connection was lost), which are neither committed nor aborted."""
    parts = [f"{SHORT_CAUSES.get(k, k)} {v}" for k, v in row.aborted.items()]
    if row.unknown:
        parts.append(f"outcome unknown {row.unknown}")
    return ", ".join(parts) or "-"


def _anomalies(row: Row) -> str:
    return ", ".join(f"{k} {v}" + (" FORBIDDEN" if k in row.forbidden else "")
                     for k, v in row.anomalies.items()) or "-"


def _verdict(row: Row) -> str:
    if row.holds:
        return "holds"
    return "VIOLATED" + (", UNEXPECTED" if row.surprise else "")


def to_dicts(rows: list[Row]) -> list[dict]:
    """The rows as data: `--format json`, and what the HTML page embeds."""
    return [asdict(r) | {"surprise": r.surprise} for r in rows]


def interrupted(rows: list[Row], planned: int | None,
                failed: MatrixFailed | None = None) -> str | None:
    """What a matrix cut short says about itself (None for a whole one): by an
    interrupt, or by `failed` (the server lost)."""
    if failed is not None:
        word, why = ("SERVER LOST", "the server was lost") if failed.lost else (
            "STOPPED", "its run failed")
        return (f"{word} after {len(rows)} of {planned} combinations: these are the ones "
                f"that finished ({name(failed.running)} was running when {why}, and is "
                "left out).")
    if planned is None or len(rows) >= planned:
        return None
    return (f"INTERRUPTED after {len(rows)} of {planned} combinations: these are the ones "
            "that finished (the one running was stopped and is left out).")


def render(rows: list[Row], fmt: str, server: str = "", term=None,
           planned: int | None = None, failed: MatrixFailed | None = None) -> str:
    """The matrix as text (fitted to `term`, default plain 80 columns), markdown,
    json or csv; every view shows the same rows, verdicts and summary. `planned`:
    how many combinations were to run; with fewer rows (an interrupt, or `failed`:
    the server lost), text and markdown say the matrix is partial and why (json
    and csv are the rows alone)."""
    if fmt == "json":
        return json.dumps(to_dicts(rows), indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["scenario", "strategy", "isolation", "committed_per_s", "committed",
                    "aborted", "retries", "failed", "invariants", "violated", "anomalies",
                    "expected_safe", "unknown"])
        for r in rows:
            w.writerow([r.scenario, r.strategy, r.isolation, r.committed_per_s, r.committed,
                        ";".join(f"{k}={v}" for k, v in r.aborted.items()), r.retries, r.failed,
                        "holds" if r.holds else "VIOLATED", ";".join(r.violated),
                        ";".join(f"{k}={v}" for k, v in r.anomalies.items()), r.expected_safe,
                        r.unknown])
        return out.getvalue()
    note = interrupted(rows, planned, failed)
    partial = note.split(" after ")[0] if note else ""  # INTERRUPTED, SERVER LOST, STOPPED
    if fmt in ("text", "table"):
        return _text(rows, server, term, note, partial)
    parts = [f"# {_title(server)}", *([f"**{note}**"] if note else [])]
    keep = _columns(rows)
    heads = [h for i, h in enumerate(HEADERS) if i in keep]
    for scenario in dict.fromkeys(r.scenario for r in rows):
        body = [[cell.replace("VIOLATED", "**VIOLATED**") if i == VERDICT else cell
                 for i, cell in enumerate(_cells(r)) if i in keep]
                for r in rows if r.scenario == scenario]
        parts.append(f"## {scenario}\n" + tabulate(body, headers=heads, tablefmt="github",
                                                     disable_numparse=True))
    parts += [legend(rows), summary(rows, partial)]
    return "\n\n".join(parts) + "\n"


HEADERS = ["strategy", "level", "tps", "aborted", "retries", "verdict", "anomalies"]
RETRIES = HEADERS.index("retries")
VERDICT = HEADERS.index("verdict")


def _columns(rows: list[Row]) -> list[int]:
    """The columns shown: with no retry anywhere the retries column is all zeros, and
    the text and markdown views leave it out (json and csv keep every field)."""
    return [i for i in range(len(HEADERS)) if i != RETRIES or any(r.retries for r in rows)]

LEGEND = ("Levels: RU read uncommitted (runs as RC in PostgreSQL), RC read committed, "
          "RR repeatable read (snapshot isolation), SER serializable. Anomalies are named by "
          "txlab's checker (Adya / Elle classes; `txlab explain NAME`); FORBIDDEN marks one "
          "the level does not allow. tps: commits per second. Aborted: count by SQLSTATE or "
          "cause (40001-cu: concurrent update, 40001-rw: read/write dependencies). Verdict: "
          "did every invariant hold; UNEXPECTED: violated at a level the strategy declares "
          "safe.")


def _title(server: str) -> str:
    return f"txlab isolation matrix{' on ' + server if server else ''}"


def legend(rows: list[Row]) -> str:
    """LEGEND, and what `outcome unknown` means when a row has one."""
    if not any(r.unknown for r in rows):
        return LEGEND
    return (LEGEND + " Outcome unknown: COMMITs whose answer was lost with the connection"
            " (a server restart); they may or may not have taken effect.")


def _cells(r: Row) -> list[str]:
    return [r.strategy, SHORT[r.isolation], f"{r.committed_per_s:.0f}", _aborted(r),
            str(r.retries), _verdict(r), _anomalies(r)]


def summary(rows: list[Row], partial: bool | str = False) -> str:
    """The last line; `partial`: the matrix was cut short (True: by an interrupt, or the
    word that says why: INTERRUPTED, SERVER LOST, STOPPED)."""
    bad = [r for r in rows if not r.holds]
    surprises = [r for r in rows if r.surprise]
    forbidden = [r for r in rows if r.forbidden]
    word = "INTERRUPTED" if partial is True else partial
    text = f"{word}: partial matrix. " if word else ""
    text += (f"{len(rows)} combination{'' if len(rows) == 1 else 's'}: "
             f"{len(rows) - len(bad)} held, {len(bad)} violated")
    if surprises:
        text += (f"; {len(surprises)} UNEXPECTED (violated at a level the strategy declares "
                 "safe: " + ", ".join(f"{r.scenario}/{r.strategy}/{SHORT[r.isolation]}"
                                      for r in surprises) + ")")
    if forbidden:
        text += (f"; {len(forbidden)} with an anomaly the level FORBIDS (a database or harness "
                 "bug): " + ", ".join(f"{r.scenario}/{r.strategy}/{SHORT[r.isolation]}"
                                      for r in forbidden))
    return text


def _text(rows: list[Row], server: str, t, note: str | None, partial: str) -> str:
    from rich.console import Group
    from rich.text import Text

    from txlab import term as term_mod

    t = t or term_mod.plain()
    parts: list = [term_mod.heading(_title(server))]
    if note:
        parts.append(Text(term_mod.wrapped(note, t), style=term_mod.STYLES["warning"]))
    keep = _columns(rows)
    for scenario in dict.fromkeys(r.scenario for r in rows):
        body = [[c for i, c in enumerate(_cells(r)) if i in keep]
                for r in rows if r.scenario == scenario]
        heads = [h for i, h in enumerate(HEADERS) if i in keep]
        parts += ["", term_mod.heading(scenario),
                  term_mod.table(heads, body, t, wrap={heads.index("aborted"): 8,
                                                       heads.index("verdict"): 8,
                                                       heads.index("anomalies"): 12},
                                 right=(2, heads.index("retries")) if "retries" in heads
                                 else (2,))]
    parts += ["", Text(term_mod.wrapped(legend(rows), t), style=term_mod.STYLES["muted"]), ""]
    line = summary(rows, partial)
    style = term_mod.STYLES["violated" if any(not r.holds or r.forbidden for r in rows)
                            else "warning" if note else "held"]
    parts.append(Text(term_mod.wrapped(line, t), style=style))
    return term_mod.to_text(Group(*parts), t)
