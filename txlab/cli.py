"""The `txlab` command: parse options, make one library call, render, exit.

Exit codes: 0 every invariant held; 1 an invariant was violated; 2 usage error;
3 database or runtime error; 130 interrupted.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import click
import psycopg2

from txlab import __version__, cli_help, db, errors, names, paths, report, server, signals
from txlab import cli_types as bounded
from txlab import dsn as dsns
from txlab import scenario as scenarios
from txlab.cli_shared import (
    CONTEXT,
    EXIT_130,
    EXIT_141,
    complete_levels,
    complete_scenarios,
    complete_strategies,
    complete_terms,
    drop_output,
    emit,
    err,
    flushed,
    format_option,
    html_writer,
    no_color_param,
    out_term,
    output_option,
    pipe_closed,
    seconds_option,
    show_click_error,
    stderr_term,
    stdout_term,
    whole_writes,
)
from txlab.settings import DEFAULT_DURATION_S, DEFAULT_THINK_MS, RunSettings


def _exit_codes(interrupted: str, lost: str = "") -> str:
    """The exit codes, with what an interrupt leaves (`interrupted`: the lines after
    "130  interrupted (Ctrl-C, SIGTERM or SIGHUP);", indented to match) and what a
    lost server leaves (`lost`: lines after exit 3's, indented)."""
    return f"""\b
Exit codes:
  0    every invariant held (and no anomaly the level forbids)
  1    an invariant was violated, or an anomaly the level forbids occurred
  2    usage error (unknown scenario, bad option or scenario file)
  3    database or runtime error (cannot connect, server failure), or an
       output that could not be written (a full disk): -o's report then
       goes to standard output, the other files are still written
{lost}{EXIT_130}; {interrupted}
{EXIT_141}"""


EXIT_CODES_HELP = _exit_codes("run and matrix still print what\n"
                              "       they finished (the partial report)")
RUN_EXIT_CODES_HELP = _exit_codes("the partial report is\n       still printed")
MATRIX_EXIT_CODES_HELP = _exit_codes("the rows of the combinations\n"
                                     "       that finished are still printed, marked "
                                     "INTERRUPTED",
                                     "       (a server lost mid-matrix: the rows that finished "
                                     "are\n       still printed, marked SERVER LOST)\n")


def _err(message: str, label: str | None = None) -> None:
    err(message, label)


class Group(click.Group):
    """Turns txlab's errors into a message and an exit code, never a traceback;
    gives every command -h, --no-color and help that fits the width (txlab.cli_help);
    wraps usage errors to the width.

    SIGTERM and SIGHUP take Ctrl-C's path (txlab.signals), for every command.
    """

    context_class = cli_help.Context

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        whole_writes()
        stdout = sys.stdout
        try:
            try:
                rv = super().main(args, prog_name, complete_var, False, **extra)
            except click.exceptions.NoArgsIsHelpError as exc:  # `txlab`, `txlab server`: the help
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            except click.ClickException as exc:
                show_click_error(exc)
                sys.exit(exc.exit_code)
            except click.Abort as exc:
                if isinstance(exc.__cause__, KeyboardInterrupt) or _after_interrupt(exc):
                    _interrupted()  # a second interrupt while the first was being told
                _err("aborted", None)
                sys.exit(1)
            code = rv if isinstance(rv, int) else 0
        except SystemExit as exc:
            code = exc.code
            if sys.stdout is not stdout:  # click met a closed pipe (--version): its exit 1
                pipe_closed()             # and its stand-in for sys.stdout
        except BrokenPipeError:  # the help or a usage error, into a pipe closed early
            pipe_closed()
        sys.exit(flushed(code))

    def add_command(self, cmd, name=None):
        _give_common(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx):
        with signals.handled():
            return self._invoke(ctx)

    def _invoke(self, ctx):
        seen = dsns.given(ctx.args, os.environ)  # before click consumes the arguments

        def err(message: str, label: str | None = None) -> None:
            _err(dsns.mask_all(message, seen), label)

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `txlab ... | head`: the reader left; say nothing
            pipe_closed()
        except Exception as exc:
            message, label, code = _failure(exc)
            if isinstance(exc, OSError) and exc.filename is None:
                drop_output()  # standard output failed (a full disk): said once, here
            if _after_interrupt(exc):
                # The clean-up after an interrupt failed: the interrupt is what ended
                # the command (exit 130); what went wrong while stopping is a warning.
                err(f"while stopping: {message}", "warning")
                _interrupted()
            err(message, label)
            sys.exit(code)


def _interrupted() -> None:
    signals.settle()  # the command is over: another interrupt must not change its code
    _err("interrupted", None)
    sys.exit(errors.EXIT_INTERRUPTED)


def _after_interrupt(exc: BaseException) -> bool:
    """`exc` was raised while an interrupt was being handled (in an `except` or
    `finally` that a KeyboardInterrupt went through)."""
    seen = set()
    cause = exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _failure(exc: Exception) -> tuple[str, str, int]:
    """An error in words: (message, label, exit code)."""
    if isinstance(exc, errors.TxlabError):
        return str(exc), "error", exc.exit_code
    if isinstance(exc, psycopg2.Error):
        return db.first_line(exc), "database error", errors.EXIT_RUNTIME
    if isinstance(exc, OSError):
        return _os_error(exc), "error", errors.EXIT_RUNTIME
    if os.environ.get("TXLAB_DEBUG"):
        raise exc
    return (f"{type(exc).__name__}: {exc} (set TXLAB_DEBUG=1 for a traceback)",
            "internal error", errors.EXIT_RUNTIME)


def _os_error(exc: OSError) -> str:
    """A failed write in words: which file, or else the output (standard output, the
    only file txlab writes without naming it: `txlab run > /full/disk`)."""
    if exc.errno in paths.FULL:
        return f"cannot write {exc.filename or 'the output'}: {exc.strerror}"
    return str(exc)


def _give_common(cmd: click.Command) -> None:
    """Every command (and subcommand) takes --no-color and -h, as the group does (its own
    context settings, so -h works however the command's context is made), and formats
    its help with txlab.cli_help."""
    if not any(p.name == "no_color" for p in cmd.params):
        cmd.params.append(no_color_param())
    for name, value in CONTEXT.items():
        cmd.context_settings.setdefault(name, value)
    cmd.context_class = cli_help.Context
    for sub in getattr(cmd, "commands", {}).values():
        _give_common(sub)


@click.group(cls=Group, epilog=EXIT_CODES_HELP, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="txlab")
def cli():
    """txlab: a transaction and concurrency lab for PostgreSQL.

    Run concurrent workloads at any isolation level and see what really happens:
    commits, rollbacks by SQLSTATE, anomalies, and whether invariants held.

    The database: --dsn, else TXLAB_DSN, else DATABASE_URL, else the persistent
    embedded server if `txlab server start` is running, else a temporary embedded
    PostgreSQL started for the run.

    Output fits the terminal (else COLUMNS, else 80 columns) and is coloured
    only on a terminal (never with NO_COLOR or --no-color). Every term a report
    prints is explained by `txlab explain TERM`; shell completion: see
    docs/cli.md.
    """


_give_common(cli)  # --no-color before the command name, too


# ---------------------------------------------------------------- shared options


def _isolation(ctx, param, value):
    try:
        return db.parse_isolation(value)
    except errors.UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def _params(ctx, param, values):
    out = []
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r}: expected key=value")
        k, _, val = v.partition("=")
        out.append((k.strip(), val.strip()))
    return tuple(out)


def _schema(ctx, param, value):
    try:
        return db.check_schema_name(value)
    except errors.UsageError as exc:
        raise click.BadParameter(str(exc)) from None


dsn_option = click.option(
    "--dsn", metavar="URL",
    help="PostgreSQL URL or key=value DSN (else TXLAB_DSN, DATABASE_URL, the embedded server).",
)
schema_option = click.option(
    "--schema", default="txlab", show_default=True, callback=_schema,
    help="Schema txlab creates and works in; it never touches anything outside it.",
)
def _scenario_folders(ctx, param, value):
    for path in value:  # a UsageError (exit 2) naming the option and the path
        scenarios.check_folder(path, "--scenario-path")
    return value


scenario_path_option = click.option(
    "--scenario-path", multiple=True, type=click.Path(), metavar="DIR",
    callback=_scenario_folders,
    help="Extra folder of scenario files (repeatable; also TXLAB_SCENARIO_PATH); one that "
         "does not exist is a usage error.",
)


def _announce(url: str) -> None:
    version = _embedded_version()
    _err(f"started a temporary embedded {version} server for this run; it stops at the end "
         "(`txlab server start` keeps one running between runs)")


isolation_option = click.option(
    "--isolation", "-i", default="read-committed", show_default=True, callback=_isolation,
    shell_complete=complete_levels, metavar="LEVEL",
    help="read-uncommitted | read-committed | repeatable-read | serializable "
         "(SQL spellings in any case, words joined by -, _, a space or nothing, serialisable, "
         "and ru/rc/rr/ser also work; si or snapshot is repeatable-read, PostgreSQL's "
         "snapshot isolation; `txlab check` takes the same).")
workers_option = click.option("--workers", "-w", default=8, show_default=True,
                              type=click.IntRange(1, 90),
                              help="Concurrent workers, one connection each.")
think_option = click.option(
    "--think-ms", default=DEFAULT_THINK_MS, show_default=True, type=bounded.think_ms(),
    metavar="MS", help="Pause inside each transaction between its reads and its writes.")
retries_option = click.option(
    "--retries", default=0, show_default=True, type=bounded.retries(), metavar="N",
    help="Retry a transaction aborted by 40001, 40P01 or a version conflict up to N times.")
param_option = click.option(
    "--param", "-p", "params", multiple=True, callback=_params, metavar="KEY=VALUE",
    help="Scenario knob (repeatable); see `txlab describe SCENARIO` for each knob's range.")
seed_option = click.option("--seed", type=int,
                           help="Random seed (random by default, always printed).")
deadlock_option = click.option(
    "--deadlock-timeout-ms", type=bounded.pg_ms(1), metavar="MS",
    help="deadlock_timeout on worker sessions (default: the server's, 1 s); "
         "needs a superuser, as the embedded server's user is.")
no_fail_option = click.option(
    "--no-fail", is_flag=True,
    help="Exit 0 even when an invariant was violated (a teaching run; errors still exit 2/3).")


def _embedded_version() -> str:
    try:
        out = subprocess.run([str(server.bin_dir() / "postgres"), "-V"], capture_output=True,
                             text=True, timeout=10).stdout
        return "PostgreSQL " + out.split()[-1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "PostgreSQL"


# ---------------------------------------------------------------- run


@cli.command(epilog=RUN_EXIT_CODES_HELP)
@click.argument("scenario", shell_complete=complete_scenarios)
@isolation_option
@click.option("--strategy", "-s", shell_complete=complete_strategies, metavar="STRATEGY",
              help="Concurrency-control strategy; see `txlab describe SCENARIO` "
                   "(default: the scenario's first).")
@workers_option
@seconds_option("duration", "--duration", "-d", type=bounded.seconds(),
                help=f"Run for this long (default {DEFAULT_DURATION_S:g} s unless --transactions; "
                     "at most a week).")
@click.option("--transactions", "-n", type=click.IntRange(min=1), metavar="N",
              help="Run exactly N transactions in all, then stop.")
@seed_option
@think_option
@retries_option
@param_option
@click.option("--allow-large-params", is_flag=True,
              help="Accept knob values above their sane maximum (e.g. millions of rows to "
                   "insert at setup).")
@format_option(report.FORMATS, {"table": "text"}, "Report format.")
@output_option()
@click.option("--history", "history_file", type=click.Path(dir_okay=False, writable=True),
              metavar="FILE", help="Write every attempt of every transaction as JSON lines "
                                   "(a regular file: the check reads it back; with --no-check "
                                   "a device or pipe will do).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write the report as one self-contained HTML page: timeline of every "
                   "attempt, rates, latency, invariants, anomalies drawn.")
@click.option("--lock-timeout-ms", default=10_000, show_default=True, type=bounded.pg_ms(),
              metavar="MS", help="lock_timeout on worker sessions (0 = wait forever).")
@click.option("--statement-timeout-ms", default=30_000, show_default=True,
              type=bounded.pg_ms(), metavar="MS",
              help="statement_timeout on worker sessions (0 = none).")
@deadlock_option
@click.option("--check/--no-check", "check", default=True, show_default=True,
              help="Check the history for anomalies (G0 ... G2-item) at the end.")
@no_fail_option
@seconds_option("progress-interval", "--progress-interval", type=bounded.seconds(max=None),
                help="Print a progress line every SECONDS to standard error, also when it "
                     "is not a terminal (as pgbench -P); a terminal otherwise gets one live "
                     "line.")
@seconds_option("reconnect-timeout", "--reconnect-timeout", default=30.0, show_default=True,
                type=bounded.seconds(max=None, min_open=False),
                help="When the server goes away mid-run, keep reconnecting this long before "
                     "giving up (exit 3, with the partial report and history).")
@dsn_option
@schema_option
@scenario_path_option
def run(scenario, isolation, strategy, workers, duration, transactions, seed, think_ms, retries,
        params, allow_large_params, fmt, output, history_file, html_file, lock_timeout_ms,
        statement_timeout_ms, deadlock_timeout_ms, check, no_fail, progress_interval,
        reconnect_timeout, dsn, schema, scenario_path):
    """Run SCENARIO (a name from `txlab list`, or a path to a scenario file).

    Example: txlab run bank-transfer --isolation serializable --retries 5
    """
    if duration and transactions:
        raise click.UsageError("give --duration-s or --transactions, not both")
    settings = RunSettings(
        scenario=scenario, seed=seed if seed is not None else secrets.randbelow(2**31),
        strategy=strategy, isolation=isolation, workers=workers,
        duration_s=None if transactions else (duration or DEFAULT_DURATION_S),
        transactions=transactions, think_ms=think_ms, retries=retries, params=params,
        schema=schema, scenario_path=tuple(scenario_path),
        statement_timeout_ms=statement_timeout_ms, lock_timeout_ms=lock_timeout_ms,
        deadlock_timeout_ms=deadlock_timeout_ms, check=check,
        allow_large_params=allow_large_params, history_path=history_file,
        reconnect_timeout_s=reconnect_timeout, keep_history=html_file is not None,
        dsn_option=dsn is not None,
    )
    found = names.scenario(settings.scenario, settings.scenario_path)
    # validate knobs and output files before starting any server
    found.params(dict(settings.params), allow_large=settings.allow_large_params)
    found.strategy(settings.strategy)
    paths.check_outputs({"--output": output, "--history": history_file, "--html": html_file})
    if history_file and check and not paths.regular_or_new(history_file):
        raise click.UsageError(
            f"--history {history_file} is not a regular file: the anomaly check reads the "
            "history back from it, which a device or a pipe cannot give. Give a file, or "
            "leave --history out (the check then uses a temporary file), or add --no-check")
    from txlab import progress as progress_mod
    from txlab import runner

    lost = None
    with server.open_database(dsn, os.environ, announce=_announce, notice=_err) as database:
        if not database.embedded or "persistent" in database.source:
            _err(f"database: {database.source} ({db.describe_target(database.dsn)})")
        line = progress_mod.Printer.for_stream(sys.stderr, progress_interval, settings)
        # From the run's start to the printed report, an interrupt is only noted: the
        # run stops and reports partially, however late it comes (txlab.signals).
        with signals.deferred() as interrupts:
            try:
                result = runner.run(settings, found, database.dsn, progress=line,
                                    interrupts=interrupts,
                                    notice=lambda m: _err(m, "warning"))
            except runner.RunFailed as exc:  # the server lost, the history not written
                lost, result = exc, exc.result
            finally:
                if line:
                    line.close()
            text = report.render(result, fmt, out_term(output))
            if history_file and result.history_error is None:
                _err(f"history: {result.history.count} attempts written to {history_file}")
            from txlab import timeline
            from txlab.html import run as run_page

            emit(text, output, then=html_writer(html_file, lambda: run_page.page(
                report.to_dict(result), timeline.attempt_records(result))))
    if lost is not None:
        _err(str(lost), "error")
        sys.exit(errors.EXIT_RUNTIME)
    if result.interrupted or interrupts:
        sys.exit(errors.EXIT_INTERRUPTED)
    failed = result.failed_verdict and not no_fail
    sys.exit(errors.EXIT_VIOLATED if failed else errors.EXIT_OK)



# ---------------------------------------------------------------- list


@cli.command("list")
@scenario_path_option
def list_(scenario_path):
    """List the scenarios (with their strategies and knobs), and where the demos are."""
    from txlab import describe as describe_mod

    problems: list = []
    found = scenarios.discover(scenario_path, problems=problems)
    for _, problem in problems:
        _err(f"skipped {problem}", "warning")
    click.echo(describe_mod.render_list(found, stdout_term(), scenario_path), nl=False)


@cli.command()
@click.argument("scenario", shell_complete=complete_scenarios)
@scenario_path_option
def describe(scenario, scenario_path):
    """Explain SCENARIO: story, invariants, strategies at each level, knobs."""
    from txlab import describe as describe_mod

    found = names.scenario(scenario, scenario_path)
    click.echo(describe_mod.render(found, stdout_term(),
                                   scenarios.command_words(scenario, scenario_path)), nl=False)


@cli.command()
@click.argument("term", nargs=-1, shell_complete=complete_terms)
@format_option(("text", "json"), help="text, or json (the entry as data).")
@output_option("explanation")
def explain(term, fmt, output):
    """Explain a TERM that txlab prints: an SQLSTATE (40001, 40P01 ...), an anomaly
    (lost update, G2-item ...), an isolation level, a strategy, report jargon
    (naive, model, rw edge ...), a verdict or banner (PREVENTED, CANNOT TELL, SERVER
    LOST ...) or a count's unit (group with a cycle). Without TERM: list every term.

    \b
    Examples:
      txlab explain 40001
      txlab explain lost update
      txlab explain rw edge

    Exit code 2 when the term is unknown (the closest matches are printed).
    """
    from txlab import glossary, glossary_view, paths

    paths.check_outputs({"--output": output})
    t = out_term(output)
    if not term:
        text = glossary_view.render_list(glossary.entries(), fmt, t)
    else:
        text = glossary_view.render_entry(glossary.lookup(" ".join(term)), fmt, t)
    emit(text, output, "explanation")


# ---------------------------------------------------------------- matrix


@cli.command(epilog=MATRIX_EXIT_CODES_HELP)
@click.argument("names", metavar="[SCENARIO]...", nargs=-1, shell_complete=complete_scenarios)
@click.option("--isolation", "-i", "levels", default="all", show_default=True,
              shell_complete=complete_levels, metavar="LEVEL[,...]|all",
              help="Comma-separated levels, or all (all in a list adds every level; each "
                   "level runs once).")
@click.option("--strategy", "-s", "strategies", default="all", show_default=True,
              shell_complete=complete_strategies, metavar="STRATEGY[,...]|all",
              help="Comma-separated strategy names, or all (all in a list adds every "
                   "strategy).")
@seconds_option("duration", "--duration", "-d", default=1.5, show_default=True,
                type=bounded.seconds(), help="Length of each run.")
@workers_option
@retries_option
@think_option
@param_option
@seed_option
@format_option(("text", "markdown", "json", "csv"), {"table": "text"}, "Matrix format.")
@output_option("matrix")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write the matrix as one self-contained HTML page (cells coloured by "
                   "verdict, declared-safe-but-violated cells called out).")
@deadlock_option
@no_fail_option
@seconds_option("reconnect-timeout", "--reconnect-timeout", default=30.0, show_default=True,
                type=bounded.seconds(max=None, min_open=False),
                help="When the server goes away mid-matrix, keep reconnecting this long before "
                     "giving up (exit 3, with the rows of the combinations that finished).")
@dsn_option
@schema_option
@scenario_path_option
def matrix(names, levels, strategies, duration, workers, retries, think_ms, params, seed, fmt,
           output, html_file, deadlock_timeout_ms, no_fail, reconnect_timeout, dsn, schema,
           scenario_path):
    """Run every scenario x strategy x isolation level briefly; one row each.

    Default: every scenario, every strategy, the four levels. A knob (-p) applies
    to the scenarios that have it. Exit code 1 when any combination violated an
    invariant, unless --no-fail. Progress goes to standard error: one updating
    line on a terminal, one line per combination otherwise.
    """
    from txlab import matrix as matrix_mod

    known = scenarios.discover(scenario_path)
    chosen = [_scenario(n, scenario_path) for n in names] or [known[k] for k in sorted(known)]
    try:
        level_list = matrix_mod.parse_levels(levels)
    except errors.UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--isolation") from None
    strategy_list = [x.strip() for x in strategies.split(",") if x.strip()]
    combos = matrix_mod.plan(chosen, strategy_list, level_list, params)
    paths.check_outputs({"--output": output, "--html": html_file})
    seed = seed if seed is not None else secrets.randbelow(2**31)
    base = RunSettings(scenario="", seed=seed, workers=workers, duration_s=duration,
                       retries=retries, think_ms=think_ms, params=params, schema=schema,
                       scenario_path=tuple(scenario_path), deadlock_timeout_ms=deadlock_timeout_ms,
                       reconnect_timeout_s=reconnect_timeout)
    _err(f"{len(combos)} combinations x {duration:g} s, seed {seed}")
    tty = sys.stderr.isatty()

    def progress(i, n, combo):
        s, strat, level = combo
        line = f"[{i + 1}/{n}] {s.name} {strat} {level.sql}"
        if tty:
            click.echo(f"\r\033[K{line}"[: stderr_term().width + 4], err=True, nl=False)
        else:
            click.echo(f"txlab: {line}", err=True)

    shown = False
    try:
        with server.open_database(dsn, os.environ, announce=_announce, notice=_err) as database:
            conn = db.connect(database.dsn)
            try:
                version = db.server_version(conn)
            finally:
                conn.close()
            failed, rows, interrupts = _matrix_cells(combos, base, database.dsn, progress, tty,
                                                     fmt, version, output, html_file)
            shown = True
    except KeyboardInterrupt:
        if shown:
            raise
        # before the first cell (the server starting, say): the matrix has no rows yet, and
        # says so in its usual shape (`[]` in json, the header in csv), as a later one does
        from txlab.html import matrix as matrix_page

        signals.settle()
        emit(matrix_mod.render([], fmt, "", out_term(output), planned=len(combos)), output,
             "matrix", then=html_writer(html_file, lambda: matrix_page.page(
                 [], "", matrix_mod.interrupted([], len(combos)))))
        _err(f"interrupted after 0 of {len(combos)} combinations")
        sys.exit(errors.EXIT_INTERRUPTED)
    if failed is not None:
        _err(str(failed), "error")
        sys.exit(errors.EXIT_RUNTIME)
    if interrupts:
        signals.settle()
        _err(f"interrupted after {len(rows)} of {len(combos)} combinations")
        sys.exit(errors.EXIT_INTERRUPTED)
    violated = any(not r.holds or r.forbidden for r in rows)
    sys.exit(errors.EXIT_VIOLATED if violated and not no_fail else errors.EXIT_OK)


def _matrix_cells(combos, base, dsn, progress, tty, fmt, version, output, html_file):
    """Run the matrix's cells and show them: (failed, rows, interrupts)."""
    from txlab import matrix as matrix_mod

    # From the first cell to the printed table, an interrupt is only noted: the
    # matrix stops after the running cell and prints the rows that finished.
    with signals.deferred() as interrupts:
        failed = None
        try:
            rows = matrix_mod.run_matrix(combos, base, dsn, progress, interrupts)
        except matrix_mod.MatrixFailed as exc:  # the server lost: the rows that finished
            failed, rows = exc, exc.rows
        finally:
            if tty:
                click.echo("\r\033[K", err=True, nl=False)
        from txlab.html import matrix as matrix_page

        emit(matrix_mod.render(rows, fmt, version, out_term(output), planned=len(combos),
                               failed=failed), output, "matrix",
             then=html_writer(html_file, lambda: matrix_page.page(
                 matrix_mod.to_dicts(rows), version,
                 matrix_mod.interrupted(rows, len(combos), failed))))
    return failed, rows, interrupts


def _scenario(ref, scenario_path):
    return names.scenario(ref, scenario_path)


# ---------------------------------------------------------------- server


@cli.group("server", cls=Group)
def server_group():
    """Manage a persistent embedded PostgreSQL so repeated runs skip the start-up.

    Its data lives under the user's cache directory (TXLAB_HOME overrides);
    `txlab run` uses it automatically while it is running.
    """


@server_group.command("start")
def server_start():
    """Start the persistent embedded server (initialising it the first time).

    An initdb that is interrupted leaves nothing behind: the next start
    initialises again.
    """
    pgdata = server.persistent_pgdata()
    if server.is_running(pgdata) and server.usable(pgdata):
        _err(f"already running: {server.url_for(pgdata)}")
        return
    _err(f"starting {_embedded_version()} in {pgdata} ...")
    try:
        server.start(pgdata, notice=_err)
    except KeyboardInterrupt:
        signals.settle()
        if not server.is_running(pgdata):
            raise
        # pg_ctl had started it when the interrupt came: say so, rather than a bare
        # "interrupted" with the server up and its URL unsaid
        _err(f"interrupted, but the server had started: {server.url_for(pgdata)} "
             "(`txlab server stop` stops it)")
        sys.exit(errors.EXIT_INTERRUPTED)
    click.echo(server.url_for(pgdata))


@server_group.command("stop")
def server_stop():
    """Stop the persistent embedded server."""
    pgdata = server.persistent_pgdata()
    if server.stop(pgdata):
        _err("stopped")
    else:
        _err("not running" + server.stale_note(pgdata))


@server_group.command("status")
def server_status():
    """Say whether the persistent server runs; exit 3 if it does not (or if its data
    directory is unfinished: an older txlab's initdb was interrupted).

    The URL is printed whole on a line of its own, so it can be copied (also by
    `txlab server url`).
    """
    from txlab import term

    pgdata = server.persistent_pgdata()
    t = stdout_term()
    running = server.is_running(pgdata)
    word = term.to_text(term.word("running" if running else "not running"), t).rstrip("\n")
    if running:
        # the URL alone on its line, from the first column (no label in front to
        # push it past a narrow terminal's edge, nothing to trim when it is copied)
        text = f"{word}; its URL:\n{server.url_for(pgdata)}\n  data: {pgdata}\n"
        problem = server.unusable(pgdata)
        if problem:
            text += term.wrapped(f"  but unusable: {problem}", t) + "\n"
            running = False
    else:
        stale = server.stale_note(pgdata).removeprefix("; ")
        text = (f"{word}\n  data: {pgdata}\n"
                + (term.wrapped(f"  {stale}", t) + "\n" if stale else "")
                + term.wrapped("  start it with `txlab server start`", t) + "\n")
    click.echo(text, nl=False)
    if not running:
        sys.exit(errors.EXIT_RUNTIME)


@server_group.command("url")
def server_url():
    """Print the persistent server's URL (for TXLAB_DSN or psql); exit 3 if not running."""
    pgdata = server.persistent_pgdata()
    url = server.url_for(pgdata) if server.is_running(pgdata) else None
    if not url:
        raise errors.DatabaseError("the persistent server is not running; start it with "
                                   "`txlab server start`")
    click.echo(url)


# ---------------------------------------------------------------- clean


@cli.command()
@dsn_option
@schema_option
def clean(dsn, schema):
    """Drop txlab's schema from the database, if txlab created it.

    Refused (naming them) when objects outside the schema depend on it, and while
    another txlab uses it. Uses --dsn, TXLAB_DSN, DATABASE_URL or the running
    persistent server; it never starts a server (a temporary server's schema
    vanishes with the server).
    """
    database = server.configured_dsn(dsn, os.environ) or server.persistent_if_running()
    if database is None:
        _err("no database to clean: no --dsn, TXLAB_DSN or DATABASE_URL, and the persistent "
             "server is not running (temporary servers leave nothing behind)")
        return
    dropped = db.drop_owned_schema(database.dsn, schema)
    _err(f"dropped schema {schema}" if dropped else f"no schema {schema}: nothing to do")


# ---------------------------------------------------------------- feature commands
# Feature modules define their click commands themselves; they are registered here.
from txlab.cli_demo import acid as _acid_command  # noqa: E402
from txlab.cli_demo import demo as _demo_command  # noqa: E402

cli.add_command(_demo_command)
cli.add_command(_acid_command)
from txlab.cli_check import check as _check_command  # noqa: E402

cli.add_command(_check_command)


def main() -> None:
    cli(prog_name="txlab")
