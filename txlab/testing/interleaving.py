"""interleave(): the isolation tester's idea, applied to the application's own code.

Each function runs in its own thread with its own session. Every statement,
COMMIT and ROLLBACK it sends stops at a gate (txlab.testing.observe) until txlab
lets that session go; txlab waits until the statement has finished, or until the
control connection sees the session wait for a lock
(pg_isolation_test_session_is_blocked, as the isolation tester and txlab's demo
driver do), and then chooses the next session. Every schedule starts from the
same state: the schema's tables as they were when interleave() was called
(snapshot.restore), or what `setup` builds.

Schedules are explored by preemption bounding: first the serial orders, then
every schedule with one preemption (a session stopped while it could have gone
on), then two, ...: all of them when the budget allows, else the least
preempted first, in a seeded order within a level. When schedules fail, the
level of the first failure is finished and its shortest failing schedule is
reported: the fewest preemptions, then the fewest steps.
"""

from __future__ import annotations

import heapq
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from txlab import signals
from txlab.errors import UsageError
from txlab.testing import observe, snapshot, specgen
from txlab.testing.target import UNWATCHED, Target, Verdict, name_of

POLL_S = 0.005  # how often a running step is looked at while it may wait for a lock
STOP_GRACE_S = 5.0  # after Ctrl-C, how long each session may take to roll back

# ---------------------------------------------------------------- data


@dataclass
class Step:
    """One statement, COMMIT or ROLLBACK of a schedule, and what became of it."""

    session: int
    kind: str  # "statement" | "commit" | "rollback"
    sql: str  # with its parameters as literals
    begin: str | None = None  # the BEGIN psycopg2 sent in front: it opened a transaction
    closing: bool = False  # txlab's ROLLBACK: the function returned with a transaction open
    tag: str | None = None  # command tag, e.g. "INSERT 0 1"
    rows: tuple | None = None  # the first rows returned (None: no result set)
    sqlstate: str | None = None
    error: str | None = None
    waited: bool = False  # it waited for a lock before it finished
    blocked_by: tuple[int, ...] = ()  # sessions holding that lock
    done: bool = False


@dataclass(frozen=True)
class End:
    """How a session's function ended."""

    session: int
    exception: str | None = None  # type name; None: it returned
    sqlstate: str | None = None
    message: str = ""
    allowed: bool = False  # an exception listed in `allow`
    value: str = ""  # what it returned (repr, shortened)
    # The exception itself: raised again when no statement of any function ran (a
    # TypeError from a wrong call is the story then, not "nothing went through").
    raised: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass
class Schedule:
    """One run: the order chosen, every step with its outcome, and the verdict."""

    sessions: tuple[str, ...]  # "s1", "s2", ...
    labels: tuple[str, ...]  # the functions' names
    choices: tuple[int, ...]  # the session released at each step
    decisions: tuple[tuple[int, ...], ...]  # the sessions that could go at each step
    steps: list[Step]
    timeline: list[tuple[str, int]]  # ("step" | "resumed", step) or ("end", session)
    ends: list[End]
    verdict: Verdict
    failure: str | None  # why it failed; None: it passed
    final_state: tuple[tuple[str, str], ...] = ()  # (table, rows as JSON)
    diverged: bool = False  # re-running did not follow the planned order
    stuck: bool = False  # a session made no progress for step_timeout

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def preemptions(self) -> int:
        return _preemptions(self.choices, self.decisions)[-1]

    @property
    def order(self) -> str:
        return " ".join(self.sessions[c] for c in self.choices)


@dataclass
class InterleaveResult:
    sessions: tuple[str, ...]
    labels: tuple[str, ...]
    isolation: str
    invariant: str
    seed: int
    schedules: int  # how many were run while exploring
    exhausted: bool  # every schedule was run
    estimate: int  # about how many schedules exist (exact when exhausted: `schedules`)
    failures: int  # failing schedules among those run
    schedule: Schedule | None  # the shortest failing schedule (None: none failed)
    spec: str | None  # that schedule as an isolation-tester spec
    spec_note: str | None  # why there is no spec
    elapsed_s: float
    explored: list[Schedule] = field(default_factory=list, repr=False)  # in the order run
    given: bool = False  # one schedule, given by `schedule=` (hypothesis), was run
    state_sql: str | None = None  # the query behind final_state (every table as JSON)

    @property
    def waited(self) -> int:
        """Schedules in which a statement waited for another session's lock."""
        return sum(1 for s in self.explored if any(step.waited for step in s.steps))

    @property
    def diverged(self) -> int:
        """Schedules that did not follow their planned order when run (the application
        or the server behaved differently from an earlier run of the same prefix)."""
        return sum(1 for s in self.explored if s.diverged)

    @property
    def ok(self) -> bool:
        return self.schedule is None

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"FAILED ({self.failures} failing)"
        return (f"<InterleaveResult {verdict}: {self.schedules} schedules"
                f"{' (all)' if self.exhausted else ''} at {self.isolation}>")

    def explain(self) -> str:
        from txlab.testing.render import render_interleave

        return render_interleave(self)


class _Abandoned(BaseException):
    """Raised inside the application's thread to end a schedule that cannot go on."""


class _Stuck(Exception):
    pass


def _preemptions(choices, decisions) -> list[int]:
    """Running count: a preemption is switching away from a session that could go on."""
    out, n = [0], 0
    for i, c in enumerate(choices):
        if i and choices[i - 1] in decisions[i] and c != choices[i - 1]:
            n += 1
        out.append(n)
    return out


# ---------------------------------------------------------------- choosing


class _Follow:
    """Follow a planned prefix of choices, then let the current session go on."""

    def __init__(self, prefix: tuple[int, ...]):
        self.prefix, self.pos, self.diverged = prefix, 0, False

    def choose(self, runnable: list[int], last: int | None) -> int:
        pos, self.pos = self.pos, self.pos + 1
        if pos < len(self.prefix):
            if self.prefix[pos] in runnable:
                return self.prefix[pos]
            self.diverged = True
        return last if last in runnable else runnable[0]


class _Encoded:
    """Hypothesis' form: one small integer per real choice; 0 lets the current
    session go on, k switches to the k-th other session that can go."""

    def __init__(self, values: Sequence[int]):
        self.values, self.pos, self.diverged = list(values), 0, False

    def choose(self, runnable: list[int], last: int | None) -> int:
        if len(runnable) == 1:
            return runnable[0]
        order = ([last] if last in runnable else []) + [r for r in runnable if r != last]
        value = self.values[self.pos] if self.pos < len(self.values) else 0
        self.pos += 1
        return order[value % len(order)]


# ---------------------------------------------------------------- a session's thread


class _Session:
    """One function in its own thread; an Observer that stops at every statement."""

    def __init__(self, index: int, fn: Callable, run: _Run):
        self.index, self.fn, self.run = index, fn, run
        self.state = "starting"  # starting | gate | running | done
        self.pending: Step | None = None  # waiting at the gate
        self.current: Step | None = None  # released, in flight
        self.pid: int | None = None
        self.go = self.abandon = self.closing = False
        self.end: End | None = None
        self.thread = threading.Thread(target=self._main, name=f"txlab-s{index + 1}",
                                       daemon=True)

    # -- in the session's thread

    def _main(self) -> None:
        target, exc, value = self.run.ctx.target, None, None
        try:
            with target.hooks.bound(self):
                handle = target.open()
                try:
                    value = self.fn(handle)
                except Exception as e:
                    exc = e
                finally:
                    target.hooks.finish()
                    self.closing = True
                    try:
                        target.close(handle)
                    except Exception:
                        if not self.abandon:
                            raise
        except _Abandoned:
            pass
        except BaseException as e:
            exc = exc or e
        with self.run.cv:
            self.end = _end(self.index, exc, self.run.ctx.allow, value)
            self.state = "done"
            self.run.cv.notify_all()

    def before(self, call: observe.Call) -> None:
        cv = self.run.cv
        if self.abandon:
            if call.kind == "rollback":
                return
            raise _Abandoned()
        begin = call.begin_sql(self.run.ctx.default_level) if call.opens_transaction() else None
        step = Step(self.index, call.kind, call.text(), begin, self.closing)
        with cv:
            self.pending, self.pid, self.state = step, call.pid, "gate"
            cv.notify_all()
            cv.wait_for(lambda: self.go or self.abandon)
            self.go = False
        if self.abandon and call.kind != "rollback":
            raise _Abandoned()

    def after(self, call: observe.Call, cursor) -> None:
        step = self.current
        if step is not None:
            step.tag = (cursor.statusmessage if cursor is not None else None) or call.kind.upper()
            step.rows = observe.peek_rows(cursor) if call.kind == "statement" else None
            step.done = True

    def failed(self, call: observe.Call, exc: BaseException) -> None:
        step = self.current
        if step is not None:
            step.sqlstate, step.error, step.done = observe.sqlstate(exc), observe.message(exc), True

    # -- in the scheduler's thread (holding run.cv)

    def release(self) -> Step:
        step, self.pending, self.current = self.pending, None, self.pending
        self.state, self.go = "running", True
        self.run.cv.notify_all()
        return step


def _raise_first(runs: list, what: str) -> None:
    """No statement ran: the first exception a function raised (not one it may raise
    by design), raised again with a note, if there was one."""
    for run in runs:
        for e in run.ends:
            if e.raised is not None and not e.allowed:
                e.raised.add_note(f"txlab.testing.{what}: raised before any statement reached "
                                  "the database, in every schedule tried")
                raise e.raised


def _end(index: int, exc: BaseException | None, allow, value) -> End:
    if exc is None:
        text = repr(value)
        return End(index, value=text if len(text) <= 60 else text[:57] + "...")
    return End(index, type(exc).__name__, observe.sqlstate(exc), observe.message(exc),
               bool(allow) and isinstance(exc, allow), raised=exc)


# ---------------------------------------------------------------- one schedule


class _Context:
    """What every schedule shares: the target, the functions, the control connection,
    the starting state."""

    def __init__(self, target: Target, fns, labels, invariant, setup, allow, step_timeout,
                 control):
        self.target, self.fns, self.labels = target, fns, labels
        self.invariant, self.setup, self.allow = invariant, setup, allow
        self.step_timeout, self.control = step_timeout, control
        self.sessions = tuple(f"s{i + 1}" for i in range(len(fns)))
        self.default_level = target.default_level(control)
        self.schema = snapshot.current_schema(control)
        if setup is not None:
            self.prepare()
        self.state = snapshot.capture(control, self.schema)
        self.final_sql = snapshot.final_state_sql(self.state)

    def prepare(self) -> None:
        """Bring the database to the starting state."""
        if self.setup is None:
            snapshot.restore(self.control, self.state)
            return
        handle = self.target.open()
        try:
            self.setup(handle)
            handle.commit()
        finally:
            self.target.close(handle)

    def final_state(self) -> tuple[tuple[str, str], ...]:
        if not self.final_sql:
            return ()
        with self.control.cursor() as cur:
            cur.execute(self.final_sql)
            return tuple((t, rows) for t, rows in cur.fetchall())

    def is_blocked(self, pid: int, pids: list[int]) -> bool:
        with self.control.cursor() as cur:
            cur.execute("SELECT pg_catalog.pg_isolation_test_session_is_blocked(%s, %s)",
                        (pid, pids))
            return bool(cur.fetchone()[0])

    def blockers(self, pid: int) -> list[int]:
        with self.control.cursor() as cur:
            cur.execute("SELECT pg_catalog.pg_blocking_pids(%s)", (pid,))
            return list(cur.fetchone()[0] or [])

    def execute(self, policy) -> Schedule:
        return _Run(self, policy).go()


class _Run:
    def __init__(self, ctx: _Context, policy):
        self.ctx, self.policy = ctx, policy
        self.cv = threading.Condition()
        self.sessions = [_Session(i, fn, self) for i, fn in enumerate(ctx.fns)]
        self.steps: list[Step] = []
        self.timeline: list[tuple[str, int]] = []
        self.choices: list[int] = []
        self.decisions: list[tuple[int, ...]] = []
        self.reported_ends: set[int] = set()
        self.reported_resumed: set[int] = set()

    def go(self) -> Schedule:
        ctx = self.ctx
        ctx.prepare()
        failure = None
        for s in self.sessions:
            s.thread.start()
        try:
            try:
                self._loop()
            except _Stuck as exc:
                failure = str(exc)
                self._abandon()
            self._end_sessions(ctx.step_timeout)
        except BaseException:
            # Ctrl-C: a session waiting at its next step holds its locks and would wait
            # forever, and restoring the tables would wait for it. End them all first.
            with signals.shielded():
                self._abandon()
                self._end_sessions(STOP_GRACE_S)
            raise
        verdict = ctx.target.check(ctx.invariant, ctx.control)
        ends = [s.end or End(s.index, "Stuck", None, "did not finish") for s in self.sessions]
        stuck = failure is not None
        failure = failure or _failure(verdict, ends, ctx)
        return Schedule(ctx.sessions, ctx.labels, tuple(self.choices), tuple(self.decisions),
                        self.steps, self.timeline, ends, verdict, failure, ctx.final_state(),
                        self.policy.diverged, stuck)

    def _loop(self) -> None:
        last = None
        self._settle()
        while True:
            self._note_progress()
            with self.cv:
                runnable = [s.index for s in self.sessions if s.state == "gate"]
                if not runnable and all(s.state == "done" for s in self.sessions):
                    return
            if not runnable:  # all that is left waits for a lock: the server must decide
                self._settle(progress=True)
                continue
            choice = self.policy.choose(runnable, last)
            self.decisions.append(tuple(runnable))
            self.choices.append(choice)
            with self.cv:
                step = self.sessions[choice].release()
            self.timeline.append(("step", len(self.steps)))
            self.steps.append(step)
            last = choice
            self._settle()

    def _busy(self) -> list[_Session]:
        return [s for s in self.sessions if s.state in ("starting", "running")]

    def _settle(self, progress: bool = False) -> None:
        """Wait until every session is at a gate, done, or waiting for a lock.
        `progress`: first wait until one of the lock waits ends."""
        deadline = time.monotonic() + self.ctx.step_timeout
        while True:
            with self.cv:
                self.cv.wait_for(lambda: not self._busy(), timeout=POLL_S)
                busy = self._busy()
            if not busy:
                return
            pids = [s.pid for s in self.sessions if s.pid is not None]
            blocked = [s for s in busy if s.state == "running" and s.current is not None
                       and not s.current.done and self.ctx.is_blocked(s.pid, pids)]
            if len(blocked) == len(busy) and not progress:
                for s in blocked:
                    if not s.current.waited:
                        s.current.waited = True
                        mine = self.ctx.blockers(s.pid)
                        s.current.blocked_by = tuple(o.index for o in self.sessions
                                                     if o.pid in mine and o is not s)
                return
            if len(blocked) < len(busy):
                progress = False
            if time.monotonic() > deadline:
                names = ", ".join(self.ctx.sessions[s.index] for s in busy)
                what = "waiting for a lock" if blocked else "busy outside the database"
                raise _Stuck(f"{names} made no progress for {self.ctx.step_timeout:g} s "
                             f"({what}); was the function waiting for another session in "
                             "Python (a lock, a queue, a connection pool)?")

    def _note_progress(self) -> None:
        for i, step in enumerate(self.steps):
            if step.waited and step.done and i not in self.reported_resumed:
                self.reported_resumed.add(i)
                self.timeline.append(("resumed", i))
        for s in self.sessions:
            if s.state == "done" and s.index not in self.reported_ends:
                self.reported_ends.add(s.index)
                self.timeline.append(("end", s.index))

    def _end_sessions(self, timeout: float) -> None:
        """Wait up to `timeout` for each session's thread; one still alive hangs in
        Python: its backend is terminated, which frees its locks."""
        for s in self.sessions:
            s.thread.join(timeout=timeout)
            if s.thread.is_alive() and s.pid is not None:
                with self.ctx.control.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (s.pid,))

    def _abandon(self) -> None:
        with self.cv:
            for s in self.sessions:
                s.abandon = True
            self.cv.notify_all()
        for s in self.sessions:
            if s.state == "running" and s.pid is not None:
                with self.ctx.control.cursor() as cur:
                    cur.execute("SELECT pg_cancel_backend(%s)", (s.pid,))


def _failure(verdict: Verdict, ends: list[End], ctx: _Context) -> str | None:
    for e in ends:
        if e.exception and not e.allowed:
            code = f" (SQLSTATE {e.sqlstate})" if e.sqlstate else ""
            return (f"{ctx.sessions[e.session]} ({ctx.labels[e.session]}) raised "
                    f"{e.exception}{code}: {e.message}")
    if verdict.held is False:
        return f"the invariant {name_of(ctx.invariant)} {verdict.detail or 'failed'}"
    if verdict.held is None and ctx.invariant is not None:
        return verdict.detail
    return None


# ---------------------------------------------------------------- exploring


def _explore(ctx: _Context, max_schedules: int, rng: random.Random, keep_going: bool):
    """Run schedules by increasing preemptions; returns (schedules run, exhausted)."""
    heap: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    runs: list[Schedule] = []
    failed_at = None
    while heap and len(runs) < max_schedules:
        if failed_at is not None and not keep_going and heap[0][0] > failed_at:
            break  # the level of the first failure is done
        cost, _, prefix = heapq.heappop(heap)
        sched = ctx.execute(_Follow(prefix))
        runs.append(sched)
        if sched.stuck:
            break  # more schedules would hang the same way
        if sched.failed and failed_at is None:
            failed_at = cost
        counts = _preemptions(sched.choices, sched.decisions)
        for i in range(len(prefix), len(sched.choices)):
            last = sched.choices[i - 1] if i else None
            for alt in sched.decisions[i]:
                if alt == sched.choices[i]:
                    continue
                extra = 1 if last in sched.decisions[i] and alt != last else 0
                heapq.heappush(heap, (counts[i] + extra, rng.random(), sched.choices[:i] + (alt,)))
    return runs, not heap


def _shortness(sched: Schedule) -> tuple:
    """Shorter is better: fewer preemptions, then fewer steps, then lower sessions first."""
    return sched.preemptions, len(sched.steps), sched.choices


def _estimate(runs: list[Schedule]) -> int:
    """About how many schedules there are: the ways to interleave the sessions' steps,
    with each session's longest run seen (exact when no statement waits for a lock and
    the sessions' statements do not depend on each other)."""
    counts = [max(sum(1 for st in r.steps if st.session == i) for r in runs)
              for i in range(len(runs[0].sessions))]
    total = math.factorial(sum(counts))
    for c in counts:
        total //= math.factorial(c)
    return total


def interleave(fns: Sequence[Callable], *, engine=None, dsn: str | None = None,
               isolation: str | None = None, invariant: Callable | str | None,
               setup: Callable | None = None, max_schedules: int = 200,
               seed: int | None = None, allow: tuple[type[BaseException], ...] = (),
               schedule: Sequence[int] | None = None, keep_going: bool = False,
               step_timeout: float = 30.0) -> InterleaveResult:
    """Run `fns` (one session each) under many statement-level schedules.

    Each function gets a SQLAlchemy Session (engine= an Engine or sessionmaker) or
    a psycopg2 connection (dsn=) and commits, rolls back and retries as it does
    in production. `invariant(session) -> bool` (or a boolean SQL query) is
    checked after every schedule. `isolation`: None keeps the application's own.
    `setup(session)`: builds the starting state before every schedule (else the
    schema's tables are restored to what they held at the call). `allow`:
    exception types a function may raise by design. `schedule`: run just this one
    schedule, in the encoding of txlab.testing.strategies.schedules (for
    hypothesis). `keep_going`: count every failing schedule within the budget
    instead of stopping after the level of the first failure.
    """
    if callable(fns):
        raise UsageError(f"interleave takes a list of functions, one per session (e.g. "
                         f"[{name_of(fns)}, {name_of(fns)}] for two concurrent calls), not one "
                         "function")
    fns = list(fns)
    if len(fns) < 1:
        raise UsageError("interleave needs at least one function")
    if max_schedules < 1:
        raise UsageError("max_schedules must be at least 1")
    if schedule is not None and (isinstance(schedule, (str, bytes)) or not all(
            type(v) is int and v >= 0 for v in schedule)):
        raise UsageError(f"schedule must be a list of integers >= 0 (as "
                         f"txlab.testing.strategies.schedules draws them), not {schedule!r}")
    target = Target(engine, dsn, isolation)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    labels = tuple(name_of(fn) for fn in fns)
    start = time.monotonic()
    with target.control() as control, target.observing():
        ctx = _Context(target, fns, labels, invariant, setup, allow, step_timeout, control)
        try:
            if schedule is not None:
                runs, exhausted = [ctx.execute(_Encoded(schedule))], False
            else:
                runs, exhausted = _explore(ctx, max_schedules, random.Random(seed), keep_going)
        finally:
            if setup is None:
                snapshot.restore(control, ctx.state)  # leave the tables as they were
    if not any(s.steps for s in runs):
        _raise_first(runs, "interleave")
        raise UsageError(UNWATCHED.format(what="interleave", fns=", ".join(labels)))
    failing = [s for s in runs if s.failed]
    best = min(failing, key=_shortness) if failing else None
    level = target.level_of(st.begin for r in runs for st in r.steps if st.begin)
    spec, note = _spec(best, ctx, level, invariant, seed, len(runs)) if best else (None, None)
    return InterleaveResult(ctx.sessions, labels, level, name_of(invariant), seed,
                            len(runs), exhausted, len(runs) if exhausted else _estimate(runs),
                            len(failing), best, spec, note, time.monotonic() - start, runs,
                            schedule is not None, ctx.final_sql)


def _spec(sched: Schedule, ctx: _Context, level: str, invariant, seed: int, runs: int):
    title = " and ".join(f"{s} {label}" for s, label in zip(sched.sessions, sched.labels,
                                                             strict=True))
    notes = (f"The shortest failing schedule txlab.testing.interleave found (seed {seed}, "
             f"{runs} schedules run).",
             "Every statement the application sent is a step, with its parameters as "
             "literals.", "Replay it: txlab demo THIS-FILE.spec")
    if not isinstance(invariant, str):
        notes += ("The invariant was Python code, which a spec cannot carry, so txlab demo "
                  "shows what happened without judging it; an SQL invariant "
                  "(invariant=\"SELECT ...\") would be its witness.",)
    try:
        text = specgen.build(sched.steps, sched.sessions, ctx.state,
                             title=f"{title} at {level}",
                             explain=sched.failure or "",
                             notes=notes,
                             invariant_sql=invariant if isinstance(invariant, str) else None)
    except specgen.SpecUnavailable as exc:
        return None, str(exc)
    return text, None
