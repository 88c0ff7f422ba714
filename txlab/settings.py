"""Frozen settings for one run, built by the CLI from options and environment."""

from __future__ import annotations

from dataclasses import dataclass

from txlab.db import LEVELS, Isolation

DEFAULT_DURATION_S = 10.0
# One default for run and matrix: a short pause between a transaction's reads and
# writes, so that concurrent transactions overlap enough to show what the level allows.
DEFAULT_THINK_MS = 1.0


@dataclass(frozen=True)
class RunSettings:
    scenario: str  # a name (bank-transfer) or a path to a scenario file
    seed: int
    strategy: str | None = None  # None: the scenario's first strategy
    isolation: Isolation = LEVELS["read-committed"]
    workers: int = 8
    duration_s: float | None = DEFAULT_DURATION_S  # None when counting transactions
    transactions: int | None = None
    think_ms: float = DEFAULT_THINK_MS
    retries: int = 0
    params: tuple[tuple[str, str], ...] = ()
    schema: str = "txlab"
    scenario_path: tuple[str, ...] = ()
    statement_timeout_ms: int = 30_000
    lock_timeout_ms: int = 10_000
    deadlock_timeout_ms: int | None = None  # None: the server's setting (1 s by default)
    check: bool = True  # run the anomaly checker over the history at the end
    allow_large_params: bool = False  # knob values above their sane maximum (--allow-large-params)
    history_path: str | None = None  # stream the history to this file (--history)
    keep_history: bool = False  # record the history (to a temporary file) even when unneeded
    reconnect_timeout_s: float = 30.0  # how long workers try to reach a lost server again
    # The database was given by --dsn (its value stays with the CLI: the report's
    # commands say --dsn "$TXLAB_DSN", never the DSN, which may hold a password).
    dsn_option: bool = False
