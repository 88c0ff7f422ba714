"""`python -m txlab` and the `txlab` command.

Loading the CLI takes a moment; an interrupt (Ctrl-C, SIGTERM, SIGHUP) that comes
meanwhile (or while the options are parsed, or after the command's own handling
ended) ends txlab with 130 and one line, not a traceback. Once a
command runs, txlab.signals and the CLI's error handling take over.
"""

import signal
import sys


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    # SIGTERM and SIGHUP mean what Ctrl-C means, from here on: while the CLI loads, and
    # after a command's own handling (txlab.signals) has put back what it found.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _interrupt)
    try:
        from txlab.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("txlab: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
