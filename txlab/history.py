"""The history: every attempt of every transaction, and its JSON-lines file format.

During a run the history is streamed to a file as it is recorded, not kept in
memory: workers append plain tuples to their own lists (no lock on the hot
path), and the runner's main thread hands them to a `Writer`, which puts them in
invoke order and writes them. The file format is a stable contract, documented
in docs/history-format.md.
"""

from __future__ import annotations

import json
import operator
import os
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from itertools import islice
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


class History:
    """A run's history: `meta` (the run record), `initial` (setup's writes) and the attempts.

    The attempts are either in memory (`attempts=[...]`) or in a history file
    (`path=...`, as the runner leaves them). `iter_attempts()` streams them from
    the file in constant memory; `attempts` loads them all into a list (and keeps
    it), which is what small runs and tests want. `count` is their number.
    """

    def __init__(self, meta: dict[str, Any], initial: list | None = None,
                 attempts: list[Attempt] | None = None, *, path: Path | str | None = None,
                 count: int | None = None):
        self.meta = meta
        self.initial = initial if initial is not None else []
        self._attempts = attempts
        self.path = Path(path) if path is not None else None
        self.count = count if count is not None else len(attempts or ())

    @property
    def attempts(self) -> list[Attempt]:
        if self._attempts is None:
            self._attempts = list(self.iter_attempts())
        return self._attempts

    @attempts.setter
    def attempts(self, value: list[Attempt]) -> None:
        self._attempts = value
        self.count = len(value)

    def iter_attempts(self) -> Iterator[Attempt]:
        if self._attempts is not None:
            return iter(self._attempts)
        if self.path is None:
            return iter(())
        return iter_attempts(self.path)

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path else "in memory"
        return f"History({self.meta.get('scenario')!r}, {self.count} attempts, {where})"


def merge(per_worker: list[list[Attempt]]) -> list[Attempt]:
    merged = [a for records in per_worker for a in records]
    merged.sort(key=_ORDER)
    return merged


_ORDER = operator.itemgetter(3, 0)  # (invoke_ns, worker): the file's order
_INVOKE = operator.itemgetter(3)


# ---------------------------------------------------------------- encoding


def _make_encoder():
    """JSON text of a value exactly as json.dumps(value, default=str) writes it.

    The C encoder is built once (json.dumps builds one per call, a third of its
    cost for a small value); without it, the pure-Python one."""
    from json import encoder

    if encoder.c_make_encoder is not None:
        c = encoder.c_make_encoder(None, str, encoder.encode_basestring_ascii, None,
                                   ": ", ", ", False, False, True)
        return lambda value: "".join(c(value, 0))
    return json.JSONEncoder(default=str).encode


_ENCODE = _make_encoder()
_STRING = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _text(x) -> str:
    if x is None:
        return "null"
    return _STRING(x) if type(x) is str else _ENCODE(x)


def _header_lines(meta: dict, initial: list) -> str:
    run = json.dumps({"type": "run", "format": FORMAT, **meta}, default=str)
    init = json.dumps({"type": "init", "id": 0, "ops": [list(op) for op in initial]}, default=str)
    return run + "\n" + init + "\n"


class _Lines:
    """`txn` lines of one history, exactly as json.dumps writes the record: the
    isolation is the same on every line, and most attempts commit with no cause,
    SQLSTATE or error, so both are baked into the templates once."""

    def __init__(self, isolation: str):
        head = ('{"type": "txn", "id": %d, "worker": %d, "txn": %d, "attempt": %d, '
                '"isolation": ' + _STRING(isolation).replace("%", "%%") +
                ', "invoke_ns": %d, "complete_ns": %d, "outcome": ')
        self.any = head + '%s, "cause": %s, "sqlstate": %s, "error": %s, "ops": %s}\n'
        self.committed = (head + _STRING(COMMITTED) +
                          ', "cause": null, "sqlstate": null, "error": null, "ops": %s}\n')

    def encode(self, lines: list, first_id: int, attempts) -> None:
        """Append the lines of `attempts` (tuples in Attempt's field order), numbered
        from `first_id`, to `lines`."""
        ok, other, enc, text = self.committed, self.any, _ENCODE, _text
        i = first_id
        for w, txn, attempt, invoke, complete, outcome, cause, sqlstate, message, ops in attempts:
            if outcome == COMMITTED and cause is None and sqlstate is None and message is None:
                lines.append(ok % (i, w, txn, attempt, invoke, complete, enc(ops)))
            else:
                lines.append(other % (i, w, txn, attempt, invoke, complete, text(outcome),
                                      text(cause), text(sqlstate), text(message), enc(ops)))
            i += 1


# ---------------------------------------------------------------- writing


class Writer:
    """Streams a history to a file in invoke order while the run goes on.

    Workers finish attempts out of invoke order (a long transaction started
    before a short one ends after it), so attempts wait in `pending` until no
    worker can still produce an earlier one: `flush(watermark)` writes those
    invoked before `watermark`, the earliest invoke time any worker may still
    record. What waits is bounded by the longest attempt, not the run's length.
    """

    CHUNK = 16  # lines encoded between two yields of the GIL to the workers (~0.1 ms)

    def __init__(self, path: Path | str, meta: dict, initial: list):
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115
        self._lines = _Lines(str(meta.get("isolation", "")))
        self._pending: list = []
        self.count = 0
        self._file.write(_header_lines(meta, initial))

    def add(self, records: list) -> None:
        """Attempts recorded since the last call (tuples in `Attempt`'s field order)."""
        self._pending += records

    def flush(self, watermark: int | None = None) -> None:
        """Write the pending attempts invoked before `watermark` (all of them if None).

        Encoding is the bulk of the main thread's work: it goes in small chunks, and
        lets the workers have the GIL in between, so that a worker holding row locks
        never waits for a whole batch. An exception (Ctrl-C) in the middle leaves
        exactly the unwritten attempts pending."""
        pending = self._pending
        if not pending:
            return
        pending.sort(key=_ORDER)
        end = len(pending) if watermark is None else bisect_left(pending, watermark, key=_INVOKE)
        done = 0
        try:
            while done < end:
                upto = min(end, done + self.CHUNK)
                lines: list[str] = []
                self._lines.encode(lines, self.count + 1, pending[done:upto])
                self._file.write("".join(lines))
                self.count += upto - done
                done = upto
                time.sleep(0)  # the GIL to any worker that wants it
        finally:
            del pending[:done]

    def close(self) -> None:
        self.flush()
        self._file.close()


def write(history: History, path: Path | str) -> None:
    """Write a whole history (in memory or in another file) to `path`."""
    lines_of = _Lines(str(history.meta.get("isolation", "")))
    attempts = history.iter_attempts()
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        f.write(_header_lines(history.meta, history.initial))
        done = 0
        while chunk := list(islice(attempts, 4096)):
            lines: list[str] = []
            lines_of.encode(lines, done + 1, chunk)
            f.write("".join(lines))
            done += len(chunk)


def temporary_path(owner: object) -> Path:
    """A fresh temporary file for a history, removed when `owner` is garbage-collected
    (or at exit)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix="txlab-history-", suffix=".jsonl")
    os.close(fd)
    weakref.finalize(owner, _remove, name)
    return Path(name)


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


# ---------------------------------------------------------------- reading


def _records(path: Path | str) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, json.loads(line)


def _attempt(rec: dict) -> Attempt:
    return Attempt(
        rec["worker"], rec["txn"], rec["attempt"], rec["invoke_ns"], rec["complete_ns"],
        rec["outcome"], rec["cause"], rec["sqlstate"], rec["error"],
        [tuple(op) for op in rec["ops"]],
    )


def iter_attempts(path: Path | str) -> Iterator[Attempt]:
    """The attempts of a history file, one at a time (constant memory)."""
    for _, rec in _records(path):
        if rec.get("type") == "txn":
            yield _attempt(rec)


def read(path: Path | str) -> History:
    meta: dict = {}
    initial: list = []
    attempts: list[Attempt] = []
    for n, rec in _records(path):
        kind = rec.get("type")
        if kind == "run":
            meta = {k: v for k, v in rec.items() if k not in ("type",)}
        elif kind == "init":
            initial = [tuple(op) for op in rec["ops"]]
        elif kind == "txn":
            attempts.append(_attempt(rec))
        else:
            raise ValueError(f"{path}:{n}: unknown record type {kind!r}")
    return History(meta, initial, attempts)
