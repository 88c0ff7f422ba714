"""`txlab check`: name every anomaly in a saved history, explain it, judge it.

Thin: parse options, one call to txlab.checker.check, one render, an exit code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from txlab import cli_types as bounded
from txlab import errors
from txlab.cli_shared import (
    EXIT_130,
    EXIT_141,
    emit,
    err,
    format_option,
    html_writer,
    out_term,
    output_option,
    seconds_option,
)

CHECK_EXIT_HELP = """\b
Exit codes:
  0    no anomaly that the model forbids (verdict valid, or unknown:
       a search timed out, or the history gave no dependency graph
       to search, as Elle's empty transaction graph; the report says
       which)
  1    an anomaly that the model forbids was found (verdict invalid)
  2    usage error (unreadable or malformed history: the message names
       the file and line; unknown model)
  3    an output (-o, --html, --plots, standard output) could not be
       written (a full disk): the message names it; -o's report then goes
       to standard output, and the other outputs are still written
""" + EXIT_130 + "\n" + EXIT_141


@click.command("check", epilog=CHECK_EXIT_HELP)
@click.argument("history_file", metavar="HISTORY", type=click.Path(dir_okay=False))
@click.option("--model", "-m", metavar="MODEL",
              help="read-uncommitted | read-committed | snapshot-isolation | serializable | "
                   "strict-serializable, or Elle's strong-session-X and strong-X (`txlab "
                   "explain strong-session`), spelt as run's -i takes a level (serialisable, "
                   "READ_COMMITTED, rc, si). Default: what the history's isolation level "
                   "provides; for an Elle history, strict-serializable (Elle's default).")
@click.option("--isolation", "-i", metavar="LEVEL",
              help="A PostgreSQL level, judged by the model it provides: READ COMMITTED -> "
                   "read-committed, REPEATABLE READ -> snapshot-isolation, SERIALIZABLE -> "
                   "serializable. The spellings run's -i takes (rc, serialisable, si ...).")
@format_option(("text", "json"))
@output_option()
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write one self-contained HTML page: verdict, classes, each example's "
                   "cycle drawn, each cyclic component's dependency graph on demand.")
@click.option("--plots", type=click.Path(file_okay=False), metavar="DIR",
              help="Write one Graphviz .dot per example cycle to DIR (and .svg if `dot` exists).")
@click.option("--max-examples", default=3, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="Explained examples per anomaly class.")
@seconds_option("time-limit", "--time-limit", default=10.0, show_default=True,
                type=bounded.seconds(max=None),
                help="Cycle search time per strongly connected component; past it: unknown.")
@click.option("--process/--no-process", default=None,
              help="Add process edges (find -process cycles); default: only for a model that "
                   "forbids them (strict-serializable, strong-*).")
@click.option("--realtime/--no-realtime", default=None,
              help="Add realtime edges (find -realtime cycles); default: only for a model "
                   "that forbids them (strict-serializable, strong-X).")
@click.option("--wfr-keys/--no-wfr-keys", default=True, show_default=True,
              help="Elle rw-register: within a transaction, writes follow reads (a read of a "
                   "then a write of b orders a before b). Elle's default is off.")
@click.option("--sequential-keys", is_flag=True,
              help="Elle rw-register: each key is sequentially consistent, so each process's "
                   "order orders its versions (Elle's sequential-keys?).")
@click.option("--linearizable-keys", is_flag=True,
              help="Elle rw-register: each key is linearizable, so real-time order orders its "
                   "versions (Elle's linearizable-keys?).")
@click.option("--garbage-reads/--no-garbage-reads", default=True, show_default=True,
              help="Elle histories: report a read of a value no transaction wrote (Elle does "
                   "not).")
def check(history_file, model, isolation, fmt, output, html_file, plots, max_examples, time_limit,
          process, realtime, wfr_keys, sequential_keys, linearizable_keys, garbage_reads):
    """Check a saved HISTORY for isolation anomalies (G0, G1a-c, G-single, G2-item, ...).

    HISTORY is a file written by `txlab run --history`, or an Elle rw-register or
    list-append history in Jepsen's JSON form (one op per line, or a JSON array) or
    EDN (history.edn). The format is recognised from the content.

    Example: txlab check run.jsonl --isolation "REPEATABLE READ" --plots plots/
    """
    from txlab import checker, paths

    if model and isolation:
        raise click.UsageError("give --model or --isolation, not both")
    paths.check_outputs({"--output": output, "--html": html_file}, reads=history_file)
    from txlab import memory
    from txlab.checker import segments

    opts = dict(max_examples=max_examples, time_limit=time_limit, process=process,
                realtime=realtime, graphs=bool(html_file), wfr_keys=wfr_keys,
                sequential_keys=sequential_keys, linearizable_keys=linearizable_keys,
                garbage_reads=garbage_reads)
    # A history this machine cannot hold whole is checked in parts when it can be cut
    # (txlab's own, checker/segments.py); else whole, with a warning (asked for explicitly).
    short = memory.shortfall(history_file, per_byte=memory.ELLE_BYTES_PER_FILE_BYTE)
    try:
        try:
            result = checker.check(history_file, model, isolation=isolation,
                                   segment=segments.SEGMENT if short else None,
                                   whole=not short, **opts)
        except checker.NotInParts:
            err(f"warning: this history may be {short}; the check may swap or be stopped "
                "by the kernel", None)
            result = checker.check(history_file, model, isolation=isolation, **opts)
    except checker.HistoryFormatError as exc:
        raise errors.UsageError(f"cannot check {exc}") from None
    except ValueError as exc:  # unknown model or isolation level
        raise click.BadParameter(str(exc)) from None
    from txlab.html import check as check_page

    def plotted() -> None:
        written = write_plots(result, Path(plots))
        err(f"{written} written to {plots}", None)

    emit(checker.render(result, fmt, out_term(output)), output,
         then=[*html_writer(html_file, lambda: check_page.page(result.to_dict())),
               *([plotted] if plots else [])])
    if result.verdict == checker.UNKNOWN:
        from txlab.checker.render import unknown_words
        err(f"verdict unknown: {unknown_words(result.to_dict())}"
            + (" (see --time-limit-s)" if result.unknown else ""), None)
    sys.exit(errors.EXIT_VIOLATED if result.verdict == checker.INVALID else errors.EXIT_OK)


def write_plots(result, folder: Path) -> str:
    """One .dot per example cycle in `folder` (and its .svg, if Graphviz's `dot` is
    there), each written whole; what was written, in words. A file that cannot be
    written (a full disk) stops there: a TxlabError naming it (exit 3), the file as
    it was before."""
    from txlab import paths

    dot = shutil.which("dot")
    files = 0
    counts: dict = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for kind, text in result.plots:
            counts[kind] = counts.get(kind, 0) + 1
            path = folder / f"{kind.replace(' ', '-')}-{counts[kind]}.dot"
            paths.write_whole(path, text)
            files += 1
            if dot:
                _svg(dot, path)
    except OSError as exc:
        raise errors.TxlabError(f"cannot write the plots to {exc.filename or folder}: "
                                f"{exc.strerror or exc} ({files} written)") from None
    return f"{files} .dot file{'s' if files != 1 else ''}" + (" and .svg" if dot and files else "")


def _svg(dot: str, path: Path) -> None:
    """`path`'s .svg beside it, by Graphviz, written whole: a `dot` that fails (a full
    disk) leaves no .svg, or the old one."""
    svg = path.with_suffix(".svg")
    tmp = path.with_name(f".{svg.name}.{os.getpid()}.tmp")
    try:
        done = subprocess.run([dot, "-Tsvg", str(path), "-o", str(tmp)], check=False,
                              timeout=60)
        if done.returncode == 0:
            os.replace(tmp, svg)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
