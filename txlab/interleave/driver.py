"""Run a spec's permutations: one connection and one thread per session.

The main thread follows the isolation tester's algorithm (run_permutation,
try_complete_step, try_complete_steps in isolationtester.c) so that what it
reports, and in which order, is what the isolation tester would report:

- a step is sent to its session's thread; the main thread waits for its first
  result, and every ~10 ms asks the control connection whether the session is
  blocked, with `pg_catalog.pg_isolation_test_session_is_blocked(pid, pids)`.
  Blocked means "<waiting ...>"; the step is looked at again after later steps.
- a step of a session whose previous step still waits first waits for it;
- markers `(*)`, `(other)`, `(other notices N)` delay reporting, never launching;
- a step that takes longer than `step_timeout` is cancelled and reported; one
  that still does not finish after twice that ends the run (never a hang).

The output is a list of events (plain data); renderers turn it into text.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql as pgsql

from txlab import db
from txlab.errors import DatabaseError
from txlab.interleave import pq
from txlab.interleave.spec import Permutation, PermutationStep, Spec, Step, permutations

POLL_S = 0.010  # the isolation tester checks for lock waits every 10 ms

# ---------------------------------------------------------------- events (plain data)


@dataclass(frozen=True)
class PermutationStarted:
    steps: tuple[str, ...]


@dataclass(frozen=True)
class StepReport:
    """`kind`: "done" (sent and completed), "waiting" (sent, blocked), "resumed"."""

    step: str
    session: str
    sql: str
    kind: str
    blocked_by: tuple[str, ...] = ()  # sessions holding the lock (not in transcripts)
    # A wait the permutation's marker made, `(*)` or `(s1b)` (not in transcripts): the
    # step is reported as waiting whether or not it waits for a lock.
    marker: str = ""


@dataclass(frozen=True)
class Rows:
    session: str | None  # None: a global setup/teardown block
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    command: str = ""
    step: str | None = None


@dataclass(frozen=True)
class Command:
    """A result without rows (its tag, e.g. "UPDATE 1"); not in transcripts."""

    session: str | None
    command: str
    step: str | None = None


@dataclass(frozen=True)
class Error:
    session: str | None
    severity: str | None
    sqlstate: str | None
    message: str | None
    text: str | None = None  # libpq's whole message, when fields are missing
    step: str | None = None


@dataclass(frozen=True)
class NoticeEvent:
    session: str
    text: str
    severity: str
    sqlstate: str
    message: str


@dataclass(frozen=True)
class NotifyEvent:
    session: str
    channel: str
    payload: str
    sender: str


@dataclass(frozen=True)
class Canceled:
    step: str
    seconds: int


@dataclass(frozen=True)
class Unexpected:
    status: str


@dataclass(frozen=True)
class StepState:
    """The tables after step `step` of a permutation (1-based, in the permutation's
    order; 0 = after the sessions' setups, before the first step): one entry per
    state query, (label, result, error).

    Each query is read on the control connection in its own READ COMMITTED READ
    ONLY transaction: it sees only COMMITTED data, never a session's uncommitted
    writes, and takes no lock a session could wait for. A result is None when the
    query could not run; error says why (e.g. a session's table lock outlasted
    STATE_LOCK_TIMEOUT_MS). Never part of a transcript.
    """

    step: int
    name: str | None  # the step's name; None for 0
    tables: tuple[tuple[str, pq.Result | None, str | None], ...]


STATE_LOCK_TIMEOUT_MS = 200  # a state read never waits long for a session's table lock


@dataclass
class PermutationRun:
    permutation: tuple[str, ...]  # step names
    events: list = field(default_factory=list)
    final: list[pq.Result] = field(default_factory=list)  # results of `final_queries`
    warnings: list[str] = field(default_factory=list)
    states: list[StepState] = field(default_factory=list)  # with state_queries only
    spelled: tuple[str, ...] = ()  # the steps as the spec spells them, markers included
    # Sessions still in a transaction when the permutation ended, whose locks the
    # teardown had to wait for: txlab rolled them back (the isolation tester would wait
    # for ever). Never part of a transcript.
    left_open: list[str] = field(default_factory=list)


class SetupFailed(DatabaseError):
    """A setup block failed: the run cannot go on (isolationtester exits). `partial`
    (set by run_spec) is the run up to there, which the tester has printed by then."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.runs: list[PermutationRun] = []  # finished ones, and the one that failed
        self.partial: SpecRun | None = None


@dataclass
class SpecRun:
    sessions: tuple[str, ...]
    runs: list[PermutationRun]
    isolation: str | None = None
    warnings: list[str] = field(default_factory=list)
    schema: str | None = None  # txlab's schema, standing in for the tester's `public`


# ---------------------------------------------------------------- a session's thread


class _Session:
    """A session's connection, driven by its own thread."""

    def __init__(self, name: str, conn: pq.Connection):
        self.name = name
        self.conn = conn
        self.cv = threading.Condition()
        self.pending: list[tuple[str, object]] = []  # ("notice"|"result"|"notify"|"fatal", x)
        self.finished = True
        self.sql: str | None = None
        self.active: PermutationStep | None = None
        self.total_notices = 0
        self.closing = False
        conn.on_notice = self._on_notice
        self.thread = threading.Thread(target=self._loop, name=f"txlab-session-{name}", daemon=True)
        self.thread.start()

    def _on_notice(self, notice: pq.Notice) -> None:
        with self.cv:
            self.pending.append(("notice", notice))
            self.cv.notify_all()

    def _loop(self) -> None:
        while True:
            with self.cv:
                while self.sql is None and not self.closing:
                    self.cv.wait()
                if self.closing:
                    return
                sql = self.sql
            try:
                self.conn.send(sql)
                for res in self.conn.results():
                    with self.cv:
                        self.pending.append(("result", res))
                        self.cv.notify_all()
                notes = self.conn.notifications()
            except Exception as exc:  # connection lost; reported by the main thread
                notes = []
                with self.cv:
                    self.pending.append(("fatal", str(exc)))
            with self.cv:
                for n in notes:
                    self.pending.append(("notify", n))
                self.sql = None
                self.finished = True
                self.cv.notify_all()

    def send(self, sql: str) -> None:
        with self.cv:
            self.pending.clear()
            self.finished = False
            self.sql = sql
            self.cv.notify_all()

    def has_result(self) -> bool:
        return self.finished or any(kind != "notice" for kind, _ in self.pending)

    def wait(self, timeout: float, until: Callable[[], bool]) -> bool:
        with self.cv:
            return self.cv.wait_for(until, timeout)

    def take_leading_notices(self) -> list[pq.Notice]:
        """Notices that arrived before the first result (libpq would have shown them)."""
        with self.cv:
            out = []
            while self.pending and self.pending[0][0] == "notice":
                out.append(self.pending.pop(0)[1])
            return out

    def take_all(self) -> list[tuple[str, object]]:
        with self.cv:
            out, self.pending = self.pending, []
            return out

    def close(self) -> None:
        with self.cv:
            self.closing = True
            self.cv.notify_all()
        self.thread.join(timeout=5)
        if not self.thread.is_alive():  # never free a connection another thread still uses
            self.conn.close()


# ---------------------------------------------------------------- the driver


class StepTimeout(DatabaseError):
    pass


class Driver:
    def __init__(self, spec: Spec, dsn: str, isolation_sql: str | None = None,
                 step_timeout: float = 60.0, final_queries: tuple[str, ...] = (),
                 schema: str | None = None, state_queries: tuple[tuple[str, str], ...] = ()):
        self.schema = schema
        self.confine = confined(schema)  # the spec's `public.` is txlab's schema
        self.state_queries = state_queries  # (label, query): read after every step (StepState)
        self.spec = spec
        self.dsn = dsn
        self.isolation_sql = isolation_sql
        self.step_timeout = step_timeout
        self.final_queries = final_queries
        self.steps: dict[str, Step] = spec.steps()
        self.control: pq.Connection | None = None
        self.sessions: list[_Session] = []
        self.run: PermutationRun | None = None
        self.any_new_notice = False
        self.notice_targets: dict[int, int] = {}
        self.sessions_dead = False
        self.waiting: list[PermutationStep] = []  # steps reported waiting, not yet complete

    # ----------------------------------------------------------- lifecycle

    def __enter__(self) -> Driver:
        # Every connection works in txlab's own schema: the spec's unqualified
        # tables are created there, never in the database's other schemas.
        base_options = f"-c search_path={self.schema}" if self.schema else ""
        options = base_options or None
        if self.isolation_sql:
            options = (base_options + " -c default_transaction_isolation="
                       + self.isolation_sql.lower().replace(" ", "\\ ")).strip()
        # Like isolationtester: application_name is "<PGAPPNAME>/<session>", so specs
        # that look themselves up in pg_stat_activity work the same.
        base = os.environ.get("PGAPPNAME", "txlab-demo")
        self.appbase, self.base_options = base, base_options
        try:
            # A statement timeout keeps a teardown that waits on a lock from hanging.
            self.control = pq.Connection.open(
                self.dsn, f"{base}/control connection",
                f"-c statement_timeout={int(self.step_timeout * 1000)} {base_options}".strip())
            for sess in self.spec.sessions:
                conn = pq.Connection.open(self.dsn, f"{base}/{sess.name}", options)
                self.sessions.append(_Session(sess.name, conn))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.pids = ",".join(str(s.conn.pid) for s in self.sessions)
        return self

    def __exit__(self, *exc) -> None:
        for s in self.sessions:
            if not s.finished and self.control and not self.sessions_dead:
                self.control.execute(f"SELECT pg_terminate_backend({s.conn.pid})")
            s.close()
        self.sessions = []
        if self.control:
            self.control.close()
            self.control = None

    # ----------------------------------------------------------- output

    def emit(self, event) -> None:
        self.run.events.append(event)

    def _emit_notice(self, sess: _Session, n: pq.Notice) -> None:
        self.emit(NoticeEvent(sess.name, n.text, n.severity, n.sqlstate, n.message))
        sess.total_notices += 1
        self.any_new_notice = True

    def _emit_result(self, res: pq.Result, session: str | None, step: str | None) -> None:
        if res.has_tuples:
            self.emit(Rows(session, res.columns, res.rows, res.command, step))
        elif res.is_error:
            self.emit(Error(session, res.severity, res.sqlstate, res.message, res.error_text, step))
        elif res.status in (pq.PGRES_COMMAND_OK, pq.PGRES_EMPTY_QUERY):
            self.emit(Command(session, res.command, step))
        else:
            self.emit(Unexpected(res.status_name))

    def _block(self, sql: str, session: _Session | None, what: str, fatal: bool,
                teardown: bool = False) -> None:
        """Run a setup or teardown block as PQexec would (only the last result counts).
        A teardown that waits for a session left in its transaction ends that
        transaction first (see _release)."""
        sql = self.confine(sql)
        if session is None:
            if teardown and self._open_sessions(self.control.pid):
                results = self._control_released(sql)
            else:
                results = self.control.execute(sql)
        else:
            session.send(sql)
            if not self._wait_block(session, teardown):
                self.control.execute(f"SELECT pg_cancel_backend({session.conn.pid})")
                session.wait(self.step_timeout, lambda: session.finished)
            items = session.take_all()
            for kind, item in items:
                if kind == "notice":
                    self._emit_notice(session, item)
            results = [item for kind, item in items if kind == "result"]
        last = results[-1] if results else None
        if last is None:
            return
        if last.has_tuples:
            self._emit_result(last, session.name if session else None, None)
        elif last.status != pq.PGRES_COMMAND_OK:
            text = (last.error_text or last.message or last.status_name).strip()
            if fatal:
                hint = ""
                if last.sqlstate in ("42P07", "42710", "23505"):
                    hint = ("\nThe spec's setup creates objects that already exist here; run it "
                            "in a scratch database (or drop what a failed run left behind).")
                raise SetupFailed(f"{what} failed: {text}{hint}")
            self.run.warnings.append(f"{what} failed: {text}")

    # ----------------------------------------------------------- permutations

    def run_all(self, perms: list[Permutation] | None = None) -> list[PermutationRun]:
        runs: list[PermutationRun] = []
        try:
            for p in perms if perms is not None else permutations(self.spec):
                runs.append(self.run_permutation(p))
        except SetupFailed as exc:
            failed = self.run is not None and (not runs or runs[-1] is not self.run)
            exc.runs = runs + [self.run] if failed else runs
            raise
        return runs

    def run_permutation(self, perm: Permutation) -> PermutationRun:
        self.start_permutation(perm)
        try:
            for _ in self.iter_steps(perm):
                pass
        except BaseException:
            self._abandon()
            raise
        return self.finish_permutation()

    def start_permutation(self, perm: Permutation) -> None:
        """Global setups on the control connection; a new PermutationRun."""
        self.run = PermutationRun(tuple(p.name for p in perm.steps), spelled=tuple(
            str(p) for p in perm.steps))
        self.emit(PermutationStarted(self.run.permutation))
        for sql in self.spec.setups:
            self._block(sql, None, "setup", fatal=True)

    def finish_permutation(self) -> PermutationRun:
        """The sessions' teardowns, then the global teardown."""
        for sess, spec_sess in zip(self.sessions, self.spec.sessions, strict=True):
            if spec_sess.teardown:
                self._block(spec_sess.teardown, sess, f"teardown of session {sess.name}",
                            fatal=False, teardown=True)
        if self.spec.teardown:
            self._block(self.spec.teardown, None, "teardown", fatal=False, teardown=True)
        return self.run

    # ----------------------------------------------------------- sessions left open

    def _open_sessions(self, other_than: int) -> dict[int, _Session]:
        """The idle sessions still inside a transaction (open or failed), by PID; asks
        libpq, not the server, so it costs nothing and touches no session."""
        return {s.conn.pid: s for s in self.sessions
                if s.conn.pid != other_than and s.finished and s.conn.in_transaction()}

    def _release(self, pid: int, conn: pq.Connection) -> None:
        """If backend `pid` waits for a lock held by a session that is idle in its
        transaction, roll that session back (asking on `conn`, a connection that is
        free). Nothing else could end that wait: the permutation has no step left, so
        isolationtester waits here for ever. A session left open that blocks nothing
        is left alone, as the tester leaves it."""
        left = self._open_sessions(pid)
        if not left:
            return
        holders = self._blocking_pids(pid, conn)
        for sess in (s for s in self.sessions if s.conn.pid in holders and s.conn.pid in left):
            sess.send("ROLLBACK")
            sess.wait(self.step_timeout, lambda sess=sess: sess.finished)
            sess.take_all()  # not reported: the isolation tester never gets this far
            self.run.left_open.append(sess.name)
        self.run.left_open.sort(key=[s.name for s in self.sessions].index)  # the spec's order

    def _wait_block(self, session: _Session, teardown: bool) -> bool:
        """Wait for a block sent to `session`; a teardown's wait for a session left
        open is ended (_release, asked on the control connection)."""
        if not teardown:
            return session.wait(self.step_timeout, lambda: session.finished)
        start = time.monotonic()
        while not session.wait(POLL_S, lambda: session.finished):
            self._release(session.conn.pid, self.control)
            if time.monotonic() - start > self.step_timeout:
                return False
        return True

    def _control_released(self, sql: str) -> list[pq.Result]:
        """control.execute(sql) for a teardown while a session is left open: every
        10 ms that it has not finished, a second connection (opened only then) asks
        whether it waits for such a session (_release). The control connection's
        statement_timeout still ends any other wait."""
        control, watch = self.control, None
        control.settle()
        control.send(sql)
        results: list[pq.Result] = []
        try:
            while True:
                while not control.ready():
                    time.sleep(POLL_S)
                    if control.ready():
                        break
                    if watch is None:
                        watch = pq.Connection.open(self.dsn, f"{self.appbase}/control watch",
                                                   self.base_options or None)
                    self._release(control.pid, watch)
                res = control.next_result()
                if res is None:
                    return results
                results.append(res)
        except BaseException:
            control.settle()  # an interrupt: leave the connection ready for the clean-up
            raise
        finally:
            if watch is not None:
                watch.close()

    def waiting_sessions(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(session, step, sessions holding its lock) for each step still not complete."""
        out = []
        for sess in self.sessions:
            if sess.active is not None and not sess.has_result():
                out.append((sess.name, sess.active.name, self._blockers(sess)))
        return out

    def iter_steps(self, perm: Permutation):
        """The sessions' setups, then the steps; yields the index of each step once it
        has been sent and reported (done, or waiting). After the last one: the
        remaining waits and the final queries. Callers drive it to the end (or
        call abandon() on failure); step mode pauses between yields."""
        for sess, spec_sess in zip(self.sessions, self.spec.sessions, strict=True):
            if spec_sess.setup:
                self._block(spec_sess.setup, sess, f"setup of session {sess.name}", fatal=True)

        self._capture_state(0, None)
        self.waiting = []
        for index, pstep in enumerate(perm.steps):
            step = self.steps[pstep.name]
            sess = self.sessions[step.session]
            self._end_wait_of(sess)
            sess.send(self.confine(step.sql))
            sess.active = pstep
            for m in pstep.markers:
                if m.kind == "notices":
                    other = self.sessions[self.steps[m.step].session]
                    self.notice_targets[id(m)] = m.notices + other.total_notices
            mustwait = self.try_complete_step(pstep, retry=False, nonblock=True)
            self.waiting = self.try_complete_steps(self.waiting, nonblock=True)
            if mustwait:
                self.waiting.append(pstep)
            self._capture_state(index + 1, pstep.name)
            yield index

        waiting = self.try_complete_steps(self.waiting, nonblock=False)
        if waiting:
            raise StepTimeout("failed to complete permutation due to mutually-blocking steps")

        for sql in self.final_queries:  # before teardown; never part of a transcript
            results = self.control.execute(sql)
            self.run.final.append(results[-1] if results else None)

    def _end_wait_of(self, sess: _Session) -> None:
        """Before a step is sent to `sess`: its step that still waits is waited for
        (and the others looked at meanwhile), as isolationtester does."""
        start = time.monotonic()
        while sess.active is not None:
            old = sess.active
            if not self.try_complete_step(old, retry=True, nonblock=False):
                self.waiting.remove(old)
            self.waiting = self.try_complete_steps(self.waiting, nonblock=True)
            if sess.active is not None and time.monotonic() - start > 2 * self.step_timeout:
                raise StepTimeout(f"step {sess.active.name} timed out after "
                                  f"{int(time.monotonic() - start)} seconds")

    def waits_before(self, pstep: PermutationStep) -> str | None:
        """The step of `pstep`'s session that still waits (it must end before `pstep`
        can be sent), or None."""
        active = self.sessions[self.steps[pstep.name].session].active
        return active.name if active is not None else None

    def end_wait_before(self, pstep: PermutationStep) -> bool:
        """Step mode, between two steps: what sending `pstep` begins with, done now:
        its session's step that still waits is waited for. A wait that ends by itself
        (a deadlock resolved, a lock timeout) then shows within the step during which
        it ended, as in a run without pauses, with the same events in the same order
        (iter_steps then finds nothing left to wait for). The state after the last
        step is read again. False if there was nothing to wait for."""
        sess = self.sessions[self.steps[pstep.name].session]
        if sess.active is None:
            return False
        self._end_wait_of(sess)
        if self.state_queries and self.run.states:
            last = self.run.states.pop()
            self._capture_state(last.step, last.name)
        return True

    def _capture_state(self, n: int, name: str | None) -> None:
        """The committed tables after step n, on the control connection (see StepState)."""
        if not self.state_queries:
            return
        tables = []
        for label, sql in self.state_queries:
            results = self.control.execute(
                "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY; "
                f"SET LOCAL lock_timeout = {STATE_LOCK_TIMEOUT_MS}; {sql}")
            self.control.execute("ROLLBACK")
            last = results[-1] if results else None
            if last is not None and last.has_tuples:
                tables.append((label, last, None))
            else:
                why = (last.error_text or last.message or last.status_name).strip() if last else ""
                tables.append((label, None, why or "no result"))
        self.run.states.append(StepState(n, name, tuple(tables)))

    def abandon(self) -> None:
        """After a failure or a stop half-way: see _abandon."""
        self._abandon()

    def _abandon(self) -> None:
        """After a failure: end the sessions' transactions, then run the teardown,
        so that a failed run leaves no tables or locks behind."""
        for sess in self.sessions:
            self.control.execute(f"SELECT pg_terminate_backend({sess.conn.pid})")
            sess.wait(5, lambda sess=sess: sess.finished)
        if self.spec.teardown:
            self.control.execute(self.confine(self.spec.teardown))
        self.sessions_dead = True

    def try_complete_steps(self, waiting: list[PermutationStep], nonblock: bool) -> list[PermutationStep]:
        while True:
            self.any_new_notice = False
            old = len(waiting)
            have_blocker = False
            still = []
            for pstep in waiting:
                if self.try_complete_step(pstep, retry=True, nonblock=nonblock):
                    if pstep.markers:
                        have_blocker = True
                    still.append(pstep)
            waiting = still
            if not (have_blocker and (len(waiting) < old or self.any_new_notice)):
                return waiting

    def _has_blocker(self, pstep: PermutationStep) -> bool:
        for m in pstep.markers:
            if m.kind == "step":
                other = self.sessions[self.steps[m.step].session]
                if other.active is not None and other.active.name == m.step:
                    return True
            elif m.kind == "notices":
                other = self.sessions[self.steps[m.step].session]
                if other.total_notices < self.notice_targets.get(id(m), m.notices):
                    return True
        return False

    def _is_blocked(self, sess: _Session) -> bool:
        res = self.control.execute("SELECT pg_catalog.pg_isolation_test_session_is_blocked("
                                   f"{sess.conn.pid}, '{{{self.pids}}}')")
        if not res or not res[-1].has_tuples:
            text = (res[-1].error_text if res else "") or "no result"
            raise DatabaseError(f"lock wait query failed: {text.strip()}")
        return res[-1].rows[0][0] == "t"

    def _blockers(self, sess: _Session) -> tuple[str, ...]:
        pids = self._blocking_pids(sess.conn.pid, self.control)
        return tuple(s.name for s in self.sessions if s.conn.pid in pids)

    @staticmethod
    def _blocking_pids(pid: int, conn: pq.Connection) -> set[int]:
        res = conn.execute(f"SELECT pg_catalog.pg_blocking_pids({pid})")
        if not res or not res[-1].has_tuples or not res[-1].rows[0][0]:
            return set()
        return {int(p) for p in res[-1].rows[0][0].strip("{}").split(",") if p}

    def try_complete_step(self, pstep: PermutationStep, retry: bool, nonblock: bool) -> bool:
        """True if the step has *not* completed (it waits, or a marker holds it)."""
        step = self.steps[pstep.name]
        sess = self.sessions[step.session]
        if not retry and any(m.kind == "once" for m in pstep.markers):
            self.emit(StepReport(step.name, sess.name, step.sql, "waiting", marker="(*)"))
            return True
        start = time.monotonic()
        canceled = False
        while True:
            done = sess.wait(POLL_S, sess.has_result)
            for n in sess.take_leading_notices():
                self._emit_notice(sess, n)
            if done:
                break
            if nonblock and self._is_blocked(sess):
                for n in sess.take_leading_notices():
                    self._emit_notice(sess, n)
                if sess.has_result():
                    break
                if not retry:
                    self.emit(StepReport(step.name, sess.name, step.sql, "waiting",
                                         self._blockers(sess)))
                return True
            elapsed = time.monotonic() - start
            if elapsed > self.step_timeout and not canceled:
                if sess.conn.cancel():
                    self.emit(Canceled(step.name, int(elapsed)))
                    canceled = True
            if elapsed > 2 * self.step_timeout:
                raise StepTimeout(f"step {step.name} timed out after {int(elapsed)} seconds")

        if self._has_blocker(pstep):
            if not retry:
                self.emit(StepReport(step.name, sess.name, step.sql, "waiting",
                                     marker="".join(str(m) for m in pstep.markers
                                                    if m.kind != "once")))
            return True

        self.emit(StepReport(step.name, sess.name, step.sql, "resumed" if retry else "done"))
        # libpq's PQgetResult blocks for the rest of a multi-statement step.
        if not sess.wait(self.step_timeout, lambda: sess.finished):
            sess.conn.cancel()
            self.emit(Canceled(step.name, int(self.step_timeout)))
            if not sess.wait(self.step_timeout, lambda: sess.finished):
                raise StepTimeout(f"step {step.name} timed out")
        for kind, item in sess.take_all():
            if kind == "notice":
                self._emit_notice(sess, item)
            elif kind == "result":
                self._emit_result(item, sess.name, step.name)
            elif kind == "notify":
                sender = next((s.name for s in self.sessions if s.conn.pid == item.pid), f"PID {item.pid}")
                self.emit(NotifyEvent(sess.name, item.channel, item.payload, sender))
            elif kind == "fatal":
                raise DatabaseError(f"session {sess.name} lost its connection: {item}")
        sess.active = None
        return False


DEFAULT_SCHEMA = "txlab_demo"


def confined(schema: str | None) -> Callable[[str], str]:
    """A spec's SQL with `public.` (isolationtester's schema, where a spec's objects
    live) naming txlab's schema instead: `DROP TYPE public.foo` drops the spec's own
    type, never one of yours. The transcript shows the spec's text unchanged."""
    if not schema:
        return lambda sql: sql
    pattern = re.compile(r'(?<![\w$."])public\.', re.IGNORECASE)
    return lambda sql: pattern.sub(schema + ".", sql)


def prepare_schema(dsn: str, schema: str) -> str | None:
    """An empty schema of txlab's own for a spec (refused if txlab did not create it).

    Everyone may use it, as everyone may use `public`, where isolationtester's specs
    put their tables: a spec that creates a role and runs a step after SET ROLE
    (cluster-conflict, vacuum-conflict, truncate-conflict) must meet the table and
    its privileges, not a schema it cannot see."""
    conn = db.connect(dsn, "txlab-demo")
    damaged = None
    try:
        try:
            db.reset_schema(conn, schema)
        except psycopg2.errors.InternalError_ as exc:  # XX000: the catalog under it is damaged
            damaged = _set_aside(conn, schema, exc)
            db.prepare_schema(conn, schema)
        with conn.cursor() as cur:
            cur.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(
                pgsql.Identifier(schema)))
    finally:
        conn.close()
    return damaged


def _set_aside(conn, schema: str, exc: Exception) -> str:
    """A schema that cannot be dropped because a spec edited the catalog (upstream
    intra-grant-inplace deletes a table's pg_class row, leaving its row type behind):
    renamed out of the way, so that the next demo gets a fresh one. Returns the
    warning that says so."""
    aside = f"{schema}_damaged_{int(time.time())}"[:63]
    with conn.cursor() as cur:
        cur.execute(pgsql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            pgsql.Identifier(schema), pgsql.Identifier(aside)))
    return (f"schema {schema!r} could not be emptied ({db.first_line(exc)}): a spec changed "
            f"the system catalog under it. It was renamed {aside!r} and a new one made; drop "
            "the old one once the catalog is repaired.")


def run_spec(spec: Spec, dsn: str, perms: list[Permutation] | None = None,
             isolation_sql: str | None = None, step_timeout: float = 60.0,
             final_queries: tuple[str, ...] = (), schema: str = DEFAULT_SCHEMA,
             state_queries: tuple[tuple[str, str], ...] = ()) -> SpecRun:
    """Run the given permutations (default: the spec's, or all interleavings) in a
    fresh txlab-owned `schema` (search_path of every connection). With
    `state_queries` ((label, query), ...), each run's `states` holds their committed
    results after every step."""
    with db.schema_owner(dsn, schema, "demo"):
        damaged = prepare_schema(dsn, schema)
        warnings = [*spec.warnings, *([damaged] if damaged else [])]
        with Driver(spec, dsn, isolation_sql, step_timeout, final_queries, schema,
                    state_queries) as driver:
            try:
                runs = driver.run_all(perms)
            except SetupFailed as exc:
                exc.partial = SpecRun(tuple(s.name for s in spec.sessions), exc.runs,
                                      isolation_sql, warnings, schema)
                raise
    return SpecRun(tuple(s.name for s in spec.sessions), runs, isolation_sql, warnings, schema)
