"""txlab.green: the workers' greenlets on one thread, against the real server."""

from __future__ import annotations

import threading

import psycopg2
import psycopg2.extensions as ext
import pytest

from txlab import db, green
from txlab.testing import run


def _conn(pg_dsn, name):
    return db.connect(pg_dsn, name, statement_timeout="20000")


def _hub_in_thread(jobs) -> tuple[threading.Thread, list]:
    errors: list = []

    def main() -> None:
        try:
            green.Hub().run(jobs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    t = threading.Thread(target=main, daemon=True)
    t.start()
    return t, errors


def test_a_worker_waiting_for_a_lock_lets_the_holder_go_on(pg_dsn):
    # One thread, two workers: B blocks on an advisory lock that A holds; A sees B
    # waiting (its own queries run meanwhile) and only then releases it. Were B's
    # wait to block the thread, A could never release: B's statement would time out.
    a, b = _conn(pg_dsn, "txlab-green-a"), _conn(pg_dsn, "txlab-green-b")
    steps: list[str] = []
    key = 7_340_001
    try:
        with a.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (key,))
        b_pid = b.get_backend_pid()

        def holder() -> None:
            with a.cursor() as cur:
                while True:  # until B waits for the lock (each look gives B the thread)
                    cur.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted",
                                (b_pid,))
                    if cur.fetchone()[0]:
                        break
                steps.append("A saw B wait")
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
                steps.append("A released")

        def waiter() -> None:
            with b.cursor() as cur:
                steps.append("B asks")
                cur.execute("SELECT pg_advisory_lock(%s)", (key,))
                steps.append("B got it")
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))

        t, errors = _hub_in_thread([(waiter, ()), (holder, ())])
        t.join(60)
        assert not t.is_alive() and not errors, errors
        # A's unlock frees B at once: which of the two answers the hub resumes first is
        # the server's timing, so only their order before it is fixed
        assert steps[:2] == ["B asks", "A saw B wait"], steps
        assert sorted(steps[2:]) == ["A released", "B got it"], steps
        assert ext.get_wait_callback() is None  # put back when the hub is done
    finally:
        a.close()
        b.close()


def test_sleep_gives_way_and_wake_ends_it_when_its_condition_holds(pg_dsn):
    conn = _conn(pg_dsn, "txlab-green-sleep")
    flag = threading.Event()
    seen: list = []
    hub = green.Hub()

    def sleeper() -> None:
        seen.append(("slept", hub.sleep(600, until=flag.is_set)))

    def worker() -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT 41 + 1")  # runs while the other one sleeps
            seen.append(("queried", cur.fetchone()[0]))
        flag.set()
        hub.wake()

    try:
        t = threading.Thread(target=hub.run, args=([(sleeper, ()), (worker, ())],), daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive()
        assert seen == [("queried", 42), ("slept", True)]
    finally:
        conn.close()


def test_a_short_sleep_ends_on_its_own_and_says_so():
    hub = green.Hub()
    seen: list = []
    hub.run([(lambda: seen.append(hub.sleep(0.01, until=lambda: False)), ())])
    assert seen == [False]


def test_other_threads_keep_blocking_waits_while_a_hub_runs(pg_dsn):
    # The wait callback is process-wide while a hub runs: a connection used by
    # another thread meanwhile must work as usual (and errors stay errors).
    main_conn = _conn(pg_dsn, "txlab-green-other")
    inside = threading.Event()
    release = threading.Event()
    hub = green.Hub()

    def job() -> None:
        inside.set()
        hub.sleep(600, until=release.is_set)

    t = threading.Thread(target=hub.run, args=([(job, ())],), daemon=True)
    t.start()
    try:
        assert inside.wait(30)
        assert ext.get_wait_callback() is green._wait
        with main_conn.cursor() as cur:
            cur.execute("SELECT 'still here'")
            assert cur.fetchone() == ("still here",)
            with pytest.raises(psycopg2.errors.DivisionByZero):
                cur.execute("SELECT 1 / 0")
    finally:
        release.set()
        hub.wake()
        t.join(30)
        main_conn.close()
    assert not t.is_alive() and ext.get_wait_callback() is None


def _run_and_thread_names(pg_dsn, **kwargs):
    """A bank-transfer `atomic` run, and the names of the txlab-worker* threads it started."""
    names: list[str] = []
    original = threading.Thread.start

    def start(self):
        names.append(self.name)
        return original(self)

    threading.Thread.start = start
    try:
        result = run("bank-transfer", pg_dsn, strategy="atomic", **kwargs)
    finally:
        threading.Thread.start = original
    return result, [n for n in names if n.startswith("txlab-worker")]


def test_a_run_uses_threads_when_another_library_owns_the_wait_callback(pg_dsn):
    # gevent or psycogreen installed their own callback: txlab leaves it alone and
    # runs a thread per worker; the verdicts are the same.
    from psycopg2.extras import wait_select

    ext.set_wait_callback(wait_select)
    try:
        assert not green.available()
        result, names = _run_and_thread_names(pg_dsn, workers=3, transactions=60, seed=3)
        assert ext.get_wait_callback() is wait_select
    finally:
        ext.set_wait_callback(None)
    assert result.ok and result.run.outcomes.committed + result.run.outcomes.declined == 60
    assert names == ["txlab-worker-0", "txlab-worker-1", "txlab-worker-2"]


def test_a_run_puts_its_workers_on_one_thread(pg_dsn):
    result, names = _run_and_thread_names(pg_dsn, workers=5, transactions=100, seed=4)
    assert result.ok and names == ["txlab-workers"]
    assert {a.worker for a in result.history.attempts} == set(range(5))
    assert ext.get_wait_callback() is None


def test_a_socket_ready_while_its_worker_sleeps_is_parked_then_watched_again(pg_dsn):
    # A NOTIFY reaches A's socket while A sleeps: the hub takes the socket out of
    # its epoll (else it would spin on it), and A's next query arms it again.
    a, b = _conn(pg_dsn, "txlab-green-listen"), _conn(pg_dsn, "txlab-green-notify")
    hub = green.Hub()
    woke = threading.Event()
    seen: list = []

    def listener() -> None:
        with a.cursor() as cur:
            cur.execute("LISTEN txlab_green_test")
            seen.append("listening")
            hub.sleep(600, until=woke.is_set)
            cur.execute("SELECT 'after the sleep'")
            seen.append(cur.fetchone()[0])

    def notifier() -> None:
        fd = a.fileno()
        with b.cursor() as cur:
            while "listening" not in seen:  # A's LISTEN first (each round trip lets A go on)
                cur.execute("SELECT 1")
            cur.execute("NOTIFY txlab_green_test")
            for _ in range(10_000):  # each round trip gives the hub a look at A's socket
                if fd not in hub._watch:
                    seen.append("parked")
                    break
                cur.execute("SELECT 1")
        woke.set()
        hub.wake()

    try:
        t = threading.Thread(target=hub.run, args=([(listener, ()), (notifier, ())],),
                             daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive()
        assert seen == ["listening", "parked", "after the sleep"]
        a.poll()
        assert [n.channel for n in a.notifies] == ["txlab_green_test"]
    finally:
        a.close()
        b.close()


def test_a_hub_that_fails_stops_the_run_with_its_error(pg_dsn, monkeypatch):
    # The workers catch their own errors; were the hub's loop itself to fail, the run
    # must end with that error, not wait forever for workers nobody resumes.
    def broken(self):
        raise RuntimeError("the hub's loop failed")

    monkeypatch.setattr(green.Hub, "_serve", broken)
    with pytest.raises(RuntimeError, match="the hub's loop failed"):
        run("bank-transfer", pg_dsn, strategy="atomic", workers=3, duration_s=30, seed=5)
    assert ext.get_wait_callback() is None


def test_wake_after_the_hub_is_done_writes_nowhere(tmp_path):
    # Its pipe is closed then, and the pipe's fd numbers go to the next files opened.
    hub = green.Hub()
    pipe_end = hub._wake_w
    hub.run([(lambda: None, ())])
    files = []
    try:
        while not files or files[-1].fileno() < pipe_end:  # a file with that number now
            files.append(open(tmp_path / f"file-{len(files)}", "wb"))  # noqa: SIM115
        assert files[-1].fileno() == pipe_end
        hub.wake()
    finally:
        for f in files:
            f.close()
    assert all(p.read_bytes() == b"" for p in tmp_path.iterdir())


def test_time_sleep_in_a_worker_gives_way_and_stays_itself_elsewhere():
    # A scenario that pauses with time.sleep instead of tx.think: while one worker
    # sleeps the other goes on, as with a thread each. Any other thread's time.sleep
    # (here the test's own, while the hub runs) is the plain one, and it comes back.
    import time

    original = time.sleep
    steps: list[str] = []
    running, done = threading.Event(), threading.Event()

    def worker(name: str) -> None:
        steps.append(f"{name} sleeps")
        time.sleep(0.05)
        steps.append(f"{name} woke")
        if name == "A":
            with pytest.raises(ValueError):
                time.sleep(-1)  # as time.sleep says it
            running.set()
            while not done.is_set():  # sleeps on the hub until the test is done looking
                time.sleep(0.01)

    t, errors = _hub_in_thread([(worker, ("A",)), (worker, ("B",))])
    try:
        assert running.wait(60)
        assert time.sleep is not original  # replaced while the hub runs ...
        time.sleep(0.01)  # ... and yet a plain sleep in any other thread
    finally:
        done.set()
    t.join(60)
    assert not t.is_alive() and not errors, errors
    assert steps[:2] == ["A sleeps", "B sleeps"]  # B started while A slept
    assert sorted(steps[2:]) == ["A woke", "B woke"]
    assert time.sleep is original  # put back when the hub is done


def test_a_wait_hands_the_thread_straight_to_the_next_worker(pg_dsn):
    # Every statement a worker sends waits once for its answer. A central loop would
    # take two greenlet switches per wait (worker -> loop -> next worker); the hub
    # passes the thread straight on (one switch), or keeps it when the waiting
    # worker is itself the next ready one (none). Starting and ending a job adds two,
    # and an answer that arrives in pieces (a loaded machine) makes a wait of two.
    import greenlet

    conns = [_conn(pg_dsn, f"txlab-green-pass-{i}") for i in range(3)]
    statements = 40
    switches = [0]
    answers: list[int] = []

    def count(event, args) -> None:
        if event in ("switch", "throw"):
            switches[0] += 1

    def worker(conn) -> None:
        with conn.cursor() as cur:
            for i in range(statements):
                cur.execute("SELECT %s", (i,))
                answers.append(cur.fetchone()[0])

    previous = greenlet.settrace(count)
    try:
        green.Hub().run([(worker, (c,)) for c in conns])
    finally:
        greenlet.settrace(previous)
        for c in conns:
            c.close()
    sent = statements * len(conns)
    assert sorted(answers) == sorted(list(range(statements)) * len(conns))
    assert switches[0] < 1.5 * sent, (switches[0], sent)  # a central loop: over 2 * sent
