"""The history: every attempt of every transaction, and its JSON-lines file format.

During a run the history is streamed to a file as it is recorded, not kept in
memory: workers append plain tuples to their own lists (no lock on the hot
path), and the runner's main thread hands them to a `Writer`, which puts them in
invoke order and writes them. The file format is a stable contract, documented
in docs/history-format.md.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import marshal
import operator
import os
import stat
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from txlab import owner, paths

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
    """`txn` lines of one history, exactly as json.dumps writes the record; the
    isolation is the same on every line, and most attempts commit with no cause,
    SQLSTATE or error (one f-string, the fastest way to build a line in Python)."""

    def __init__(self, isolation: str):
        self.isolation = _STRING(isolation)

    def encode(self, lines: list, first_id: int, attempts) -> None:
        """Append the lines of `attempts` (tuples in Attempt's field order, or `_Spool`'s
        (worker, txn, attempt, invoke_ns, complete_ns, tail of the line)), numbered
        from `first_id`, to `lines`."""
        iso, enc, text = self.isolation, _ENCODE, _text
        i = first_id
        for a in attempts:
            if len(a) == 6:  # encoded when it was spooled: all but its id, last
                lines.append(f"{_ID_PREFIX}{i}{a[5]}")
            else:
                w, txn, attempt, invoke, complete, outcome, cause, sqlstate, message, ops = a
                if outcome == COMMITTED and cause is None and sqlstate is None and message is None:
                    lines.append(
                        f'{_ID_PREFIX}{i}, "worker": {w}, "txn": {txn}, "attempt": {attempt}, '
                        f'"isolation": {iso}, "invoke_ns": {invoke}, "complete_ns": {complete}, '
                        f'"outcome": "committed", "cause": null, "sqlstate": null, '
                        f'"error": null, "ops": {enc(ops)}}}\n')
                else:
                    lines.append(
                        f'{_ID_PREFIX}{i}, "worker": {w}, "txn": {txn}, "attempt": {attempt}, '
                        f'"isolation": {iso}, "invoke_ns": {invoke}, "complete_ns": {complete}, '
                        f'"outcome": {text(outcome)}, "cause": {text(cause)}, '
                        f'"sqlstate": {text(sqlstate)}, "error": {text(message)}, '
                        f'"ops": {enc(ops)}}}\n')
            i += 1

    def tail(self, attempt: tuple) -> str:
        """The line of `attempt` after its id (`encode` puts `_ID_PREFIX` and the id first)."""
        lines: list[str] = []
        self.encode(lines, 0, (attempt,))
        return lines[0][len(_ID_PREFIX) + 1:]


_ID_PREFIX = '{"type": "txn", "id": '


# ---------------------------------------------------------------- writing


class _Spool:
    """Attempts in a compact binary file (marshal) as they are handed over, each
    block with the watermark of its hand-over (see Writer); `attempts()` gives them
    back in the history's order.

    Spooling an attempt costs a fifth of encoding its JSON line, so during the load
    the history reaches the disk at little cost to the workers (the main thread
    holds the GIL for less); the JSON lines are written from the spool when the
    load ends, in one tight loop. An attempt with a value that marshal cannot hold
    (a Decimal, a date, a namedtuple, ...) is spooled with the tail of its JSON
    line instead. marshal gives every other value back as it was, except that a
    bytes-like value (bytearray, memoryview) comes back as bytes: its text in the
    history is that of its bytes (b'...'), where json.dumps(default=str) would
    have written str() of the object itself ("<memory at 0x...>")."""

    BLOCK = 256  # attempts per marshal record: the GIL is yielded between two

    def __init__(self, path: Path, lines: _Lines):
        self.path = path
        self._lines = lines
        self._file = open(path, "wb", buffering=1 << 20)  # noqa: SIM115

    def put(self, watermark: int | None, block: list) -> None:
        """Spool one block of attempts (at most BLOCK) handed over at `watermark`."""
        try:
            data = marshal.dumps((watermark, block))
        except ValueError:  # a value marshal cannot hold: that attempt goes as JSON
            block = [a if _marshallable(a) else a[:5] + (self._lines.tail(a),) for a in block]
            data = marshal.dumps((watermark, block))
        try:
            self._file.write(len(data).to_bytes(4, "little"))
            self._file.write(data)
        except OSError as exc:  # a full disk: say which file
            raise _named(exc, self.path) from None

    def attempts(self) -> Iterator[list]:
        """The spooled attempts in invoke order, a list at a time (after `close`).

        Each block's attempts wait, sorted, until a watermark passes them; what
        waits is bounded as in the Writer. The cyclic garbage collector is paused
        meanwhile: the attempts hold no cycles, and it would scan every tuple of
        every block, tripling the time."""
        paused = gc.isenabled()
        gc.disable()
        try:
            pending: list = []
            with open(self.path, "rb", buffering=1 << 20) as f:
                while size := f.read(4):
                    watermark, block = marshal.loads(f.read(int.from_bytes(size, "little")))
                    pending += block
                    pending.sort(key=_ORDER)
                    end = (len(pending) if watermark is None
                           else bisect_left(pending, watermark, key=_INVOKE))
                    if end:
                        yield pending[:end]
                        del pending[:end]
            if pending:
                yield pending
        finally:
            if paused:
                gc.enable()

    def sync(self) -> None:
        """Hand what is buffered to the operating system (no fsync: a killed txlab's
        data is safe in the page cache; only a machine crash loses it)."""
        try:
            self._file.flush()
        except OSError as exc:
            raise _named(exc, self.path) from None

    def close(self) -> None:
        self._file.close()


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` with the file it is about (a failed write does not say)."""
    if exc.filename is None:
        exc.filename = str(path)
    return exc


def _marshallable(attempt: tuple) -> bool:
    try:
        marshal.dumps(attempt)
        return True
    except ValueError:
        return False


class Writer:
    """Streams a history to a file in invoke order while the run goes on.

    Workers finish attempts out of invoke order (a long transaction started
    before a short one ends after it), so an attempt may be written only once no
    worker can still produce an earlier one: `flush(watermark)` hands over the
    attempts added so far with `watermark`, the earliest invoke time any worker
    may still record, and those invoked before it are written in order. What
    waits is bounded by the longest attempt, not the run's length.

    The `run` and `init` lines are written at once; the attempts go to a spool
    (`_Spool`) as they are flushed, and `close()` writes their JSON lines from it.
    The spool lives in `spool_dir`, else in a temporary folder of its own that a
    later txlab removes if this one is killed (txlab.owner).
    """

    def __init__(self, path: Path | str, meta: dict, initial: list,
                 spool_dir: Path | None = None):
        self.path = Path(path)
        self._folder = None if spool_dir is not None else owner.Folder(SPOOL_PREFIX, owner.HISTORY)
        self._file = None
        self._spool: _Spool | None = None
        try:
            spool_dir = spool_dir if spool_dir is not None else self._folder.path
            self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115
            st = os.fstat(self._file.fileno())
            self._ident = (st.st_dev, st.st_ino)
            self._lines = _Lines(str(meta.get("isolation", "")))
            self._spool = _Spool(spool_dir / "attempts.spool", self._lines)
            header = self._header = _header_lines(meta, initial)
            self._header_bytes = len(header.encode("utf-8"))
            try:
                self._file.write(header)
                self._file.flush()
            except OSError as exc:  # a full disk: say which file
                raise _named(exc, self.path) from None
        except BaseException:
            self._give_up()
            raise
        self._pending: list = []
        self.count = 0  # attempts handed over (spooled, then written)
        self.gone = False  # the file was removed or replaced under the run

    def _ours(self) -> bool:
        """`path` still names the file this writer opened (not removed or replaced)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ident

    def _give_up(self) -> None:
        """The history could not even be started (a full disk): nothing is left of it,
        neither the spool nor a history file that is empty or holds a torn line (a
        device, /dev/null say, is left alone)."""
        for f in (self._spool, self._file):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()  # flushing what is buffered may fail again: dropped
        self._spool = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                if self.path.is_file():
                    self.path.unlink()
        self._remove_folder()

    def add(self, records: list) -> None:
        """Attempts recorded since the last call (tuples in `Attempt`'s field order)."""
        self._pending += records

    def flush(self, watermark: int | None = None) -> None:
        """Hand over the attempts added so far: those invoked before `watermark` (all
        of them, from here on, if None) can be written. An exception (Ctrl-C) in the
        middle leaves exactly the unspooled ones pending."""
        pending = self._pending
        if not pending or self._spool is None:
            return
        done = 0
        try:
            while done < len(pending):
                block = pending[done:done + _Spool.BLOCK]
                last = done + len(block) == len(pending)
                # The watermark holds once all of this hand-over is in: with its last block.
                self._spool.put(watermark if last else _NOT_YET, block)
                self.count += len(block)
                done += len(block)
                time.sleep(0)  # the GIL to any worker that wants it
        finally:
            del pending[:done]
            self._spool.sync()  # on disk now, not when a buffer fills (one write a tick)

    def close(self) -> None:
        """Hand over what is pending, write every attempt's JSON line, close the file
        and remove the spool. Takes about 3 us per attempt."""
        if self._spool is None:
            return
        try:
            self.flush()
            self._spool.close()
            written = 0
            try:
                if not self._ours():  # `rm` of it or its folder during the run
                    self.gone = True
                    raise OSError(errno.ENOENT, "the file was removed or replaced during the "
                                  "run, so the attempts written to it are lost", str(self.path))
                out, tmp = self._final_file()
                try:
                    if tmp is not None:
                        out.write(self._header)
                    for attempts in self._spool.attempts():
                        lines: list[str] = []
                        self._lines.encode(lines, written + 1, attempts)
                        out.write("".join(lines))
                        written += len(attempts)
                    if tmp is not None:
                        out.flush()
                        os.fsync(out.fileno())  # whole on disk before it takes the name
                        out.close()
                        os.replace(tmp, os.path.realpath(self.path))
                except BaseException:
                    if tmp is not None:
                        with contextlib.suppress(OSError):
                            out.close()
                        with contextlib.suppress(OSError):
                            os.unlink(tmp)
                    raise
                self._spool = None
                self._file.close()
            except OSError as exc:
                exc.filename, exc.filename2 = str(self.path), None  # never the temporary file
                raise exc from None
        finally:
            with contextlib.suppress(OSError):
                self._file.close()  # after a failed write: the runner abandons the file
            self._remove_folder()

    def _final_file(self):
        """Where the JSON lines go, and the temporary file's path if they go to one: a
        new file beside the history, with the `run` and `init` records again, that takes
        its place once whole (os.replace), so that a txlab killed while writing them
        leaves the history as it was, those two records only. In place (path None) where
        no such file can be: a device or FIFO (with --no-check), a folder that takes no
        new file (a writable file in a read-only folder)."""
        try:
            st = os.stat(self.path)  # through links: the link stays, its target is replaced
        except OSError:
            return self._file, None
        if not stat.S_ISREG(st.st_mode):
            return self._file, None
        try:
            fd, tmp = paths.open_beside(self.path, st)
        except OSError as exc:
            if exc.errno in paths.NO_NEW_FILE:
                return self._file, None
            raise
        try:
            return os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20), tmp
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def abandon(self) -> None:
        """Writing failed (a full disk, an I/O error): give up. The file keeps its `run`
        and `init` records only, as when txlab is killed (never a torn line, never
        some attempts without the rest); the spool is removed. count becomes 0."""
        self._pending = []
        self.count = 0
        ours = self._ours()  # never cut short a file that took this one's name
        for f in (self._spool, self._file):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()  # flushing what is buffered may fail again: dropped
        self._spool = None
        if ours:
            with contextlib.suppress(OSError):
                os.truncate(self.path, self._header_bytes)
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self._folder is not None:
            self._folder.remove()
            self._folder = None


_NOT_YET = -1  # a spooled block's watermark when more of the same hand-over follows
SPOOL_PREFIX = "txlab-history-"  # temporary folders of histories and spools


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


def temporary_folder(owner_object: object) -> Path:
    """A fresh temporary folder for a history (and its spool), removed when
    `owner_object` is garbage-collected (or at exit); if this process is killed, a
    later txlab removes it (txlab.owner)."""
    folder = owner.Folder(SPOOL_PREFIX, owner.HISTORY)
    weakref.finalize(owner_object, folder.remove)
    return folder.path


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
