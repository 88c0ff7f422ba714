"""The history: every attempt of every transaction, and its JSON-lines file format.

Workers append `Attempt` tuples to their own lists (no lock on the hot path);
`merge` orders them by invoke time and numbers them. The file format is a stable
contract, documented in docs/history-format.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FORMAT = "txlab-history/1"

# Outcomes of one attempt.
COMMITTED = "committed"
DECLINED = "declined"  # rolled back by a business rule (not a failure)
ABORTED = "aborted"  # rolled back by an error: certainly no effect
UNKNOWN = "unknown"  # the connection died during COMMIT: effect unknown


class Attempt(NamedTuple):
    worker: int
    txn: int  # the worker's transaction number; retries share it
    attempt: int  # 0 for the first try
    invoke_ns: int  # time.monotonic_ns() just before BEGIN
    complete_ns: int  # just after COMMIT / ROLLBACK returned
    outcome: str
    cause: str | None  # abort cause key (SQLSTATE or txlab's own), decline reason
    sqlstate: str | None
    message: str | None
    ops: list  # [("r"|"w", key, version, value), ...]


@dataclass
class History:
    meta: dict[str, Any]
    initial: list = field(default_factory=list)  # setup's writes: [("w", key, version, value)]
    attempts: list[Attempt] = field(default_factory=list)  # ordered by invoke time; id = index + 1


def merge(per_worker: list[list[Attempt]]) -> list[Attempt]:
    merged = [a for records in per_worker for a in records]
    merged.sort(key=lambda a: (a.invoke_ns, a.worker))
    return merged


def _attempt_json(i: int, a: Attempt, isolation: str) -> dict:
    return {
        "type": "txn", "id": i, "worker": a.worker, "txn": a.txn, "attempt": a.attempt,
        "isolation": isolation, "invoke_ns": a.invoke_ns, "complete_ns": a.complete_ns,
        "outcome": a.outcome, "cause": a.cause, "sqlstate": a.sqlstate, "error": a.message,
        "ops": [list(op) for op in a.ops],
    }


def write(history: History, path: Path | str) -> None:
    isolation = history.meta.get("isolation", "")
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"type": "run", "format": FORMAT, **history.meta}) + "\n")
        f.write(json.dumps({"type": "init", "id": 0, "ops": [list(op) for op in history.initial]}) + "\n")
        for i, a in enumerate(history.attempts, 1):
            f.write(json.dumps(_attempt_json(i, a, isolation), default=str) + "\n")


def read(path: Path | str) -> History:
    meta: dict = {}
    initial: list = []
    attempts: list[Attempt] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "run":
                meta = {k: v for k, v in rec.items() if k not in ("type",)}
            elif kind == "init":
                initial = [tuple(op) for op in rec["ops"]]
            elif kind == "txn":
                attempts.append(Attempt(
                    rec["worker"], rec["txn"], rec["attempt"], rec["invoke_ns"], rec["complete_ns"],
                    rec["outcome"], rec["cause"], rec["sqlstate"], rec["error"],
                    [tuple(op) for op in rec["ops"]],
                ))
            else:
                raise ValueError(f"{path}:{n}: unknown record type {kind!r}")
    return History(meta, initial, attempts)
