"""stress(): call the application's own function from many threads at once.

The function commits, rolls back and retries exactly as it does in production;
txlab only watches its statements (txlab.testing.observe) to count commits and
rollbacks and, with `think_ms`, to pause between them so that races are likely.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from txlab.errors import UsageError
from txlab.testing import observe
from txlab.testing.target import UNWATCHED, Target, Verdict, name_of

TRANSIENT = frozenset({"40001", "40P01"})  # what `retries` calls the function again for
STOP_GRACE_S = 10.0  # after Ctrl-C, how long the calls under way may take to end


@dataclass(frozen=True)
class Raised:
    """Calls that ended with one kind of exception."""

    exception: str  # the exception's type name, e.g. "IntegrityError"
    sqlstate: str | None  # found on the error, its `orig` or its causes
    count: int
    example: str  # the first one's message
    allowed: bool  # listed in `allow=`: an outcome the application expects


@dataclass
class StressResult:
    function: str
    calls: int
    returned: int
    raised: tuple[Raised, ...]
    commits: int
    rollbacks: int
    left_open: int  # calls that returned with a transaction still open (rolled back)
    retried: int  # calls txlab repeated after a transient error (`retries`)
    statements: int
    invariant: str
    verdict: Verdict
    isolation: str
    workers: int
    think_ms: float
    seed: int
    elapsed_s: float
    failure: str | None = None  # a worker crashed in txlab itself
    # calls that raised with their transaction still open (a deadlock victim, a failed
    # statement): rolled back when the session closed, counted apart from left_open
    ended_by_error: int = 0

    def __repr__(self) -> str:
        return (f"<StressResult {'ok' if self.ok else 'FAILED'}: {self.calls} calls, "
                f"{self.returned} returned, {self.commits} commits, invariant "
                f"{self._invariant_word()}>")

    def _invariant_word(self) -> str:
        if self.verdict.held is not None:
            return "held" if self.verdict.held else "broken"
        # None: none was given, or it raised (which fails the run, as explain() says)
        return "not given" if self.invariant == "no invariant" else "raised (FAILED)"

    @property
    def unexpected(self) -> int:
        return sum(r.count for r in self.raised if not r.allowed)

    @property
    def ok(self) -> bool:
        """No call raised an exception the app does not expect, and the invariant held."""
        held = self.verdict.held is not False and not (
            self.verdict.held is None and self.invariant != "no invariant")
        return held and self.unexpected == 0 and self.failure is None

    def explain(self) -> str:
        from txlab.testing.render import render_stress

        return render_stress(self)


@dataclass
class _Worker:
    """One thread's counters; an Observer of its statements."""

    think_s: float
    rng: random.Random
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    left_open: int = 0
    ended_by_error: int = 0
    in_call: int = 0  # statements sent in the current call
    open: bool = False  # a transaction is open (statements since the last end)
    closing: bool = False  # txlab is closing the session after the call
    end_in_error: bool = False
    # With no isolation= given, the server's default level: the BEGINs psycopg2 sent are
    # kept, so that the result can name the application's own level (Target.level_of).
    default_level: str | None = None
    begins: set = field(default_factory=set)

    def _think(self) -> None:
        if self.think_s and self.in_call:
            time.sleep(self.think_s * self.rng.uniform(0.5, 1.5))

    def before(self, call: observe.Call) -> None:
        if self.closing:
            return
        self._think()
        if call.kind == "statement":
            self.in_call += 1
            self.statements += 1
            self.open = not call.conn.autocommit
            if self.default_level is not None and call.opens_transaction():
                self.begins.add(call.begin_sql(self.default_level))
        else:
            self.end_in_error = call.conn.info.transaction_status == 3  # INERROR

    def after(self, call: observe.Call, cursor) -> None:
        if call.kind == "statement" or self.closing:
            return
        self.open = False
        if call.kind == "commit" and not self.end_in_error:
            self.commits += 1
        else:  # a ROLLBACK, or a COMMIT of a failed transaction (the server rolls back)
            self.rollbacks += 1

    def failed(self, call: observe.Call, exc: BaseException) -> None:
        if call.kind != "statement" and not self.closing:
            self.open = False
            self.rollbacks += 1  # a COMMIT that failed: the transaction is gone

    def start_call(self) -> None:
        self.in_call, self.closing = 0, False

    def end_call(self, raised: bool) -> None:
        if self.open:
            if raised:
                self.ended_by_error += 1
            else:
                self.left_open += 1
        self.open, self.closing = False, True


def stress(fn: Callable, *, engine=None, dsn: str | None = None, workers: int = 8,
           calls: int = 200, isolation: str | None = None, retries: int = 0,
           think_ms: float = 0, invariant: Callable | str | None = None,
           seed: int | None = None, allow: tuple[type[BaseException], ...] = ()
           ) -> StressResult:
    """Call `fn(session, i)` for i in range(calls) from `workers` threads.

    `session` is a SQLAlchemy Session (engine= an Engine or sessionmaker; a new
    Session per call, closed after it) or a psycopg2 connection (dsn=; one per
    worker, as a pool would lend it; a transaction left open is rolled back).
    `isolation` None keeps the application's own level. `retries`: call again
    after a 40001/40P01 escaped fn (as a job runner would). `think_ms`: pause
    about that long before each statement, COMMIT and ROLLBACK of a call after
    its first. `invariant(session)` (or a boolean SQL query) runs at the end.
    `allow`: exception types the application raises by design (not failures).
    Ctrl-C (KeyboardInterrupt) stops it: the calls under way end, no new one
    starts, and the KeyboardInterrupt goes on to the caller.
    """
    if workers < 1 or calls < 0 or retries < 0 or think_ms < 0:
        raise UsageError("workers must be at least 1; calls, retries and think_ms at least 0")
    target = Target(engine, dsn, isolation)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    counter = itertools.count()
    outcomes: list[tuple[str, str | None, str, bool] | None] = []
    lock = threading.Lock()
    crashed: list[BaseException] = []
    first_raised: list[BaseException] = []  # the first exception a call let out
    stats = [_Worker(think_ms / 1000, random.Random(seed * 1009 + w)) for w in range(workers)]
    if target.level is None:
        with target.control() as control:
            default = target.default_level(control)
        for w in stats:
            w.default_level = default
    retried = [0] * workers

    kept: list = [None] * workers  # dsn=: each worker's connection, as a pool lends it

    def call_once(w: int, i: int) -> BaseException | None:
        pooled = target.engine is None
        handle = kept[w] if pooled and kept[w] is not None and not kept[w].closed else None
        handle = handle or target.open()
        stats[w].start_call()
        raised = True  # until fn returns (an exception, or a KeyboardInterrupt)
        try:
            fn(handle, i)
            raised = False
            return None
        except Exception as exc:
            return exc
        finally:
            target.hooks.finish()  # a COMMIT through SQLAlchemy has no after-event
            stats[w].end_call(raised)
            if pooled:
                kept[w] = target.release(handle)
            else:
                target.close(handle)
            target.hooks.finish()

    stop = threading.Event()  # Ctrl-C in the caller: no new calls

    def work(w: int) -> None:
        try:
            with target.hooks.bound(stats[w]):
                while not stop.is_set() and (i := next(counter)) < calls:
                    for attempt in range(retries + 1):
                        exc = call_once(w, i)
                        if exc is None or observe.sqlstate(exc) not in TRANSIENT \
                                or attempt == retries or stop.is_set():
                            break
                        retried[w] += 1
                    with lock:
                        outcomes.append(None if exc is None else _describe(exc, allow))
                        if exc is not None and not first_raised and not (
                                allow and isinstance(exc, allow)):
                            first_raised.append(exc)
        except BaseException as exc:  # txlab or the driver broke: report, never hang
            with lock:
                crashed.append(exc)
        finally:
            if kept[w] is not None:
                with contextlib.suppress(Exception):
                    target.close(kept[w])
                kept[w] = None

    start = time.monotonic()
    with target.observing():
        threads = [threading.Thread(target=work, args=(w,), name=f"txlab-stress-{w}",
                                    daemon=True) for w in range(workers)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C: the calls under way end, no new one starts
            stop.set()
            end = time.monotonic() + STOP_GRACE_S
            for t in threads:
                t.join(max(0.0, end - time.monotonic()))
            raise
    elapsed = time.monotonic() - start
    if outcomes and not crashed and not sum(s.statements for s in stats):
        if first_raised:  # a wrong call (TypeError) is the story, not "nothing went through"
            first_raised[0].add_note("txlab.testing.stress: raised before any statement "
                                     "reached the database")
            raise first_raised[0]
        raise UsageError(UNWATCHED.format(what="stress", fns=name_of(fn)))
    with target.control() as control:
        verdict = target.check(invariant, control)
    return StressResult(
        function=name_of(fn), calls=len(outcomes),
        returned=sum(1 for o in outcomes if o is None),
        raised=_group([o for o in outcomes if o is not None]),
        commits=sum(s.commits for s in stats), rollbacks=sum(s.rollbacks for s in stats),
        left_open=sum(s.left_open for s in stats), retried=sum(retried),
        ended_by_error=sum(s.ended_by_error for s in stats),
        statements=sum(s.statements for s in stats), invariant=name_of(invariant),
        verdict=verdict, isolation=target.level_of(b for w in stats for b in w.begins),
        workers=workers, think_ms=think_ms,
        seed=seed, elapsed_s=elapsed,
        failure=(f"a worker failed: {type(crashed[0]).__name__}: {crashed[0]}"
                 if crashed else None))


def _describe(exc: BaseException, allow) -> tuple[str, str | None, str, bool]:
    return (type(exc).__name__, observe.sqlstate(exc), observe.message(exc),
            isinstance(exc, allow) if allow else False)


def _group(raised: list[tuple[str, str | None, str, bool]]) -> tuple[Raised, ...]:
    counts = Counter((name, code, allowed) for name, code, _, allowed in raised)
    first: dict = {}
    for name, code, text, allowed in raised:
        first.setdefault((name, code, allowed), text)
    return tuple(Raised(name, code, n, first[(name, code, allowed)], allowed)
                 for (name, code, allowed), n in counts.most_common())
