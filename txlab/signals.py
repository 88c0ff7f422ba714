"""The one place txlab handles signals.

Ctrl-C (SIGINT) raises KeyboardInterrupt in the main thread, and every command
already turns that into its interrupt path: the run stops its workers and prints
the partial report, a setup statement is cancelled, a temporary server is stopped
and removed, and the exit code is 130. `handled()`, entered once by the CLI for
the whole command, makes SIGTERM and SIGHUP take exactly the same path.

`shielded()` defers these signals while a cleanup that must not be cut short runs
(stopping and removing a temporary server); one that arrives meanwhile is ignored:
the command is already finishing.

A signal that was ignored when txlab started (`nohup` ignores SIGHUP; a shell
starts background jobs with SIGINT ignored) stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _replaced(handler, signums) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; it is the one interrupted
        return
    previous = {}
    for signum in signums:
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or current is None:
            continue
        previous[signum] = current
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def handled() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, inside the block."""
    return _replaced(_interrupt, (signal.SIGTERM, signal.SIGHUP))


def shielded() -> contextlib.AbstractContextManager[None]:
    """Ctrl-C, SIGTERM and SIGHUP do nothing inside the block (a short cleanup)."""
    return _replaced(lambda signum, frame: None, INTERRUPTS)
