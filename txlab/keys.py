"""Single key presses from a terminal, for step mode.

`with Keys() as keys:` puts the terminal in cbreak mode (no line buffering, no
echo, so a key pressed while a step runs does not garble the output; Ctrl-C
still interrupts) and restores its settings when the block ends, however it
ends: SIGTERM and SIGHUP raise KeyboardInterrupt inside the block, so `finally`
blocks (the terminal's settings, the demo's sessions and teardown) still run.
"""

from __future__ import annotations

import os
import select
import sys
from contextlib import contextmanager

from txlab import signals
from txlab.errors import UsageError

NEXT, BACK, QUIT = "next", "back", "quit"
_KEYS = {
    "\n": NEXT, "\r": NEXT, " ": NEXT, "n": NEXT, "\x1b[C": NEXT,  # Enter, space, n, right arrow
    "b": BACK, "p": BACK, "\x7f": BACK, "\x1b[D": BACK,  # b, p, Backspace, left arrow
    "q": QUIT, "\x1b": QUIT, "\x04": QUIT,  # q, Esc, Ctrl-D
}


class Keys:
    """Reads NEXT, BACK or QUIT from a terminal; refuses a stream that is not one."""

    def __init__(self, stream=None):
        self.stream = sys.stdin if stream is None else stream
        try:
            self.fd = self.stream.fileno()
            tty = os.isatty(self.fd)
        except (AttributeError, ValueError, OSError):
            tty = False
        if not tty:
            raise UsageError("--step reads single key presses and needs a terminal on standard "
                             "input; run it in a terminal (tmux works), not through a pipe or "
                             "a file")

    def __enter__(self) -> Keys:
        self._mode = _cbreak(self.fd)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)

    def discard(self) -> None:
        """Forget keys pressed while a step ran (a step that waits for a lock, or for
        deadlock detection, takes a while): each press answers a prompt it saw. Call
        it before printing the prompt, so that no press made after it is lost."""
        import termios

        try:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except (OSError, termios.error):
            pass

    def read(self) -> str:
        """The next key press that means something: NEXT, BACK or QUIT."""
        while True:
            key = _read_key(self.fd)
            if key == "":
                return QUIT  # end of input
            action = _KEYS.get(key.lower() if len(key) == 1 else key)
            if action:
                return action


def _read_key(fd: int) -> str:
    first = os.read(fd, 1)
    if not first:
        return ""
    if first != b"\x1b":
        return first.decode("utf-8", "replace")
    seq = first  # an escape sequence (arrow keys) arrives at once; a lone Esc does not
    while len(seq) < 3 and select.select([fd], [], [], 0.05)[0]:
        seq += os.read(fd, 1)
    return seq.decode("utf-8", "replace")


@contextmanager
def _cbreak(fd: int):
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    with signals.handled():  # txlab's one signal path (the CLI enters it too)
        try:
            tty.setcbreak(fd, termios.TCSANOW)
            yield
        finally:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
