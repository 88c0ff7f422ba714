"""Run a scenario: set up, start the workers, stop, check invariants.

Each worker owns its connection, its RNG, its counters (`stats.Tally`) and its
list of recorded attempts; nothing is shared on the hot path except a ticket
counter when --transactions is given. The workers run as greenlets on one
thread (txlab.green: about a quarter less client CPU per transaction than a
thread each), or, when another library owns psycopg2's wait callback or
TXLAB_WORKER_THREADS is set, as a thread each; the code of a worker is the same
either way. The main thread watches the clock, prints progress, and streams the
attempts to the history file in invoke order (`history.Writer`), so memory stays
flat however long the run.

Faults: a lost connection (backend terminated, server crashed or restarted) is
recorded (`unknown` when it happened during COMMIT) and the worker reconnects
with backoff for up to `reconnect_timeout_s`; if the server stays away, the run
stops and `ServerLost` carries the partial result. Ctrl-C (KeyboardInterrupt in
the main thread) at any point after the load started keeps what was gathered:
the result is returned marked interrupted.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import psycopg2

from txlab import checker, db, green, history, hubwatch, memory, signals, stats
from txlab.checker import segments
from txlab.errors import (
    CONNECTION_LOST,
    RETRYABLE,
    Abort,
    DatabaseError,
    Declined,
    UsageError,
    classify,
)
from txlab.history import ABORTED, COMMITTED, DECLINED, UNKNOWN, History
from txlab.rng import TxRandom
from txlab.scenario import Check, Scenario, Setup, Verdict, is_path
from txlab.settings import RunSettings
from txlab.tx import JOIN, Interrupted, Tx


@dataclass(frozen=True)
class Snapshot:
    """What the progress line shows; taken by the main thread a few times a second."""

    elapsed_s: float
    committed: int
    declined: int
    aborted: dict  # cause key -> aborted attempts so far
    unknown: int
    finished: int  # transactions done with, whatever their outcome
    eta_s: float | None  # seconds left, with --duration or --transactions; None if unknown
    reconnecting: int  # workers waiting for the server to come back

    @property
    def aborted_total(self) -> int:
        return sum(self.aborted.values())


Progress = Callable[[Snapshot], None]


@dataclass(frozen=True)
class InvariantResult:
    name: str
    holds: bool
    expected: object
    actual: object
    detail: str = ""
    story: str = ""  # the scenario's words for a violation (Verdict.story)


@dataclass
class RunResult:
    scenario: str
    strategy: str
    isolation: db.Isolation
    workers: int
    seed: int
    duration_s: float
    server: str
    interrupted: bool
    outcomes: stats.Outcomes
    throughput_tps: float
    latency_ms: dict
    invariants: list[InvariantResult]
    check: checker.Result | None  # None with --no-check, or when the check could not finish
    params: dict
    think_ms: float
    retries: int
    # meta, initial and the attempts (in the history file; iterate with
    # history.iter_attempts(), or load them all with history.attempts)
    history: History = field(repr=False)
    # What the scenario declares (for the report's story and suggestions): how to
    # name it in a command, its strategies (name, help, safe_at, risk) in order,
    # and its knobs' defaults.
    declared: dict = field(default_factory=dict)
    # What a command repeating the run must say besides the above (report `rerun`):
    # how the scenario was reached, the run's length, the options that shaped it,
    # where it ran (never the DSN). txlab.story builds the suggested commands from it.
    rerun: dict = field(default_factory=dict)
    failure: str | None = None  # why the run stopped early, other than Ctrl-C (server lost)
    schema_taken: bool = False  # the failure: another txlab took the schema mid-run
    checks_unreachable: bool = False  # the invariant checks could not reach the server
    load_whole: bool = True  # the load ran to its end (an interrupt, if any, came after it)
    history_error: str | None = None  # the history could not be written: the load stopped
    invariants_unchecked: list[str] = field(default_factory=list)  # interrupted or server lost
    check_skipped: str | None = None  # why the anomaly check did not run although asked for

    @property
    def violated(self) -> bool:
        """An invariant was violated."""
        return any(not i.holds for i in self.invariants)

    @property
    def forbidden(self) -> list[str]:
        """Anomaly classes found that the run's isolation level forbids."""
        return self.check.forbidden if self.check else []

    @property
    def failed_verdict(self) -> bool:
        """What exit code 1 means: a violated invariant or a forbidden anomaly."""
        return self.violated or bool(self.forbidden)


class ScenarioBug(UsageError):
    """The scenario's own Python code raised: name the file and line."""


class RunFailed(DatabaseError):
    """The run stopped early for a reason other than Ctrl-C; `result` is the partial run."""

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result


class ServerLost(RunFailed):
    """The server went away and did not come back in time (the history is complete up
    to the loss)."""


class HistoryFailed(RunFailed):
    """The history could not be written (a full disk): the load was stopped, the history
    file keeps its `run` and `init` records only, the anomaly check did not run."""


class SetupLost(DatabaseError):
    """The connection to the server died before the load started (a server restarted
    during the setup): no transaction ran, nothing to report."""


class _Lost(Exception):
    """Internal: the connection died under a query the main thread ran."""


class _Swallowed(Exception):
    """Internal: COMMIT answered ROLLBACK (the body caught an error and went on)."""


def _bug(scenario: Scenario, what: str, exc: BaseException) -> ScenarioBug:
    """The error, at the line of the scenario's file that raised it (the deepest one:
    a helper the strategy calls in that file is named, not the strategy's call)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = os.path.realpath(scenario.path) if scenario.path else None
    here = next((f for f in reversed(frames) if mine and os.path.realpath(f.filename) == mine),
                None)  # realpath: the file as given (relative) and as loaded (absolute)
    where = f"{scenario.path}:{here.lineno}" if here else str(scenario.path or scenario.name)
    return ScenarioBug(f"{where}: {what} raised {type(exc).__name__}: {exc}")


def _gone(conn, exc: psycopg2.Error) -> bool:
    """The error means the connection is dead (no server answer, or a FATAL 57P0x)."""
    code = exc.pgcode
    return code is None or bool(conn.closed) or code.startswith(("57P", "08"))


def _dead(conn, exc: psycopg2.Error) -> bool:
    """Stricter than _gone, for the setup, where the scenario's own mistakes (a fetch
    with no result: no SQLSTATE) must stay its own: the connection is closed, or the
    server ended it."""
    return bool(conn.closed) or (isinstance(exc, psycopg2.OperationalError) and (
        exc.pgcode is None or exc.pgcode.startswith(("57P", "08"))))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------- setup and checks


def _setup(conn, scenario: Scenario, settings: RunSettings, params: dict) -> list:
    db.reset_schema(conn, settings.schema)
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"SET LOCAL search_path = {settings.schema}")
        s = Setup(cur, params, Random(f"txlab:{settings.seed}:setup"))
        try:
            scenario.setup(s)
            cur.execute("COMMIT")
        except psycopg2.Error as exc:
            if _dead(conn, exc):  # the server went away: not the scenario's fault
                raise _setup_lost(exc) from None
            cur.execute("ROLLBACK")
            msg = db.first_line(exc)
            raise UsageError(f"{scenario.path or scenario.name}: setup failed: {msg}") from None
        except Exception as exc:
            with contextlib.suppress(psycopg2.Error):
                cur.execute("ROLLBACK")
            raise _bug(scenario, "setup", exc) from None
    return s.initial_writes


def _setup_lost(exc: BaseException) -> SetupLost:
    return SetupLost(f"lost the connection to the server during the setup: {_first_line(exc)}")


def _check(conn, scenario: Scenario, settings: RunSettings, params: dict,
           results: list[InvariantResult]) -> None:
    """Check the invariants in turn, appending to `results` (kept if interrupted: the
    caller runs this through db.cancellable, which cancels the running check)."""
    with conn.cursor() as cur:
        try:
            cur.execute(f"SET search_path = {settings.schema}")
        except psycopg2.Error as exc:
            if _gone(conn, exc):
                raise _Lost(db.first_line(exc)) from None
            raise
        checked = {r.name for r in results}  # a retry after a restart: the rest only
        for inv in scenario.invariants:
            if inv.name in checked:
                continue
            try:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                v: Verdict = inv.check(Check(cur, params))
            except psycopg2.Error as exc:
                if _gone(conn, exc):
                    raise _Lost(db.first_line(exc)) from None
                cur.execute("ROLLBACK")
                raise UsageError(
                    f"{scenario.path or scenario.name}: invariant {inv.name!r} failed to run: "
                    f"{db.first_line(exc)}"
                ) from None
            except Exception as exc:
                cur.execute("ROLLBACK")
                raise _bug(scenario, f"invariant {inv.name!r}", exc) from None
            cur.execute("COMMIT")
            results.append(InvariantResult(inv.name, bool(v.holds), v.expected, v.actual, v.detail,
                                           v.story))


def _reach(dsn: str, name: str, options: dict, timeout_s: float,
           stop: threading.Event | Callable[[], bool] | None = None,
           tick: Callable[[], None] | None = None):
    """Connect, retrying with backoff (0.05 s doubling to 1 s) for up to `timeout_s`.

    Returns the connection; None if `stop` (an Event, or a function polled every
    0.1 s) said stop meanwhile; raises DatabaseError (the last refusal) when the
    time is up. `tick` is called before every try.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        if tick is not None:
            tick()
        try:
            return db.connect(dsn, name, **options)
        except DatabaseError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
        if _pause(min(delay, left), stop):
            return None
        delay = min(delay * 2, 1.0)


def wait_for_server(dsn: str, timeout_s: float, stop: Callable[[], bool] | None = None) -> bool:
    """Wait up to `timeout_s` for the server at `dsn` to take connections (a restart):
    True once it does, False if `stop` said stop meanwhile; DatabaseError (its last
    refusal) when the time is up."""
    conn = _reach(dsn, "txlab-control", {}, timeout_s, stop)
    if conn is None:
        return False
    conn.close()
    return True


def _pause(seconds: float, stop: threading.Event | Callable[[], bool] | None) -> bool:
    """Wait `seconds`; True (at once) if `stop` says stop meanwhile. `stop` is an Event
    (or anything with its wait(seconds) -> stopped), or a function polled."""
    if hasattr(stop, "wait"):
        return stop.wait(seconds)
    end = time.monotonic() + seconds
    while True:
        if stop is not None and stop():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, TICK_S))


# ---------------------------------------------------------------- workers

_NEVER = 1 << 63  # a finished worker records nothing more


class _Run:
    def __init__(self, settings: RunSettings, scenario: Scenario, dsn: str, params: dict,
                 record: bool, lock: db.SchemaLock | None = None):
        self.settings = settings
        self.scenario = scenario
        self.strategy = scenario.strategy(settings.strategy)
        self.dsn = dsn
        self.params = params
        n = settings.workers
        self.record = record
        # Attempts recorded and not yet taken by the main thread (tuples in Attempt's order).
        self.records: list[list[tuple]] = [[] for _ in range(n)]
        # inflight[w]: no attempt worker w records from now on was invoked before this.
        self.inflight = [0] * n
        self.tallies = [stats.Tally() for _ in range(n)]
        self.conns: list = [None] * n
        # stop: no new transactions; halt: interrupted, abandon in-flight ones. The
        # booleans say the same as the events, for the hot path (Event.is_set is a call).
        self.stop = threading.Event()
        self.halt = threading.Event()
        self.stopping = self.halting = False
        self.tickets = itertools.count() if settings.transactions else None
        # Start and end, on Events (an interrupted Thread.join can mark a running thread
        # as stopped): `ready` when every worker is connected (or one failed), `go`
        # when they may start, `done` when the last one has finished.
        self._waiting = {"ready": n, "done": n}  # workers yet to reach each
        self._count_lock = threading.Lock()
        self.ready = threading.Event()
        self.go = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None  # a scenario bug: stop, raise it
        self.lost: str | None = None  # the server did not come back in time
        self.history_error: str | None = None  # the history could not be written
        self.reconnecting = 0
        # The schema's lock (db.SchemaLock), kept by the main thread (keep_lock).
        self.lock = lock
        self.lock_asked = self.lock_seen = 0  # reconnections / those the lock was seen after
        self._lock_retry_at = 0.0
        self.schema_taken: str | None = None  # another txlab took the schema: why
        self.begin_sql = f"BEGIN ISOLATION LEVEL {settings.isolation.sql}"
        # The workers run as greenlets on one thread (txlab.green), unless another
        # library has psycopg2's wait callback: then a thread each.
        self.hub = green.Hub() if green.available() else None
        if self.hub is not None:
            self.hub.cut_short = lambda: self.halting  # a scenario's time.sleep, on Ctrl-C
        options = {"search_path": settings.schema,
                   "statement_timeout": str(settings.statement_timeout_ms),
                   "lock_timeout": str(settings.lock_timeout_ms)}
        if settings.deadlock_timeout_ms is not None:
            options["deadlock_timeout"] = str(settings.deadlock_timeout_ms)
        self.options = options

    def connect(self, w: int):
        conn = db.connect(self.dsn, f"txlab-worker-{w}", **self.options)
        self.conns[w] = conn
        return conn

    def worker(self, w: int) -> None:
        conn = None
        try:
            try:
                conn = self.connect(w)
            except BaseException as exc:
                self.error = exc
                self.stop_all()
                self.ready.set()
                return
            self._count("ready")
            if self.hub is None:
                self.go.wait()
            else:
                self.hub.sleep(1e9, until=self.go.is_set)
            if self.stopping:
                return
            self._loop(w, conn)
        except BaseException as exc:  # a scenario bug: stop everything
            if self.error is None:
                self.error = exc
            self.stop_all(halt=True)
        finally:
            self.inflight[w] = _NEVER
            conn = self.conns[w]
            if conn is not None and not conn.closed:
                conn.close()
            self._count("done")

    def _count(self, name: str) -> None:
        """One worker more is `name` (ready, done); the last one sets that Event."""
        with self._count_lock:
            self._waiting[name] -= 1
            if self._waiting[name] == 0:
                getattr(self, name).set()

    def _loop(self, w: int, conn) -> None:
        """Transactions until told to stop.

        The hot path: every line here runs for every transaction of every worker, so
        it keeps to local variables and plain attributes, makes no call it can
        avoid, and leaves everything unusual (errors, declines, retries) to
        `_failed` and the branches below the commit."""
        s = self.settings
        draw = Random(f"txlab:{s.seed}:worker:{w}").getrandbits
        append = self.records[w].append if self.record else None
        inflight = self.inflight
        tally = self.tallies[w]
        aborted, reasons = tally.aborted, tally.declined_reasons
        latency = tally.latency
        buckets = latency.counts
        body, tickets, limit = self.strategy.run, self.tickets, s.transactions
        tries = s.retries + 1
        clock = time.monotonic_ns
        cur = conn.cursor()
        # One Tx (and one generator) per worker, reset for each attempt.
        halt = self.halt if self.hub is None else self.hub.pauser(lambda: self.halting)
        tx = Tx(cur, self.begin_sql, TxRandom(), self.params, s.think_ms / 1000.0, halt)
        restart = tx._restart
        failed = self._failed
        txn = 0
        while not self.stopping:
            if tickets is not None and next(tickets) >= limit:
                break
            txn += 1
            seed = draw(64)
            attempt = 0
            while True:
                restart(seed)
                invoke = inflight[w] = clock()
                if not attempt:
                    first = invoke
                committing = False
                try:
                    body(tx)
                    if tx.begun:  # the body ran SQL: commit it (tx.end_sql, written out)
                        if self.halting:
                            raise Interrupted
                        committing = tx.sent = True
                        later = tx._head  # deferred statements travel with the COMMIT
                        cur.execute("COMMIT" if later is None else later + JOIN + "COMMIT")
                        if cur.statusmessage != "COMMIT":
                            raise _Swallowed
                except Exception as exc:
                    outcome, cause, code, msg = failed(exc, conn, cur, tx, committing)
                else:
                    complete = clock()
                    if append is not None:
                        append((w, txn, attempt, invoke, complete, COMMITTED, None, None, None,
                                tx.ops))
                    if attempt:
                        tally.retries += 1
                    tally.committed += 1
                    # tally.latency.record(complete - first), written out: Histogram.record
                    v = complete - first
                    b = v.bit_length()
                    i = ((b - 8) << 7) + (v >> (b - 8)) if b > 8 else v
                    buckets[i] = buckets.get(i, 0) + 1
                    if v > latency.max:
                        latency.max = v
                    outcome = COMMITTED
                    break
                complete = clock()
                if append is not None:
                    append((w, txn, attempt, invoke, complete, outcome, cause, code, msg, tx.ops))
                if attempt:
                    tally.retries += 1
                if outcome is DECLINED:
                    tally.declined += 1
                    key = cause or "declined"
                    reasons[key] = reasons.get(key, 0) + 1
                    break
                if outcome is UNKNOWN:
                    tally.unknown += 1
                    break
                key = cause or "other"
                aborted[key] = aborted.get(key, 0) + 1
                attempt += 1
                if attempt == tries or cause not in RETRYABLE or self.halting:
                    if cause == stats.INTERRUPTED_CAUSE:
                        tally.interrupted += 1
                    else:
                        tally.failed += 1
                    break
            if outcome is not COMMITTED and (cause == CONNECTION_LOST or conn.closed):
                conn = self._reconnect(w)
                if conn is None:
                    break
                cur = tx._cur = conn.cursor()

    def _failed(self, exc: Exception, conn, cur, tx: Tx, committing: bool) -> tuple:
        """(outcome, cause, sqlstate, message) of an attempt that raised `exc`; the
        transaction is rolled back if anything of it reached the server."""
        if isinstance(exc, psycopg2.Error):
            code = exc.pgcode
            msg = db.first_line(exc)
            if _gone(conn, exc):
                # No answer to COMMIT: it may or may not have taken effect.
                return (UNKNOWN if committing else ABORTED), CONNECTION_LOST, code, msg
            self._rollback(conn, cur, tx)
            if self.halting and code == "57014":
                return ABORTED, stats.INTERRUPTED_CAUSE, code, "run interrupted"
            return ABORTED, classify(code, msg), code, msg
        if isinstance(exc, _Swallowed):  # the transaction is over: nothing to roll back
            return ABORTED, "25P02", "25P02", "COMMIT answered ROLLBACK"
        self._rollback(conn, cur, tx)
        if isinstance(exc, Declined):
            return DECLINED, exc.reason, None, None
        if isinstance(exc, Abort):
            return ABORTED, exc.cause, None, exc.message
        if isinstance(exc, Interrupted):
            return ABORTED, stats.INTERRUPTED_CAUSE, None, "run interrupted"
        raise _bug(self.scenario, f"strategy {self.strategy.name!r}", exc) from exc

    @staticmethod
    def _rollback(conn, cur, tx: Tx) -> None:
        if tx.sent and not conn.closed:
            try:
                cur.execute("ROLLBACK")
            except psycopg2.Error:
                conn.close()

    def _reconnect(self, w: int):
        """A new connection for worker w, or None: the run is stopping, or the server
        stayed away for reconnect_timeout_s (then `lost` says so and the run stops)."""
        old = self.conns[w]
        if old is not None and not old.closed:
            old.close()
        self.conns[w] = None

        def tick() -> None:  # its next attempt starts after now: the history need not wait
            self.inflight[w] = time.monotonic_ns()

        self.reconnecting += 1  # a counter only the progress line reads: races are harmless
        try:
            stop = self.stop if self.hub is None else self.hub.pauser(lambda: self.stopping)
            conn = _reach(self.dsn, f"txlab-worker-{w}", self.options,
                          self.settings.reconnect_timeout_s, stop, tick)
        except DatabaseError as exc:
            if self.lost is None and not self.halting:
                self.lost = (f"lost the connection to the server and could not reconnect "
                             f"within {self.settings.reconnect_timeout_s:g} s: {_first_line(exc)}")
            self.stop_all()
            return None
        finally:
            self.reconnecting -= 1
        if conn is not None and self.lock is not None:
            # The server restarted, or this backend was terminated: the schema lock's
            # connection may have died too. Go on only once the main thread has seen
            # the lock held again (keep_lock), so that this worker never writes to a
            # schema another txlab took meanwhile.
            self.lock_asked += 1
            asked = self.lock_asked
            while self.lock_seen < asked and not self.stopping:
                stop.wait(LOCK_WAIT_S)
            if self.schema_taken is not None:
                conn.close()
                return None
        if conn is not None:
            self.conns[w] = conn
        return conn

    def keep_lock(self, now: float, until: float | None = None) -> None:
        """The main thread's part: the schema lock is still held (its connection lives),
        else it is taken again on a new connection; when another txlab got the schema
        meanwhile, `schema_taken` says so and the run stops at once. Workers that
        reconnected wait for this (lock_asked/lock_seen). `until`: after the load, try
        until the server is back, up to this monotonic deadline (which the caller's
        other waits share); else one look."""
        lock = self.lock
        if lock is None or self.schema_taken is not None:
            return
        wait = until is not None
        deadline = until if wait else now
        while True:
            asked = self.lock_asked
            if lock.intact(probe=asked > self.lock_seen or wait):
                self.lock_seen = asked
                return
            if time.monotonic() >= self._lock_retry_at:
                self._lock_retry_at = time.monotonic() + LOCK_RETRY_S
                try:
                    lock.retake()
                except db.SchemaBusy as exc:
                    self.schema_taken = (
                        f"this run's hold on schema {lock.schema!r} was lost (its connection "
                        f"died) and another txlab took the schema meanwhile: {exc}; the run "
                        "was stopped, and its checks skipped")
                    self.stop_all(halt=True)
                    return
                except (psycopg2.Error, DatabaseError):
                    pass  # the server is not back yet; the workers wait for it too
                else:
                    self.lock_seen = asked
                    return
            if time.monotonic() >= deadline:
                return
            time.sleep(LOCK_WAIT_S)

    def stop_all(self, halt: bool = False) -> None:
        """No new transactions; with `halt`, abandon the in-flight ones too."""
        if halt:
            self.halting = True
            self.halt.set()
        self.stopping = True
        self.stop.set()
        if self.hub is not None:
            self.hub.wake()  # sleepers (think, back-off, waiting to start) look again

    def start(self) -> None:
        """The workers may begin (all connected, or the run is stopping)."""
        self.go.set()
        if self.hub is not None:
            self.hub.wake()

    def launch(self) -> None:
        """Start the workers: one thread running them all as greenlets, else a thread each."""
        n = self.settings.workers
        if self.hub is None:
            for w in range(n):
                threading.Thread(target=self.worker, args=(w,), name=f"txlab-worker-{w}",
                                 daemon=True).start()
            return
        jobs = [(self.worker, (w,)) for w in range(n)]
        threading.Thread(target=self._run_hub, args=(jobs,), name="txlab-workers",
                         daemon=True).start()

    def _run_hub(self, jobs: list) -> None:
        """The hub's thread. Should the hub itself fail (the workers catch their own
        errors), the run stops with that error instead of waiting for workers that
        will never be resumed."""
        try:
            self.hub.run(jobs)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self.stop_all(halt=True)
            self.ready.set()
            self.done.set()

    def interrupt(self) -> None:
        self.stop_all(halt=True)
        for conn in self.conns:
            if conn is not None and not conn.closed:
                try:
                    conn.cancel()
                except psycopg2.Error:
                    pass

    # ---------------------------------------------------------------- main thread

    def drain(self, writer: history.Writer | None, final: bool = False) -> None:
        """Hand the workers' new attempts to the writer; write those no worker can
        still precede (all of them when `final`)."""
        if writer is None:
            return
        if self.history_error is not None:  # nowhere to write them: dropped
            for records in self.records:
                records.clear()
            return
        watermark = None if final else min(self.inflight)  # read before taking the records
        try:
            for records in self.records:
                n = len(records)
                if n:
                    writer.add(records[:n])
                    del records[:n]  # in place: the worker appends to this same list
            writer.flush(watermark)
        except OSError as exc:
            self.history_failed(writer, exc)

    def history_failed(self, writer: history.Writer, exc: OSError) -> None:
        """Writing the history failed (a full disk): stop the load, keep the report."""
        if self.history_error is None:
            where = exc.filename or writer.path
            cut = "" if self.done.is_set() else (
                "; the load was stopped there, so the numbers cover only the part that ran")
            kept = ("; the history file keeps only its run and init records"
                    if self.settings.history_path and not writer.gone else "")
            self.history_error = (f"the history could not be written ({where}):"
                                  f" {exc.strerror or exc}{cut}{kept}")
        writer.abandon()
        self.stop_all()

    def snapshot(self, elapsed: float, deadline: float | None, now: float) -> Snapshot:
        committed = declined = unknown = finished = 0
        aborted: dict[str, int] = {}
        for t in self.tallies:
            committed += t.committed
            declined += t.declined
            unknown += t.unknown
            finished += t.finished
            for cause, n in dict(t.aborted).items():  # dict(): one atomic copy
                aborted[cause] = aborted.get(cause, 0) + n
        eta = None
        if deadline is not None:
            eta = max(0.0, deadline - now)
        elif self.settings.transactions and finished and elapsed > 0:
            eta = max(0, self.settings.transactions - finished) * elapsed / finished
        return Snapshot(elapsed, committed, declined, aborted, unknown, finished, eta,
                        max(0, self.reconnecting))


def run(
    settings: RunSettings, scenario: Scenario, dsn: str, progress: Progress | None = None,
    interrupts: signals.Interrupts | None = None, notice: Callable[[str], None] | None = None,
    command: str = "run",
) -> RunResult:
    """Run `scenario` as `settings` say against `dsn`; returns everything the report needs.

    The run owns its schema from setup to the final checks: a second txlab on it
    is refused (db.own_schema), told that `command` (run, matrix, testing.run)
    holds it. The history streams to settings.history_path, or
    to a temporary file (removed with the result) when only the anomaly check or
    keep_history needs it.

    Interrupts (Ctrl-C, SIGTERM, SIGHUP) are only noted while the run goes on
    (signals.deferred: pass the caller's `interrupts` to keep them so beyond the
    run, e.g. while its report is printed). One during setup cancels the running
    statement and raises KeyboardInterrupt; one at any later point stops the
    workers (in-flight transactions roll back), finishes the history, skips what is
    left of the checks, and returns a partial result marked interrupted. A server
    that stays away longer than settings.reconnect_timeout_s raises ServerLost with
    the partial result.
    """
    if interrupts is None:
        with signals.deferred() as interrupts:
            return run(settings, scenario, dsn, progress, interrupts, notice, command)
    with db.schema_owner(dsn, settings.schema, command) as lock:
        return _run(settings, scenario, dsn, progress, interrupts, notice, lock)


def _run(settings: RunSettings, scenario: Scenario, dsn: str, progress: Progress | None,
         interrupts: signals.Interrupts, notice: Callable[[str], None] | None,
         lock: db.SchemaLock | None = None) -> RunResult:
    params = scenario.params(dict(settings.params), allow_large=settings.allow_large_params)
    strategy = scenario.strategy(settings.strategy)
    record = bool(settings.history_path) or settings.check or settings.keep_history
    meta: dict = {
        "scenario": scenario.name, "strategy": strategy.name,
        "isolation": settings.isolation.sql, "workers": settings.workers,
        "seed": settings.seed, "params": params,
    }
    hist = History(meta)
    path = Path(settings.history_path) if settings.history_path else None
    spool_dir = None
    if path is None and record:  # the history and its spool, removed with the result
        spool_dir = history.temporary_folder(hist)
        path = spool_dir / "history.jsonl"
    hist.path = path
    writer: history.Writer | None = None
    r: _Run | None = None
    control = db.connect(dsn, "txlab-control")
    try:
        try:
            server = db.server_version(control)
            if interrupts:
                raise KeyboardInterrupt  # before the setup: nothing to report
            initial = db.cancellable(control, _setup, control, scenario, settings, params,
                                     stop=lambda: bool(interrupts))
        except psycopg2.Error as exc:
            if _dead(control, exc):
                raise _setup_lost(exc) from None
            raise
        # From here on an interrupt never raises: whatever it cuts short, a result comes back.
        meta.update(server=server, think_ms=settings.think_ms, retries=settings.retries)
        hist.initial = initial
        unwritten = None
        if path is not None:
            try:
                writer = history.Writer(path, meta, initial, spool_dir)
            except OSError as exc:  # a full disk: as when the history fails during the load
                left = "" if path.exists() or settings.history_path is None else (
                    " (and no history file was left)")
                unwritten = (f"the history could not be written ({exc.filename or path}): "
                             f"{exc.strerror or exc}; so no transaction was run{left}")
        r = _Run(settings, scenario, dsn, params, record=writer is not None, lock=lock)
        if unwritten is None:
            elapsed = _load(r, settings, writer, progress, interrupts, notice)
        else:  # the invariants are checked and the report printed all the same
            r.history_error, elapsed = unwritten, 0.0
        if r.error is not None:
            raise r.error
        r.drain(writer, final=True)
        failure = r.lost
        invariants: list[InvariantResult] = []
        seen = interrupts.count
        load_whole = not seen  # an interrupt from here on cuts the checks, not the load
        unreachable = False  # the invariant checks found no server (then said in the notes)
        # The final state is this run's own only while it still owns the schema. One
        # reconnect timeout for all the waits after the load (the lock, the control
        # connection, a restart during the checks), not one each.
        until = time.monotonic() + settings.reconnect_timeout_s
        r.keep_lock(time.monotonic(), until if not failure and not interrupts else None)
        taken = r.schema_taken
        if taken is not None:
            failure = taken
        while taken is None:  # else nothing of the final state is this run's to judge
            try:
                # After a lost server or Ctrl-C, one try; else wait for a restarting server.
                wait = 0.0 if failure or interrupts else max(0.0, until - time.monotonic())
                control = _usable(control, dsn, wait, lambda: interrupts.count > seen)
                db.cancellable(control, _check, control, scenario, settings, params,
                               invariants, stop=lambda: interrupts.count > seen)
            except KeyboardInterrupt:
                pass  # counted in interrupts
            except (_Lost, DatabaseError) as exc:
                if (failure is None and not interrupts and time.monotonic() < until
                        and isinstance(exc, _Lost)):
                    # The server restarted (or the check's backend was ended) during the
                    # checks: back on the lock, then the invariants not checked yet.
                    r.keep_lock(time.monotonic(), until)
                    taken = r.schema_taken
                    if taken is not None:
                        failure = taken
                    continue
                unreachable = True
                if failure is None and not interrupts:
                    failure = f"the server could not be reached for the invariant checks: {exc}"
            break
        done = {i.name for i in invariants}
        unchecked = [i.name for i in scenario.invariants if i.name not in done]
    finally:
        if writer is not None:
            try:
                writer.close()  # the history's JSON lines: complete whatever happened
            except OSError as exc:
                if r is None:
                    raise
                r.history_failed(writer, exc)
        if not control.closed:
            control.close()
    history_error = r.history_error
    hist.count = writer.count if writer else 0

    out, latency = stats.merge(r.tallies)
    check = None
    check_skipped = None
    if settings.check and path is not None:
        if history_error is not None:
            check_skipped = "the history could not be written"
        elif taken is not None:
            check_skipped = "another txlab took the schema during the run"
        elif interrupts.count > seen and unchecked:  # Ctrl-C stopped the checks
            check_skipped = "interrupted"
        else:
            # In parts, so a long run's memory stays flat through its check too; a history
            # that cannot be cut is checked whole, unless the machine cannot hold that (a
            # check it cannot hold would be killed with the report).
            short = memory.shortfall(path)
            seen = interrupts.count
            try:
                with interrupts.raising(since=seen):  # the checker cannot poll: it is stopped
                    check = checker.check(str(path), segment=segments.SEGMENT,
                                          whole=short is None)
            except KeyboardInterrupt:
                check = None
                check_skipped = "interrupted"
            except checker.NotInParts:
                check_skipped = short
    interrupted = bool(interrupts)
    result = RunResult(
        scenario=scenario.name, strategy=strategy.name, isolation=settings.isolation,
        workers=settings.workers, seed=settings.seed, duration_s=elapsed, server=server,
        interrupted=interrupted, outcomes=out,
        throughput_tps=out.committed / elapsed if elapsed > 0 else 0.0,
        latency_ms=latency.percentiles_ms(),
        invariants=invariants, check=check, params=params,
        think_ms=settings.think_ms, retries=settings.retries, history=hist,
        failure=failure, schema_taken=taken is not None, checks_unreachable=unreachable,
        load_whole=load_whole,
        invariants_unchecked=unchecked, check_skipped=check_skipped,
        declared=declared(scenario, settings.scenario), history_error=history_error,
        rerun=rerun(settings),
    )
    if failure is not None and not interrupted:
        raise ServerLost(failure, result)
    if history_error is not None and not interrupted:
        raise HistoryFailed(history_error, result)
    return result


LOCK_WAIT_S = 0.02  # a reconnected worker looks this often whether the lock was seen held
LOCK_RETRY_S = 0.5  # how often the main thread tries to take a lost schema lock again
TICK_S = 0.1  # how often the main thread drains the workers' records and looks at the time
STOP_GRACE_S = 2.0  # after an interrupt, how long to wait for the workers' rollbacks


def _load(r: _Run, settings: RunSettings, writer, progress: Progress | None,
          interrupts: signals.Interrupts, notice: Callable[[str], None] | None) -> float:
    """Start the workers, watch them until they stop; returns the elapsed seconds.

    It waits on Events only (never Thread.join) and polls `interrupts`. `notice`
    hears of a worker that keeps the workers' thread for itself (txlab.hubwatch)."""
    try:
        return _watch(r, settings, writer, progress, interrupts, notice)
    except BaseException:
        # Whatever ended the watch (a bug, an error no one expected), the workers stop and
        # are given their grace before it goes on: a process must not end with them still
        # running (the interpreter's shutdown under a live worker thread can crash).
        r.stop_all()
        r.start()
        r.done.wait(STOP_GRACE_S)
        raise


def _watch(r: _Run, settings: RunSettings, writer, progress: Progress | None,
           interrupts: signals.Interrupts, notice: Callable[[str], None] | None) -> float:
    watch = hubwatch.Watch(r.hub, notice, _Run._loop.__code__) if r.hub and notice else None
    r.launch()
    while not r.ready.wait(TICK_S):  # every worker connected, or one could not
        if interrupts:
            r.stop_all()
    if r.error is not None:  # a worker could not connect
        r.stop_all()
        r.start()
        r.done.wait(STOP_GRACE_S)
        raise r.error
    started = time.monotonic()
    r.start()
    deadline = started + settings.duration_s if settings.duration_s else None
    halted_at = None
    while True:
        now = time.monotonic()
        if interrupts and halted_at is None:
            halted_at = now
            r.interrupt()
        if deadline and now >= deadline:
            r.stop_all()
        if r.error is not None:  # one worker failed: stop the others at once
            r.interrupt()
        r.drain(writer)
        r.keep_lock(now)
        if watch is not None:
            watch.look(now)
        if progress:
            progress(r.snapshot(now - started, deadline, now))
        if r.done.is_set() or (halted_at is not None and now - halted_at > STOP_GRACE_S):
            break
        wait = TICK_S
        if deadline and not r.stopping:
            wait = max(0.0, min(wait, deadline - now))
        r.done.wait(wait)
    return time.monotonic() - started


def _usable(control, dsn: str, timeout_s: float, stop: Callable[[], bool]):
    """The control connection, or a new one (waiting up to `timeout_s`, unless `stop`
    says so) if the server restarted under it."""
    if not control.closed:
        try:
            with control.cursor() as cur:
                cur.execute("SELECT 1")
            return control
        except psycopg2.Error:
            control.close()
    conn = _reach(dsn, "txlab-control", {}, timeout_s, stop)
    if conn is None:
        raise KeyboardInterrupt  # an interrupt while waiting: no checks
    return conn


def rerun(settings: RunSettings) -> dict:
    """The run's own options that a command repeating it gives again (plain data)."""
    return {
        # the folders a scenario given by name was found in; none for a file's path
        "scenario_path": [] if is_path(settings.scenario) else list(settings.scenario_path),
        "transactions": settings.transactions,
        "duration_s": None if settings.transactions else settings.duration_s,
        "schema": settings.schema,
        "dsn_option": settings.dsn_option,
        "allow_large_params": settings.allow_large_params,
        "lock_timeout_ms": settings.lock_timeout_ms,
        "statement_timeout_ms": settings.statement_timeout_ms,
        "deadlock_timeout_ms": settings.deadlock_timeout_ms,
        "check": settings.check,
    }


def declared(scenario: Scenario, ref: str) -> dict:
    """The scenario's declarations that a report may quote (plain data)."""
    return {
        "ref": ref or scenario.name,
        "strategies": [{"name": s.name, "help": s.help, "safe_at": list(s.safe_at),
                        "risk": s.risk} for s in scenario.strategies],
        "knobs": {k.name: k.default for k in scenario.knobs},
        # knobs that only some strategies read: name -> those strategies
        "knob_strategies": {k.name: list(k.strategies) for k in scenario.knobs if k.strategies},
    }
