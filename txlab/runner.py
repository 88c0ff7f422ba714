"""Run a scenario: set up, start worker threads, stop, check invariants.

Each worker owns its connection, its RNG and its list of attempts; nothing is
shared on the hot path except a ticket counter when --transactions is given.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

import psycopg2

from txlab import checker, db, stats
from txlab.errors import RETRYABLE, Abort, DatabaseError, Declined, UsageError, classify
from txlab.history import ABORTED, COMMITTED, DECLINED, UNKNOWN, Attempt, History, merge
from txlab.scenario import Check, Scenario, Setup, Verdict
from txlab.settings import RunSettings
from txlab.tx import Interrupted, Tx

Progress = Callable[[float, int, int], None]  # elapsed s, committed, aborted


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
    check: checker.Result | None  # None with --no-check
    params: dict
    think_ms: float
    retries: int
    history: History = field(repr=False)
    # What the scenario declares (for the report's story and suggestions): how to
    # name it in a command, its strategies (name, help, safe_at, risk) in order,
    # and its knobs' defaults.
    declared: dict = field(default_factory=dict)

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


def _bug(scenario: Scenario, what: str, exc: BaseException) -> ScenarioBug:
    frames = traceback.extract_tb(exc.__traceback__)
    here = next((f for f in reversed(frames) if scenario.path and f.filename == str(scenario.path)), None)
    where = f"{scenario.path}:{here.lineno}" if here else str(scenario.path or scenario.name)
    return ScenarioBug(f"{where}: {what} raised {type(exc).__name__}: {exc}")


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
            cur.execute("ROLLBACK")
            msg = db.first_line(exc)
            raise UsageError(f"{scenario.path or scenario.name}: setup failed: {msg}") from None
        except Exception as exc:
            cur.execute("ROLLBACK")
            raise _bug(scenario, "setup", exc) from None
    return s.initial_writes


def _check(conn, scenario: Scenario, settings: RunSettings, params: dict) -> list[InvariantResult]:
    results = []
    with conn.cursor() as cur:
        cur.execute(f"SET search_path = {settings.schema}")
        for inv in scenario.invariants:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                v: Verdict = inv.check(Check(cur, params))
            except psycopg2.Error as exc:
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
    return results


# ---------------------------------------------------------------- workers


class _Run:
    def __init__(self, settings: RunSettings, scenario: Scenario, dsn: str, params: dict):
        self.settings = settings
        self.scenario = scenario
        self.strategy = scenario.strategy(settings.strategy)
        self.dsn = dsn
        self.params = params
        n = settings.workers
        self.records: list[list[Attempt]] = [[] for _ in range(n)]
        self.counts = [[0, 0] for _ in range(n)]  # committed, aborted: for the progress line
        self.conns: list = [None] * n
        self.stop = threading.Event()  # no new transactions
        self.halt = threading.Event()  # interrupted: abandon in-flight ones
        self.tickets = itertools.count() if settings.transactions else None
        self.ready = threading.Barrier(n + 1)
        self.error: BaseException | None = None
        self.begin_sql = f"BEGIN ISOLATION LEVEL {settings.isolation.sql}"

    def connect(self, w: int):
        s = self.settings
        options = {"search_path": s.schema, "statement_timeout": str(s.statement_timeout_ms),
                   "lock_timeout": str(s.lock_timeout_ms)}
        if s.deadlock_timeout_ms is not None:
            options["deadlock_timeout"] = str(s.deadlock_timeout_ms)
        conn = db.connect(self.dsn, f"txlab-worker-{w}", **options)
        self.conns[w] = conn
        return conn

    def worker(self, w: int) -> None:
        try:
            conn = self.connect(w)
        except BaseException as exc:
            self.error = exc
            self.ready.abort()
            return
        try:
            self.ready.wait()
        except threading.BrokenBarrierError:
            conn.close()
            return
        try:
            self._loop(w, conn)
        except BaseException as exc:  # a scenario bug or a lost database: stop everything
            if self.error is None:
                self.error = exc
            self.stop.set()
            self.halt.set()
        finally:
            conn = self.conns[w]
            if conn is not None and not conn.closed:
                conn.close()

    def _loop(self, w: int, conn) -> None:
        s = self.settings
        rng = Random(f"txlab:{s.seed}:worker:{w}")
        records, counts = self.records[w], self.counts[w]
        body, params, begin = self.strategy.run, self.params, self.begin_sql
        stop, halt, tickets, limit = self.stop, self.halt, self.tickets, s.transactions
        think_s = s.think_ms / 1000.0
        tries = s.retries + 1
        clock = time.monotonic_ns
        cur = conn.cursor()
        txn = 0
        while not stop.is_set():
            if tickets is not None and next(tickets) >= limit:
                break
            txn += 1
            seed = rng.getrandbits(64)
            for attempt in range(tries):
                tx = Tx(cur, begin, Random(seed), params, think_s, halt)
                invoke = clock()
                outcome, cause, code, msg = self._attempt(conn, cur, tx, body)
                records.append(Attempt(w, txn, attempt, invoke, clock(), outcome, cause, code, msg, tx.ops))
                if outcome == COMMITTED:
                    counts[0] += 1
                    break
                if outcome != ABORTED:
                    break
                counts[1] += 1
                if cause not in RETRYABLE or halt.is_set():
                    break
            if outcome in (ABORTED, UNKNOWN) and (conn.closed or cause == "connection-lost"):
                conn = self._reconnect(w)
                cur = conn.cursor()

    def _attempt(self, conn, cur, tx: Tx, body) -> tuple:
        committing = False
        try:
            body(tx)
            if not tx.begun:  # the body ran no SQL: nothing to commit
                return COMMITTED, None, None, None
            if self.halt.is_set():
                raise Interrupted
            committing = True
            cur.execute(tx.end_sql("COMMIT"))  # deferred statements travel with it
            if cur.statusmessage != "COMMIT":  # the body swallowed an error
                return ABORTED, "25P02", "25P02", "COMMIT answered ROLLBACK"
            return COMMITTED, None, None, None
        except Declined as d:
            self._rollback(conn, cur, tx)
            return DECLINED, d.reason, None, None
        except Abort as a:
            self._rollback(conn, cur, tx)
            return ABORTED, a.cause, None, a.message
        except Interrupted:
            self._rollback(conn, cur, tx)
            return ABORTED, stats.INTERRUPTED_CAUSE, None, "run interrupted"
        except psycopg2.Error as exc:
            code = exc.pgcode
            msg = db.first_line(exc)
            if code is None or conn.closed:
                if committing:
                    return UNKNOWN, "connection-lost", None, msg
                return ABORTED, "connection-lost", None, msg
            self._rollback(conn, cur, tx)
            if self.halt.is_set() and code == "57014":
                return ABORTED, stats.INTERRUPTED_CAUSE, code, "run interrupted"
            return ABORTED, classify(code, msg), code, msg
        except Exception as exc:
            self._rollback(conn, cur, tx)
            raise _bug(self.scenario, f"strategy {self.strategy.name!r}", exc) from exc

    @staticmethod
    def _rollback(conn, cur, tx: Tx) -> None:
        if tx.sent and not conn.closed:
            try:
                cur.execute("ROLLBACK")
            except psycopg2.Error:
                conn.close()

    def _reconnect(self, w: int):
        old = self.conns[w]
        if old is not None and not old.closed:
            old.close()
        return self.connect(w)

    def interrupt(self) -> None:
        self.halt.set()
        self.stop.set()
        for conn in self.conns:
            if conn is not None and not conn.closed:
                try:
                    conn.cancel()
                except psycopg2.Error:
                    pass


def run(
    settings: RunSettings, scenario: Scenario, dsn: str, progress: Progress | None = None
) -> RunResult:
    """Run `scenario` as `settings` say against `dsn`; returns everything the report needs.

    The run owns its schema from setup to the final checks: a second txlab on it
    is refused (db.own_schema). KeyboardInterrupt during setup cancels the running
    statement; during the load phase it stops the workers (in-flight transactions
    roll back) and returns a partial result marked interrupted.
    """
    with db.schema_owner(dsn, settings.schema, "run"):
        return _run(settings, scenario, dsn, progress)


def _run(settings: RunSettings, scenario: Scenario, dsn: str, progress: Progress | None) -> RunResult:
    params = scenario.params(dict(settings.params), allow_large=settings.allow_large_params)
    strategy = scenario.strategy(settings.strategy)
    control = db.connect(dsn, "txlab-control")
    try:
        server = db.server_version(control)
        initial = db.cancellable(control, _setup, control, scenario, settings, params)
        r = _Run(settings, scenario, dsn, params)
        threads = [
            threading.Thread(target=r.worker, args=(w,), name=f"txlab-worker-{w}", daemon=True)
            for w in range(settings.workers)
        ]
        for t in threads:
            t.start()
        try:
            r.ready.wait()
        except threading.BrokenBarrierError:
            for t in threads:
                t.join()
            raise r.error if r.error else DatabaseError("workers could not start") from None
        started = time.monotonic()
        interrupted = False
        try:
            deadline = started + settings.duration_s if settings.duration_s else None
            while any(t.is_alive() for t in threads):
                now = time.monotonic()
                if deadline and now >= deadline:
                    r.stop.set()
                if r.error is not None:  # one worker failed: stop the others at once
                    r.interrupt()
                if progress:
                    progress(now - started, sum(c[0] for c in r.counts), sum(c[1] for c in r.counts))
                wait = 0.2
                if deadline and not r.stop.is_set():
                    wait = max(0.0, min(wait, deadline - now))
                threads[0].join(wait) if r.stop.is_set() else r.stop.wait(wait)
        except KeyboardInterrupt:
            interrupted = True
            r.interrupt()
            _join_all(threads, 2.0)
        elapsed = time.monotonic() - started
        if r.error is not None:
            raise r.error
        attempts = merge(r.records)
        invariants = _check(control, scenario, settings, params)
    finally:
        control.close()

    history = History(
        meta={
            "scenario": scenario.name, "strategy": strategy.name,
            "isolation": settings.isolation.sql, "workers": settings.workers,
            "seed": settings.seed, "params": params, "server": server,
            "think_ms": settings.think_ms, "retries": settings.retries,
        },
        initial=initial,
        attempts=attempts,
    )
    out = stats.outcomes(attempts)
    return RunResult(
        scenario=scenario.name, strategy=strategy.name, isolation=settings.isolation,
        workers=settings.workers, seed=settings.seed, duration_s=elapsed, server=server,
        interrupted=interrupted, outcomes=out,
        throughput_tps=out.committed / elapsed if elapsed > 0 else 0.0,
        latency_ms=stats.percentiles_ms(stats.committed_latencies_ns(attempts)),
        invariants=invariants, check=checker.check(history) if settings.check else None,
        params=params,
        think_ms=settings.think_ms, retries=settings.retries, history=history,
        declared=declared(scenario, settings.scenario),
    )


def declared(scenario: Scenario, ref: str) -> dict:
    """The scenario's declarations that a report may quote (plain data)."""
    return {
        "ref": ref or scenario.name,
        "strategies": [{"name": s.name, "help": s.help, "safe_at": list(s.safe_at),
                        "risk": s.risk} for s in scenario.strategies],
        "knobs": {k.name: k.default for k in scenario.knobs},
    }


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    end = time.monotonic() + timeout
    for t in threads:
        while True:
            try:
                t.join(max(0.0, end - time.monotonic()))
                break
            except KeyboardInterrupt:  # a second Ctrl-C: keep shutting down
                continue
