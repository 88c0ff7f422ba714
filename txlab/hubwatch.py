"""Say so when a worker keeps the workers' thread for itself.

The workers run as greenlets on one thread (txlab.green): a worker that blocks
the thread other than by waiting for the server (a threading.Lock another worker
holds, an HTTP call, another driver, a long computation) stops every worker, and
a lock can hang the run for good. The hub's loop turns at least once a second
while it runs; when it has not turned for HELD_S, the main thread looks at where
the hub's thread is (sys._current_frames) and says which worker holds it, and at
which line of the scenario.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

HELD_S = 5.0  # the hub's loop has not turned for this long: say so (once a run)
_TXLAB = os.path.dirname(os.path.abspath(__file__))
_STDLIB = os.path.dirname(os.__file__)


class Watch:
    """Looked at by the run's main thread at each tick (`look(now)`)."""

    def __init__(self, hub, notice: Callable[[str], None], worker_code) -> None:
        self.hub, self.notice, self.worker_code = hub, notice, worker_code
        self.turns = -1
        self.since = 0.0
        self.said = False

    def look(self, now: float) -> None:
        turns = self.hub.turns
        if turns != self.turns:
            self.turns, self.since = turns, now
            return
        if self.said or now - self.since < HELD_S:
            return
        self.said = True
        frame = sys._current_frames().get(self.hub.thread_id)
        if frame is not None:  # else the hub is gone: nothing to say
            self.notice(message(frame, now - self.since, self.worker_code))


def message(frame, seconds: float, worker_code) -> str:
    worker, where = _worker_and_line(frame, worker_code)
    who = f"worker {worker}" if worker is not None else "a worker"
    at = f" at {where}" if where else ""
    return (f"{who} has held the workers' thread for {seconds:.0f} s{at}, outside the "
            "database, so no other worker can run (a threading.Lock another worker holds? "
            "an HTTP call? another driver?). Pause with tx.think(); TXLAB_WORKER_THREADS=1 "
            "runs a thread per worker.")


def _worker_and_line(frame, worker_code) -> tuple[int | None, str | None]:
    """The worker whose code runs in `frame` (the local `w` of the runner's worker
    loop) and the innermost line outside txlab and the standard library."""
    worker = where = None
    f = frame
    while f is not None:
        name = os.path.abspath(f.f_code.co_filename)
        if where is None and not name.startswith((_TXLAB, _STDLIB)) and not _installed(name):
            where = f"{_short(name)}:{f.f_lineno}"
        if f.f_code is worker_code:
            worker = f.f_locals.get("w")
            break
        f = f.f_back
    return worker, where


def _installed(path: str) -> bool:
    """A library's file (SQLAlchemy, psycopg2, greenlet): not the scenario's line."""
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _short(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
