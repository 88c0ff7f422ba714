"""The isolation matrix: every scenario x strategy x level, one short run each.

`run_matrix` returns plain rows; `render` formats them (table, markdown, json, csv)
grouped by scenario, violations marked, and whether each verdict was expected
from the strategy's declared `safe_at` levels.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

from tabulate import tabulate

from txlab import runner
from txlab.db import LEVELS, Isolation
from txlab.errors import UsageError
from txlab.scenario import Scenario
from txlab.settings import RunSettings

FORMATS = ("table", "markdown", "json", "csv")
SHORT = {"read-uncommitted": "RU", "read-committed": "RC", "repeatable-read": "RR",
         "serializable": "SER"}


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

    @property
    def surprise(self) -> bool:
        """Violated where the strategy promised to be safe: a bug to look at."""
        return self.expected_safe and not self.holds


Combo = tuple[Scenario, str, Isolation]


def plan(scenarios: Iterable[Scenario], strategies: list[str] | None,
         levels: list[Isolation]) -> list[Combo]:
    """Every (scenario, strategy, level) selected; unknown strategy names are an error."""
    combos: list[Combo] = []
    seen: set[str] = set()
    for s in scenarios:
        for strat in s.strategies:
            if strategies is None or strat.name in strategies:
                seen.add(strat.name)
                combos.extend((s, strat.name, level) for level in levels)
    missing = sorted(set(strategies or ()) - seen)
    if missing:
        raise UsageError(f"no selected scenario has strategy {', '.join(missing)}")
    if not combos:
        raise UsageError("nothing to run: no scenario, strategy and level selected "
                         "(give names, or all)")
    return combos


def run_matrix(combos: list[Combo], base: RunSettings, dsn: str,
               progress: Callable[[int, int, Combo], None] | None = None) -> list[Row]:
    rows = []
    for i, (scenario, strategy, level) in enumerate(combos):
        if progress:
            progress(i, len(combos), (scenario, strategy, level))
        settings = replace(base, scenario=scenario.name, strategy=strategy, isolation=level)
        r = runner.run(settings, scenario, dsn)
        o = r.outcomes
        rows.append(Row(
            scenario=scenario.name, strategy=strategy, isolation=level.key,
            committed_per_s=round(r.throughput_tps, 1), committed=o.committed,
            aborted=dict(sorted(o.aborted.items())), retries=o.retries, failed=o.failed,
            holds=not r.violated, violated=[i.name for i in r.invariants if not i.holds],
            anomalies={k: a["count"] for k, a in r.check.anomalies.items()} if r.check else {},
            forbidden=r.forbidden,
            expected_safe=level.key in scenario.strategy(strategy).safe_at,
        ))
    return rows


def parse_levels(text: str) -> list[Isolation]:
    from txlab.db import parse_isolation

    if text.strip().lower() == "all":
        return list(LEVELS.values())
    levels = [parse_isolation(part) for part in text.split(",") if part.strip()]
    if not levels:
        raise UsageError(f"no isolation level in {text!r}; give levels such as rc,ser, or all")
    return levels


# ---------------------------------------------------------------- rendering


def _aborted(row: Row) -> str:
    return ", ".join(f"{k} {v}" for k, v in row.aborted.items()) or "-"


def _anomalies(row: Row) -> str:
    return ", ".join(f"{k} {v}" + (" FORBIDDEN" if k in row.forbidden else "")
                     for k, v in row.anomalies.items()) or "-"


def _verdict(row: Row, markdown: bool) -> str:
    if row.holds:
        return "holds"
    text = "VIOLATED" + (" (UNEXPECTED)" if row.surprise else "")
    return f"**{text}**" if markdown else text


def to_dicts(rows: list[Row]) -> list[dict]:
    """The rows as data: `--format json`, and what the HTML page embeds."""
    return [asdict(r) | {"surprise": r.surprise} for r in rows]


def render(rows: list[Row], fmt: str, server: str = "") -> str:
    if fmt == "json":
        return json.dumps(to_dicts(rows), indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["scenario", "strategy", "isolation", "committed_per_s", "committed",
                    "aborted", "retries", "failed", "invariants", "violated", "anomalies",
                    "expected_safe"])
        for r in rows:
            w.writerow([r.scenario, r.strategy, r.isolation, r.committed_per_s, r.committed,
                        ";".join(f"{k}={v}" for k, v in r.aborted.items()), r.retries, r.failed,
                        "holds" if r.holds else "VIOLATED", ";".join(r.violated),
                        ";".join(f"{k}={v}" for k, v in r.anomalies.items()), r.expected_safe])
        return out.getvalue()
    markdown = fmt == "markdown"
    style = "github" if markdown else "simple"
    parts = []
    title = f"txlab isolation matrix{' on ' + server if server else ''}"
    parts.append(f"# {title}" if markdown else title)
    headers = ["strategy", "level", "commits/s", "aborted by cause", "retries", "invariants",
               "anomalies"]
    for scenario in dict.fromkeys(r.scenario for r in rows):
        body = [[r.strategy, SHORT[r.isolation], f"{r.committed_per_s:.0f}", _aborted(r),
                 r.retries, _verdict(r, markdown), _anomalies(r)]
                for r in rows if r.scenario == scenario]
        table = tabulate(body, headers=headers, tablefmt=style, disable_numparse=True)
        parts.append((f"## {scenario}" if markdown else f"{scenario}") + "\n" + table)
    bad = [r for r in rows if not r.holds]
    surprises = [r for r in rows if r.surprise]
    forbidden = [r for r in rows if r.forbidden]
    legend = ("Levels: RU read uncommitted (runs as RC in PostgreSQL), RC read committed, "
              "RR repeatable read (snapshot isolation), SER serializable.")
    summary = f"{len(rows)} combinations: {len(rows) - len(bad)} held, {len(bad)} violated"
    if surprises:
        summary += (f"; {len(surprises)} UNEXPECTED (violated at a level the strategy declares "
                    "safe: " + ", ".join(f"{r.scenario}/{r.strategy}/{SHORT[r.isolation]}"
                                         for r in surprises) + ")")
    if forbidden:
        summary += (f"; {len(forbidden)} with an anomaly the level FORBIDS (a database or harness "
                    "bug): " + ", ".join(f"{r.scenario}/{r.strategy}/{SHORT[r.isolation]}"
                                         for r in forbidden))
    legend += (" Anomalies are named by txlab's checker (Adya / Elle classes); FORBIDDEN marks "
               "one the level does not allow.")
    parts += [legend, summary]
    return "\n\n".join(parts) + "\n"
