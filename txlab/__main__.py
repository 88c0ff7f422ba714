"""`python -m txlab` and the `txlab` command.

Loading the CLI takes a moment; an interrupt that comes meanwhile (or while the
options are parsed) ends txlab with 130 and one line, not a traceback. Once a
command runs, txlab.signals and the CLI's error handling take over.
"""

import sys


def main() -> None:
    try:
        from txlab.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("txlab: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
