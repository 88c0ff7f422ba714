"""`python -m txlab` and the `txlab` command.

Loading the CLI takes a moment; an interrupt (Ctrl-C, SIGTERM, SIGHUP) that comes
meanwhile (or while the options are parsed, or after the command's own handling
ended) ends txlab with 130 and one line, not a traceback. Once a
command runs, txlab.signals and the CLI's error handling take over. Once its exit
code is decided, interrupts are ignored: they can only spoil that code (signals.settle).
"""

import signal
import sys

from txlab import signals  # small: only the standard library

_SEEN: list = []  # signals that arrived while the CLI loaded


def _interrupt(signum, frame):
    _SEEN.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> None:
    sys.stderr.write("txlab: interrupted\n")
    sys.exit(130)


def main() -> None:
    signals.OWN_PROCESS = True  # this process is txlab's own: signals.settle may act
    # SIGTERM and SIGHUP mean what Ctrl-C means, from here on: while the CLI loads, and
    # after a command's own handling (txlab.signals) has put back what it found.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _interrupt)
    # Ctrl-C too while loading: an interrupt raised inside an extension's import (ssl,
    # under psycopg2) can be swallowed there; the flag still ends txlab after it.
    default_int = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if default_int:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        try:
            try:
                from txlab.cli import main as cli_main
            except BaseException:
                if _SEEN:
                    _interrupted()
                raise
            if default_int:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            if _SEEN:
                _interrupted()
            cli_main()
        except KeyboardInterrupt:
            _interrupted()
    except SystemExit:
        # The exit code is decided and the output written: an interrupt from here on can
        # only spoil the code (Python's shutdown puts a Python-level handler back to the
        # default action: a late SIGTERM ended txlab with -15), so they are ignored.
        signals.settle()
        raise


if __name__ == "__main__":
    main()
