"""`python -m txlab` and the `txlab` command.

Loading the CLI takes a moment; an interrupt (Ctrl-C, SIGTERM, SIGHUP) that comes
meanwhile (or while the options are parsed, or after the command's own handling
ended) ends txlab with 130 and one line, not a traceback. Once a
command runs, txlab.signals and the CLI's error handling take over. Once its exit
code is decided, interrupts are ignored: they can only spoil that code (_settled).
"""

import signal
import sys

_SEEN: list = []  # signals that arrived while the CLI loaded


def _interrupt(signum, frame):
    _SEEN.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> None:
    sys.stderr.write("txlab: interrupted\n")
    sys.exit(130)


def _settled() -> None:
    """The exit code is decided and the output written: from here on an interrupt can
    only spoil the code. Python's shutdown puts a Python-level handler back to the
    default action, so a SIGTERM in its last milliseconds would end txlab killed by
    the signal (-15, no message) instead of with its code; an ignored signal is left
    ignored, and is lost at exit."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (OSError, ValueError):  # not the main thread, or no such signal here
            pass


def main() -> None:
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
            from txlab import signals

            signals.OWN_PROCESS = True
            if default_int:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            if _SEEN:
                _interrupted()
            cli_main()
        except KeyboardInterrupt:
            _interrupted()
    except SystemExit:
        _settled()
        raise


if __name__ == "__main__":
    main()
