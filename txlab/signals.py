"""The one place txlab handles signals.

Ctrl-C (SIGINT) raises KeyboardInterrupt in the main thread, and every command
already turns that into its interrupt path: the run stops its workers and prints
the partial report, a setup statement is cancelled, a temporary server is stopped
and removed, and the exit code is 130. `handled()`, entered once by the CLI for
the whole command, makes SIGTERM and SIGHUP take exactly the same path.

`softened()` is for a library holding something that must be cleaned up (a
temporary server in a pytest session): SIGTERM and SIGHUP, where nobody handles
them, raise KeyboardInterrupt instead of ending the process on the spot.

`shielded()` defers these signals while a cleanup that must not be cut short runs
(stopping and removing a temporary server); one that arrives meanwhile is ignored:
the command is already finishing.

`deferred()` is for code that must finish what it started whenever the interrupt
comes (a run after its setup: stop the workers, write the history, report): the
signals are only noted, and the code polls `Interrupts` at points of its choosing.
Inside it, `interrupts.raising(...)` lets them raise KeyboardInterrupt again, once,
around a computation that cannot poll (the anomaly check). After it,
`interrupts.deliver()` hands the first one on to the caller (txlab.testing.run:
a library must not swallow the Ctrl-C or SIGTERM meant for the whole process).

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


# txlab's own command-line process (set by txlab.__main__), not a library's caller: only
# there may an ending command stop listening to interrupts for good (settle).
OWN_PROCESS = False
_settled = False


def settle() -> None:
    """txlab's own process is ending with its exit code decided (an interrupt was
    handled, say): Ctrl-C, SIGTERM and SIGHUP are ignored from now on, so that a
    second one cannot cut short the line that says so and turn exit 130 into click's
    "aborted" (exit 1). A no-op in anyone else's process (txlab.testing, CliRunner)."""
    global _settled
    if not OWN_PROCESS or threading.current_thread() is not threading.main_thread():
        return
    _settled = True
    for signum in INTERRUPTS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, signal.SIG_IGN)


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
        if not _settled:  # an ending process keeps ignoring them
            for signum, old in previous.items():
                signal.signal(signum, old)


class Interrupts:
    """What `deferred()` yields: how many interrupts came (`count`, truthy once one did)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None  # the first signal noted
        self._raise = False

    def __bool__(self) -> bool:
        return self.count > 0

    def _note(self, signum, frame) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum
        if self._raise:
            self._raise = False  # one KeyboardInterrupt; any later interrupt is only noted
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def raising(self, since: int) -> Iterator[None]:
        """Inside the block the next interrupt raises KeyboardInterrupt (at once if more
        than `since` came already); after it, and after the block, interrupts are only
        noted again. Enter it inside the `try` that catches KeyboardInterrupt: the
        exception can come from entering or leaving the block too."""
        self._raise = True
        try:
            if self.count > since:
                self._raise = False
                raise KeyboardInterrupt
            yield
        finally:
            self._raise = False

    def deliver(self) -> None:
        """After the `deferred()` block: send the first signal it noted again, to
        whatever handles it now. A library call that finished its run in spite of
        an interrupt gives it back to its caller this way: Ctrl-C raises
        KeyboardInterrupt there (pytest stops), SIGTERM and SIGHUP end the process
        unless the caller handles them."""
        if self.first is not None:
            signum, self.first = self.first, None
            signal.raise_signal(signum)


@contextlib.contextmanager
def deferred() -> Iterator[Interrupts]:
    """Ctrl-C, SIGTERM and SIGHUP are only counted inside the block (never raised):
    the code polls the `Interrupts` it is given. One handler stays installed for the
    whole block, so no signal can find a half-changed state."""
    interrupts = Interrupts()
    with _replaced(interrupts._note, INTERRUPTS):
        yield interrupts


def handled() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, inside the block."""
    return _replaced(_interrupt, (signal.SIGTERM, signal.SIGHUP))


@contextlib.contextmanager
def softened() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt inside the block where they would
    otherwise end the process on the spot (their handler is the default one), so
    that its `finally` runs: a temporary server is stopped, not left running in a
    pytest session that a CI runner terminates. A handler someone set (the CLI's,
    the application's) is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mine = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is signal.SIG_DFL]
    for signum in mine:
        signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum in mine:
            if signal.getsignal(signum) is _interrupt:  # not if someone set theirs meanwhile
                signal.signal(signum, signal.SIG_DFL)


def shielded() -> contextlib.AbstractContextManager[None]:
    """Ctrl-C, SIGTERM and SIGHUP do nothing inside the block (a short cleanup)."""
    return _replaced(lambda signum, frame: None, INTERRUPTS)
