"""`Hub`: many workers' transactions on one OS thread, as greenlets.

A thread per worker makes every round trip cost a GIL hand-over: the thread
that gets its answer wakes, waits for the GIL, and the kernel switches threads
several times per transaction. Here each worker is a greenlet; psycopg2's wait
callback (psycopg2.extensions.set_wait_callback) suspends the worker whose
connection waits for the server, and the hub resumes whichever worker's socket
is ready (epoll). The server sees exactly what it saw with threads: one
connection per worker, each running its own transactions concurrently with the
others'. A bare psycopg2 loop sending bank-transfer's statements this way uses
a quarter to a third less client CPU per transaction than the same loop on 8
threads (txlab itself at 1,000 accounts: 107 against 144 us per transaction).

What a worker must not do is block the thread other than through psycopg2 or
the hub: `sleep` (Tx.think's pause, reconnect back-off, waiting to start) gives
the thread to the others meanwhile. The wait callback is process-wide while a
hub runs; any other thread's connection (or the hub's own greenlet) gets a
plain blocking wait from it, as without a callback.

`time.sleep` too is process-wide while a hub runs: called by a hub's worker (a
scenario that pauses with time.sleep instead of tx.think) it sleeps on the hub,
so the other workers go on as they would with a thread each, and it ends early
when the run stops (`cut_short`); called by anyone else it is the time.sleep it
was. Other blocking calls (an HTTP request, another driver) still hold every
worker.
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable

import psycopg2
import psycopg2.extensions as ext
from greenlet import getcurrent, greenlet

POLL_OK, POLL_READ, POLL_WRITE = ext.POLL_OK, ext.POLL_READ, ext.POLL_WRITE
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
STATUS_SETUP = ext.STATUS_SETUP
_TIMEOUT = object()  # what a timer resumes a greenlet with
CONNECT_TIMEOUT_S = 10.0  # as libpq's connect_timeout, which its non-blocking connect ignores


def available() -> bool:
    """Hubs may run: no other wait callback is installed (gevent, psycogreen, a user's
    own), and TXLAB_WORKER_THREADS (a thread per worker, as before) is not set."""
    return (ext.get_wait_callback() in (None, _wait)
            and not os.environ.get("TXLAB_WORKER_THREADS"))


_HUBS: dict = {}  # a running hub's loop greenlet -> the hub
_HUBS_LOCK = threading.Lock()
_outer_sleep = time.sleep  # what time.sleep was when the first hub started


def _sleep(seconds: float) -> None:
    """time.sleep while hubs run: a worker sleeps on its hub, anyone else as before."""
    hub = _HUBS.get(getcurrent().parent)
    if hub is None:
        return _outer_sleep(seconds)
    seconds = float(seconds)
    if seconds < 0 or seconds != seconds:
        raise ValueError("sleep length must be non-negative")
    hub.sleep(seconds, hub.cut_short)
    return None


def _install() -> None:
    """The first hub to start: the wait callback and time.sleep (under _HUBS_LOCK)."""
    global _outer_sleep
    if ext.get_wait_callback() is None:
        ext.set_wait_callback(_wait)
    if time.sleep is not _sleep:
        _outer_sleep, time.sleep = time.sleep, _sleep


def _uninstall() -> None:
    """The last hub has ended: what _install set goes back (unless someone replaced it)."""
    if ext.get_wait_callback() is _wait:
        ext.set_wait_callback(None)
    if time.sleep is _sleep:
        time.sleep = _outer_sleep


def _wait(conn) -> None:
    """psycopg2's wait callback while hubs run: the worker's own hub waits for it; any
    other caller (another thread, a hub's loop) gets a plain blocking wait."""
    me = getcurrent()
    hub = _HUBS.get(me.parent)
    if hub is None:
        blocking_wait(conn, CONNECT_TIMEOUT_S if conn.status == STATUS_SETUP else None)
        return
    hub.wait(conn, me)


def blocking_wait(conn, timeout_s: float | None = None) -> None:
    """Wait for `conn` as a blocking libpq call would (psycopg2.extras.wait_select)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        state = conn.poll()
        if state == POLL_OK:
            return
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise psycopg2.OperationalError("timeout expired")
        if state == POLL_READ:
            select.select([conn.fileno()], [], [], left)
        elif state == POLL_WRITE:
            select.select([], [conn.fileno()], [], left)
        else:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")


class Hub:
    """Runs functions as greenlets on the calling thread until all have returned.

    `run(jobs)` installs the wait callback, starts every job, and runs them until
    all have returned. A worker that must wait (for its socket, or asleep) hands
    the thread straight to the next ready worker (`_pass`): one greenlet switch per
    wait, none when it is itself the next one, where a central loop would take two.
    When none is ready, whoever waits does a turn (`_turn`): epoll for the sockets
    workers wait on, a heap of timers for those that sleep. `wake()` (from any
    thread) makes sleepers look at their condition again at once.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watch: dict[int, tuple] = {}  # fd -> (connection, events) registered for it
        self._armed: dict[int, greenlet] = {}  # fd -> the worker waiting on it
        self._timers: list = []  # heap of (when, token, greenlet)
        self._sleeping: dict[greenlet, int] = {}  # worker -> the token of its live timer
        self._tokens = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._loop: greenlet | None = None
        self._ready: deque = deque()  # (greenlet, value to resume it with), in turn
        self._connect_fd: dict = {}  # a connecting worker -> the fd it is armed on
        self._alive = 0  # jobs not yet returned
        # When true, a worker's time.sleep ends early (at the next wake()): the runner's
        # stop, so that a scenario's long time.sleep does not hold up Ctrl-C.
        self.cut_short: Callable[[], bool] | None = None
        self.turns = 0  # rounds of the loop so far: at least one a second while it runs
        self.thread_id: int | None = None  # the thread the hub runs on

    # ---------------------------------------------------------------- workers' side

    def _mine(self) -> bool:
        """The caller is one of this hub's workers (not another thread, not the loop)."""
        loop = self._loop
        return loop is not None and getcurrent().parent is loop

    def wait(self, conn, me: greenlet) -> None:
        """Suspend worker `me` until `conn` can go on (from the wait callback).

        A connection is watched level-triggered and stays registered while it
        waits for the same thing (no epoll_ctl per round trip); one that turns
        readable while its worker is busy elsewhere is taken out (see _turn)."""
        if conn.status == STATUS_SETUP:
            self._connecting(conn, me)
            return
        poll = conn.poll
        state = poll()
        if state == POLL_OK:
            return
        fd = conn.fileno()
        watch, armed, pass_on = self._watch, self._armed, self._pass
        while True:
            if state == POLL_READ:
                events = EPOLLIN
            elif state == POLL_WRITE:
                events = EPOLLOUT
            else:
                raise psycopg2.OperationalError(f"bad state from poll: {state}")
            w = watch.get(fd)
            if w is None or w[0] is not conn or w[1] != events:
                self._arm(fd, events, conn)
            armed[fd] = me
            pass_on(me)
            state = poll()
            if state == POLL_OK:
                return

    def _connecting(self, conn, me: greenlet) -> None:
        """A connection being opened: libpq may change its socket meanwhile, so every
        wait arms anew, with libpq's connect_timeout as a deadline."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            state = conn.poll()
            if state == POLL_OK:
                return
            if state not in (POLL_READ, POLL_WRITE):
                raise psycopg2.OperationalError(f"bad state from poll: {state}")
            fd = conn.fileno()
            self._arm(fd, EPOLLIN if state == POLL_READ else EPOLLOUT, None)
            self._armed[fd] = me
            self._connect_fd[me] = fd
            self._timer(deadline, me)
            timed_out = self._pass(me) is _TIMEOUT
            self._connect_fd.pop(me, None)
            if timed_out:
                self._armed.pop(fd, None)
                raise psycopg2.OperationalError("timeout expired")

    def _arm(self, fd: int, events: int, conn) -> None:
        """Watch `fd` for `events` (level-triggered). A closed fd leaves the epoll by
        itself and a new connection may get its number: hence the fall-back."""
        try:
            self._epoll.modify(fd, events)
        except FileNotFoundError:
            self._epoll.register(fd, events)
        self._watch[fd] = (conn, events)

    def _park(self, fd: int) -> None:
        """`fd` is ready but nobody waits on it (its worker thinks, or is gone): out of
        the epoll until its worker waits again, or the loop would spin on it."""
        self._watch.pop(fd, None)
        try:
            self._epoll.unregister(fd)
        except (FileNotFoundError, OSError):
            pass

    def _timer(self, when: float, g: greenlet) -> None:
        token = next(self._tokens)
        self._sleeping[g] = token
        heapq.heappush(self._timers, (when, token, g))

    def sleep(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Give the thread to the others for `seconds`; True (at once) if `until()`
        becomes true meanwhile (looked at whenever `wake()` is called)."""
        if not self._mine():
            raise RuntimeError("Hub.sleep is for the hub's own workers")
        end = time.monotonic() + seconds
        me = getcurrent()
        while True:
            if until is not None and until():
                return True
            if time.monotonic() >= end:
                return False
            self._timer(end, me)
            self._pass(me)

    def pauser(self, until: Callable[[], bool]) -> _Pauser:
        """An object whose wait(seconds) sleeps here and says whether `until()` stopped it,
        as threading.Event.wait does for an Event (what Tx.think and the runner take)."""
        return _Pauser(self, until)

    def wake(self) -> None:
        """From any thread: sleepers look at their `until` again now."""
        with self._wake_lock:  # never a closed fd's number, which a new file may have by now
            if self._wake_w < 0:
                return  # the hub is gone
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # already woken: the pipe is full

    # ---------------------------------------------------------------- the loop

    def run(self, jobs: list[tuple[Callable, tuple]]) -> None:
        """Run every job (function, args) as a greenlet; return when all have returned.
        An exception a job lets out stops the hub and is raised here."""
        self._loop = loop = getcurrent()
        self.thread_id = threading.get_ident()
        with _HUBS_LOCK:
            if not _HUBS:
                _install()
            _HUBS[loop] = self
        try:
            self._alive = len(jobs)
            ready, entry = self._ready, (loop, None)
            for fn, args in jobs:
                ready.append(entry)  # the job's first wait comes back here, to start the next
                greenlet(self._job).switch(fn, args)
                try:
                    ready.remove(entry)  # the job ended without waiting
                except ValueError:
                    pass
            self._serve()
        finally:
            with _HUBS_LOCK:
                del _HUBS[loop]
                if not _HUBS:
                    _uninstall()
            self._close()

    def _job(self, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        finally:
            self._alive -= 1

    def _pass(self, me: greenlet):
        """Worker `me` waits (it is armed on a socket, or has a timer): run the next
        ready greenlet, straight from here (one switch, none when it is `me`), doing a
        turn of epoll and timers when none is ready. Returns what `me` was resumed with."""
        ready = self._ready
        while not ready:
            self._turn()
        g, value = ready.popleft()
        if g is me:
            return value
        return g.switch(value)

    def _serve(self) -> None:
        """The loop's own part: runs ready greenlets until every job has returned (a
        job's end, or an exception it lets out, comes back here)."""
        loop, ready = self._loop, self._ready
        while self._alive:
            if not ready:
                self._turn()
                continue
            g, value = ready.popleft()
            if g is not loop:
                g.switch(value)

    def _turn(self) -> None:
        """One round of epoll and timers: whoever is ready joins the queue."""
        self.turns += 1
        armed, timers, sleeping, ready = self._armed, self._timers, self._sleeping, self._ready
        while timers and sleeping.get(timers[0][2]) != timers[0][1]:
            heapq.heappop(timers)  # a sleeper woken early, or a connect that got its answer
        timeout = 1.0
        if timers:
            timeout = min(timeout, max(0.0, timers[0][0] - time.monotonic()))
        for fd, _ in self._epoll.poll(timeout):
            if fd == self._wake_r:
                self._woken()
                continue
            g = armed.pop(fd, None)
            if g is None:
                self._park(fd)
                continue
            if sleeping:
                sleeping.pop(g, None)  # a connect's deadline no longer counts
            ready.append((g, None))
        if timers:
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, token, g = heapq.heappop(timers)
                if sleeping.get(g) == token:
                    del sleeping[g]
                    fd = self._connect_fd.pop(g, None)
                    if fd is not None:
                        armed.pop(fd, None)
                    ready.append((g, _TIMEOUT))

    def _woken(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        on_sockets = set(self._armed.values())  # a connect with a deadline: not a sleeper
        for g in [g for g in self._sleeping if g not in on_sockets]:
            del self._sleeping[g]  # its heap entry is stale now
            self._ready.append((g, None))

    def _close(self) -> None:
        self._epoll.close()
        with self._wake_lock:
            fds, self._wake_w = (self._wake_r, self._wake_w), -1
        for fd in fds:
            os.close(fd)


class _Pauser:
    __slots__ = ("_hub", "_until")

    def __init__(self, hub: Hub, until: Callable[[], bool]):
        self._hub = hub
        self._until = until

    def wait(self, seconds: float) -> bool:
        return self._hub.sleep(seconds, self._until)
