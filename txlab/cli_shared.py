"""What every txlab command shares: one option vocabulary and one way to print.

The vocabulary (docs/cli.md, "Options that mean the same everywhere"):

- `-h/--help` on every command; `--no-color` on every command (and before it).
- `--format FORMAT` and `-o/--output FILE` on every command that prints a report;
  `text` is the readable format everywhere, `json` the one for programs.
- Durations carry their unit in the name: seconds (`-s`) for how long txlab runs
  or waits, milliseconds (`-ms`) for what happens inside a transaction or a
  PostgreSQL setting. Older spellings (`--duration`, `--step-timeout`,
  `--time-limit`) keep working as hidden aliases.
- `-i` is the isolation level, `-s` the strategy, `-p` a scenario knob, `-w`
  workers, `-n` transactions, `-d` the duration, wherever they appear.

Printing: `out_term(output)` says how the report may look (the terminal's width
and colour, or plain text at COLUMNS/80 for `-o FILE`), `emit` writes it (and
then the command's other files: the --html page, check's plots), and
`err` writes a message to standard error wrapped to its width, with its label
coloured on a terminal. `whole_writes()` (once, by the CLI) makes every write to
standard output all or an error, and `pipe_closed()` ends a command whose reader
left (`| head`): exit 141, nothing said.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable

import click

from txlab import paths, term
from txlab.errors import EXIT_BROKEN_PIPE, EXIT_RUNTIME, TxlabError

NO_COLOR_KEY = "txlab.no_color"
CONTEXT = {"help_option_names": ["-h", "--help"]}
# The last lines of every command's exit codes (after an interrupt, run and matrix say
# more: cli.py).
EXIT_130 = "  130  interrupted (Ctrl-C, SIGTERM or SIGHUP)"
EXIT_141 = "  141  the output pipe was closed early (e.g. piped into head)"


# ---------------------------------------------------------------- colour and width


def _no_color(ctx, param, value):
    if value:
        ctx.find_root().meta[NO_COLOR_KEY] = True
    return value


def no_color_param() -> click.Option:
    return click.Option(["--no-color"], is_flag=True, expose_value=False, is_eager=True,
                        callback=_no_color,
                        help="Plain text even on a terminal (so does the NO_COLOR variable).")


def _color_refused() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(NO_COLOR_KEY))


def stdout_term() -> term.Term:
    return term.detect(sys.stdout, no_color=_color_refused())


def stderr_term() -> term.Term:
    return term.detect(sys.stderr, no_color=_color_refused())


def out_term(output: str | None) -> term.Term:
    """How a report may look: the terminal's, or plain (COLUMNS, else 80) for -o FILE."""
    if output:
        return term.detect(io.StringIO(), no_color=True)
    return stdout_term()


def emit(text: str, output: str | None, what: str = "report",
         then: Iterable[Callable[[], None]] = ()) -> None:
    """The report to FILE (-o) or standard output, then the command's other files:
    `then`, functions that write them (write_html, check's plots), each called
    whatever became of the report and of the others, so that no failure takes
    another file with it.

    Files are written whole (paths.write_whole): one that cannot be written (a full
    disk) is left as it was, never empty or cut short. A FILE that cannot be written
    gets the report on standard output instead. Each failure is said on standard
    error, and the last one ends the command (a TxlabError: exit 3). When standard
    output itself fails (a full disk, a closed pipe), the other files are still
    written before that error ends the command (exit 3, or 141 for the pipe)."""
    failures: list[str] = []
    if output:
        try:
            paths.write_whole(output, text)
        except OSError as exc:
            click.echo(text, nl=False, color=True)  # not lost: here it is
            failures.append(f"cannot write the {what} to {output}: {exc.strerror or exc}"
                            " (it went to standard output instead)")
        else:
            err(f"{what} written to {output}", None)
    else:
        try:
            click.echo(text, nl=False, color=True)
        except OSError:  # standard output failed (a full disk, the reader gone): the
            _then(then, failures)  # other files are still written, then it ends the command
            for message in failures:
                err(message)
            raise
    _then(then, failures)
    for message in failures[:-1]:
        err(message)
    if failures:
        raise TxlabError(failures[-1])


def _then(writes: Iterable[Callable[[], None]], failures: list[str]) -> None:
    """emit's other files, each whatever became of the others; a failure goes to
    `failures`, for emit to say."""
    for write in writes:
        try:
            write()
        except TxlabError as exc:
            failures.append(str(exc))


def whole_writes() -> None:
    """Standard output over a buffered writer when Python left it raw (PYTHONUNBUFFERED,
    `python -u`). Over a raw file, a text stream ignores a write that the file takes
    only in part (CPython gh-85393): a report bigger than a pipe's buffer, whose
    reader leaves (`| head`), was cut there silently and txlab exited 0, never
    seeing the closed pipe; a signal in the middle of a write cut it too. A buffered
    writer writes it all or raises (BrokenPipeError: exit 141). Still unbuffered as
    far as anyone can tell: each line is written at once (click.echo flushes too)."""
    out = sys.stdout
    raw = getattr(out, "buffer", None)
    if not isinstance(out, io.TextIOWrapper) or not isinstance(raw, io.RawIOBase):
        return
    out.flush()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=out.encoding,
                                  errors=out.errors, line_buffering=True, write_through=True)


def pipe_closed() -> None:
    """The reader of standard output left (`txlab ... | head`): exit 141, as a shell
    reports a writer SIGPIPE ended, and say nothing."""
    drop_output()
    sys.exit(EXIT_BROKEN_PIPE)


def drop_output() -> None:
    """Standard output cannot be written (its reader left, the disk is full): it goes
    to /dev/null from now on, so that what is still buffered cannot fail again when
    Python flushes it at exit (`Exception ignored ...`, exit 120)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (a test's captured output)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def flushed(code):
    """`code`, once standard output is flushed (what a command left in its buffer):
    141 instead if its reader has gone, 3 if it cannot be written."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pipe_closed()
    except OSError as exc:
        drop_output()
        err(f"cannot write the output: {exc.strerror or exc}")
        return EXIT_RUNTIME
    return code


def write_html(path: str, text: str) -> None:
    """An HTML page (--html FILE), written whole; one that cannot be written is an
    error (exit 3) and leaves the file as it was. Callers hand it to `emit`, which
    writes it after the report, whatever became of the report."""
    try:
        paths.write_whole(path, text)
    except OSError as exc:
        raise TxlabError(f"cannot write the html page to {path}: {exc.strerror or exc}") from None
    err(f"html page written to {path}", None)


def html_writer(path: str | None, page: Callable[[], str]) -> list[Callable[[], None]]:
    """For emit's `then`: write the page `page()` makes to `path`, if one was given."""
    return [lambda: write_html(path, page())] if path else []


# ---------------------------------------------------------------- messages


def err(message: str, label: str | None = "error") -> None:
    """`txlab: LABEL: message` on standard error, wrapped to its width."""
    from rich.text import Text

    t = stderr_term()
    head = f"txlab: {label}:" if label else "txlab:"
    # Wrapped here, a long word (a path, a URL) whole on a line of its own: rich would
    # fold it mid-word, and a copied path would then hold a line break.
    line = Text(term.wrapped(f"{head} {message}", t, fold=False))
    if label:
        line.stylize(term.STYLES.get(label, term.STYLES["error"]), len("txlab: "), len(head))
    click.echo(term.to_text(line, t, soft_wrap=True), nl=False, err=True, color=True)


def show_click_error(exc: click.ClickException) -> None:
    """click's usage errors, wrapped to the width and with -h as the hint."""
    from rich.text import Text

    t = stderr_term()
    parts = []
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        parts.append(ctx.get_usage())
        if ctx.command.get_help_option(ctx) is not None:
            parts.append(f"Try '{ctx.command_path} -h' for help.")
        parts.append("")
    body = Text()
    body.append("Error:", style=term.STYLES["error"])
    body.append(" " + exc.format_message())
    text = "\n".join(term.wrapped(p, t, hang=2) for p in parts)
    click.echo((text + "\n" if parts else "") + term.to_text(body, t), nl=False, err=True,
               color=True)


# ---------------------------------------------------------------- option vocabulary


class AliasedOption(click.Option):
    """An option with older spellings that still work but are not shown in --help."""

    def __init__(self, *args, hidden_aliases: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_aliases = tuple(hidden_aliases)
        self.opts = [*self.opts, *self.hidden_aliases]

    def get_help_record(self, ctx):
        shown = self.opts
        self.opts = [o for o in shown if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


class FormatChoice(click.Choice):
    """--format: the command's formats; older names (table, pretty) map to `text`."""

    def __init__(self, choices, aliases: dict[str, str] | None = None):
        super().__init__(list(choices), case_sensitive=False)
        self.aliases = aliases or {}

    def convert(self, value, param, ctx):
        value = self.aliases.get(str(value).lower(), value)
        return super().convert(value, param, ctx)


def format_option(formats=("text", "json"), aliases: dict[str, str] | None = None,
                  help: str = "Output format."):
    return click.option("--format", "fmt", type=FormatChoice(formats, aliases), default=formats[0],
                        show_default=True, help=help)


def output_option(what: str = "report"):
    return click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                        metavar="FILE",
                        help=f"Write the {what} to FILE (plain text, no colour) instead of "
                             "standard output.")


def seconds_option(name: str, old: str | None, short: str | None = None, **kwargs):
    """A duration in seconds: --NAME-s, with --NAME (the old spelling) as a hidden alias."""
    decls = [f"--{name}-s", *([short] if short else [])]
    dest = name.replace("-", "_")
    return click.option(*decls, dest, cls=AliasedOption, hidden_aliases=(old,) if old else (),
                        metavar="SECONDS", **kwargs)


# ---------------------------------------------------------------- shell completion


def _complete(items, incomplete):
    from click.shell_completion import CompletionItem

    return [CompletionItem(n, help=h) for n, h in items if n.startswith(incomplete)]


def complete_scenarios(ctx, param, incomplete):
    from txlab import scenario

    try:
        found = scenario.discover(ctx.params.get("scenario_path") or ())
    except Exception:  # completion must never fail loudly
        return []
    return _complete(((n, s.summary) for n, s in sorted(found.items())), incomplete)


def complete_strategies(ctx, param, incomplete):
    from txlab import scenario

    try:
        found = scenario.discover(ctx.params.get("scenario_path") or ())
        # the scenario typed before -s: parsed, or still in ctx.args while completing
        typed = [ctx.params.get("scenario"), *(ctx.params.get("names") or ()), *ctx.args]
        pool = [found[n] for n in typed if n in found] or list(found.values())
    except Exception:
        return []
    seen: dict[str, str] = {}
    for s in pool:
        for st in s.strategies:
            seen.setdefault(st.name, st.help)
    return _complete(sorted(seen.items()), incomplete)


def complete_levels(ctx, param, incomplete):
    from txlab.db import LEVELS

    items = [(k, v.sql) for k, v in LEVELS.items()]
    if param.name in ("levels", "isolation") and ctx.command.name in ("matrix", "demo"):
        items.append(("all", "every level"))
    return _complete(items, incomplete)


def complete_demos(ctx, param, incomplete):
    try:
        from txlab.interleave import demo

        names = list(demo.catalog())
    except Exception:
        return []
    out = _complete(((n, "") for n in names), incomplete)
    if "/" in incomplete or incomplete.endswith(".spec") or incomplete.startswith("."):
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type="file")]
    return out


def complete_terms(ctx, param, incomplete):
    from txlab import glossary

    try:
        entries = glossary.entries()
    except Exception:
        return []
    return _complete(((e.term, e.title) for e in entries), incomplete)
