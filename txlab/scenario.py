"""The scenario contract, and loading scenarios by name or path.

A scenario is a Python file that defines `SCENARIO = Scenario(...)`. The built-in
scenarios (the top-level `scenarios/` folder, installed as `txlab_scenarios`) use
exactly this contract; txlab's engine never imports a particular scenario.

    Scenario(name, summary, teaches, description, knobs, setup, strategies, invariants)

- `setup(s: Setup)` creates the scenario's tables (search_path is txlab's schema)
  and declares the initial row versions with `s.initial(key, version, value)`.
- each `Strategy.run(tx: Tx)` performs one transaction's body; txlab sends BEGIN
  at the chosen isolation level before it and COMMIT after it.
- each `Invariant.check(db: Check) -> Verdict` queries the final state.

Optional words for the run report's opening story: `Verdict.story` (what broke,
in numbers and the scenario's words) and `Strategy.risk` (what can go wrong at
the levels the strategy is not declared safe at).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from txlab.errors import UsageError

# ---------------------------------------------------------------- the contract


def number(x: float) -> str:
    """1,000,000 rather than 1e+06."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,g}"


def listed(items: Iterable[str], limit: int = 5, sep: str = "; ") -> str:
    """The first `limit` items joined, and `and N more` for the rest, so a detail or a
    story never drops what it does not show: `event 1: 25 tickets for 20 seats; event
    2: 30 tickets for 20 seats`."""
    items = list(items)
    shown = sep.join(items[:limit])
    return shown + (f"{sep}and {len(items) - limit:,} more" if len(items) > limit else "")


# The sane maximum of a numeric knob that declares no `limit` (nor a smaller `max`).
DEFAULT_LIMIT = 1_000_000


@dataclass(frozen=True)
class Knob:
    """A scenario parameter, set with `--param name=value`; its type is its default's.

    `min` and `max` are hard bounds (the scenario cannot work outside them).
    `limit` is a sane maximum (how many rows setup may insert, say): a bigger
    value is refused unless the user asks for it deliberately with
    --allow-large-params. Numeric knobs without one get DEFAULT_LIMIT.
    `strategies`: the strategies that read it, when not all do (a lock-order knob that
    only for-update reads); a run of another strategy notes that the value has no
    effect there, and a suggested command for another strategy leaves it out.
    """

    name: str
    default: int | float | str | bool
    help: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    limit: float | None = None
    strategies: tuple[str, ...] = ()

    @property
    def sane_max(self) -> float | None:
        """The largest value accepted without --allow-large-params (None: no such limit)."""
        if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
            return None
        limit = self.limit if self.limit is not None else DEFAULT_LIMIT
        return None if self.max is not None and self.max <= limit else limit

    def parse(self, text: str, allow_large: bool = False) -> Any:
        kind = type(self.default)
        try:
            if kind is bool:
                low = text.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError
                value: Any = low in ("true", "1", "yes", "on")
            else:
                value = kind(text)
        except ValueError:
            raise UsageError(
                f"--param {self.name}={text}: expected {kind.__name__} ({self.help})"
            ) from None
        return self.validate(value, allow_large)

    def validate(self, value: Any, allow_large: bool = False) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"--param {self.name}={value}: must be a finite number")
        if self.choices and value not in self.choices:
            raise UsageError(
                f"--param {self.name}={value}: choose one of {', '.join(self.choices)}"
            )
        if self.min is not None and value < self.min:
            raise UsageError(f"--param {self.name}={value}: must be at least {self.min:g}")
        if self.max is not None and value > self.max:
            raise UsageError(f"--param {self.name}={value}: must be at most {self.max:g}")
        sane = self.sane_max
        if not allow_large and sane is not None and (
                value > sane or (self.min is None and value < -sane)):
            raise UsageError(
                f"--param {self.name}={value}: above {number(sane)}, the sane maximum of this knob "
                f"({self.help}); add --allow-large-params to go beyond it deliberately")
        return value


@dataclass(frozen=True)
class Strategy:
    """One way of writing the transaction: `run(tx)` is its body."""

    name: str
    run: Callable[[Tx], None]
    help: str
    safe_at: tuple[str, ...] = ()  # isolation keys at which it keeps every invariant
    # What can go wrong at the other levels, in the scenario's words (for the
    # report's story): "two transfers can read the same balance and both write ..."
    risk: str = ""


@dataclass(frozen=True)
class Verdict:
    holds: bool
    expected: Any
    actual: Any
    detail: str = ""
    # When violated: what broke, in numbers and the scenario's words, one clause
    # for the report's story ("2,385 of the 10,000 in the accounts vanished").
    story: str = ""


@dataclass(frozen=True)
class Invariant:
    name: str
    check: Callable[[Check], Verdict]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    teaches: str
    description: str
    knobs: tuple[Knob, ...]
    setup: Callable[[Setup], None]
    strategies: tuple[Strategy, ...]
    invariants: tuple[Invariant, ...]
    path: Path | None = field(default=None, compare=False)

    @property
    def default_strategy(self) -> str:
        return self.strategies[0].name

    def strategy(self, name: str | None) -> Strategy:
        if name is None:
            return self.strategies[0]
        for s in self.strategies:
            if s.name == name:
                return s
        names = [s.name for s in self.strategies]
        raise UsageError(f"scenario {self.name} has no strategy {name!r}.{_did_you_mean(name, names)}"
                         f" Choose one of: {', '.join(names)}")

    def params(self, given: Mapping[str, str], allow_large: bool = False) -> dict[str, Any]:
        """Defaults overlaid with `--param` values (names: - and _ are the same); values
        above a knob's sane maximum only with `allow_large`."""
        knobs = {k.name: k for k in self.knobs}
        out = {k.name: k.default for k in self.knobs}
        for raw, text in given.items():
            name = raw.replace("-", "_")
            if name not in knobs:
                valid = ", ".join(knobs) or "(none)"
                raise UsageError(f"scenario {self.name} has no knob {raw!r}."
                                 f"{_did_you_mean(name, list(knobs))} Its knobs: {valid}")
            out[name] = knobs[name].parse(text, allow_large)
        return out


def _did_you_mean(name: str, names: list[str]) -> str:
    """` Did you mean 'atomic'?` for a typo of one of `names`, else ""."""
    close = get_close_matches(name, names, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


# ---------------------------------------------------------------- what the contract's functions receive


class Setup:
    """Given to `Scenario.setup`: run DDL/DML and declare the initial row versions."""

    def __init__(self, cursor, params: Mapping[str, Any], rng):
        self._cur = cursor
        self.params = params
        self.rng = rng
        self.initial_writes: list[tuple[str, str, int, Any]] = []

    def execute(self, sql: str, args: Iterable[Any] | None = None) -> None:
        self._cur.execute(sql, args)

    def initial(self, key: str, version: int, value: Any) -> None:
        self.initial_writes.append(("w", key, version, value))


class Check:
    """Given to `Invariant.check`: read-only queries on the final state."""

    def __init__(self, cursor, params: Mapping[str, Any]):
        self._cur = cursor
        self.params = params

    def query(self, sql: str, args: Iterable[Any] | None = None) -> list[tuple]:
        self._cur.execute(sql, args)
        return self._cur.fetchall()

    def scalar(self, sql: str, args: Iterable[Any] | None = None) -> Any:
        rows = self.query(sql, args)
        return rows[0][0] if rows else None


# Tx is the hot path and lives in txlab.tx; re-exported here for scenario authors.
from txlab.tx import Tx  # noqa: E402,F401

# ---------------------------------------------------------------- loading

BUILTIN_PACKAGE = "txlab_scenarios"


def builtin_dir() -> Path:
    return Path(str(importlib.resources.files(BUILTIN_PACKAGE)))


def check_folder(path: str | Path, given: str) -> Path:
    """`path` as a folder of scenarios, else a UsageError naming it and where it was
    `given` (`--scenario-path`, `TXLAB_SCENARIO_PATH`): a folder that is not there is
    a typo, not an empty folder."""
    p = Path(path)
    if p.is_dir():
        return p
    if not p.exists():
        raise UsageError(f"{given} {path}: no such folder")
    hint = (f"; run the file itself by its path (`txlab run {path}`) or give its folder"
            if p.suffix == ".py" else "")
    raise UsageError(f"{given} {path}: is a file, not a folder of scenario files{hint}")


def search_path(extra: Iterable[str] = (), env: Mapping[str, str] = os.environ) -> list[Path]:
    """Folders searched for scenarios by name: --scenario-path, TXLAB_SCENARIO_PATH, built-ins.
    Each given folder must exist (UsageError otherwise); empty TXLAB_SCENARIO_PATH
    entries (`a::b`) are skipped."""
    dirs = [check_folder(p, "--scenario-path") for p in extra]
    dirs += [check_folder(p, "TXLAB_SCENARIO_PATH names")
             for p in env.get("TXLAB_SCENARIO_PATH", "").split(os.pathsep) if p]
    dirs.append(builtin_dir())
    return dirs


class NotAScenario(UsageError):
    """A Python file that defines no SCENARIO (a helper module, say)."""


def load_file(path: Path) -> Scenario:
    """Import a scenario file; every problem is a UsageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"scenario file {path} does not exist")
    module_name = f"txlab_user_scenario_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: not a Python file txlab can load")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except SystemExit as exc:  # sys.exit() at import time must not end txlab
        raise UsageError(f"{path}: called sys.exit({exc.code!r}) while loading; a scenario "
                         "file must only define SCENARIO") from None
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise UsageError(
            f"{path}: error while loading it, at {Path(where.filename).name}:{where.lineno}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise NotAScenario(f"{path}: defines no SCENARIO = txlab.scenario.Scenario(...)")
    if not scenario.strategies:
        raise UsageError(f"{path}: scenario {scenario.name} has no strategies")
    return _with_path(scenario, path)


def _with_path(scenario: Scenario, path: Path) -> Scenario:
    from dataclasses import replace

    return replace(scenario, path=path)


def discover(extra: Iterable[str] = (), env: Mapping[str, str] = os.environ,
             problems: list[tuple[Path, UsageError]] | None = None) -> dict[str, Scenario]:
    """Every scenario on the search path by name; earlier folders win.

    A file that fails to load is skipped (one broken file must not break every
    command) and (its path, its error) appended to `problems`, if given.
    """
    found: dict[str, Scenario] = {}
    for folder in search_path(extra, env):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                scenario = load_file(path)
            except NotAScenario:  # helper modules may sit beside scenarios
                continue
            except UsageError as exc:
                if problems is not None:
                    problems.append((path, exc))
                continue
            found.setdefault(scenario.name, scenario)
    return found


def is_path(ref: str) -> bool:
    """`ref` names a scenario file (`path/to/file.py`), not a scenario by name."""
    return ref.endswith(".py") or os.sep in ref


def command_words(ref: str, extra: Iterable[str] = ()) -> list[str]:
    """How another command names the scenario that `ref` and `extra` (the --scenario-path
    folders) reached: the path itself, or the name with the same folders, so that it
    finds the same file (TXLAB_SCENARIO_PATH it sees anyway)."""
    if is_path(ref):
        return [ref]
    return [ref] + [w for folder in extra for w in ("--scenario-path", str(folder))]


def resolve(ref: str, extra: Iterable[str] = (), env: Mapping[str, str] = os.environ) -> Scenario:
    """A scenario by name (`bank-transfer`) or by path (`path/to/file.py`)."""
    if is_path(ref):
        return load_file(Path(ref))
    problems: list[tuple[Path, UsageError]] = []
    known = discover(extra, env, problems)
    if ref in known:
        return known[ref]
    for path, problem in problems:  # the file that would have been it failed to load: say why
        if path.stem.replace("_", "-") == ref.replace("_", "-"):
            raise problem
    close = get_close_matches(ref, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(
        f"unknown scenario {ref!r}.{hint} Available: {', '.join(sorted(known))} "
        "(see `txlab list`)."
    )
