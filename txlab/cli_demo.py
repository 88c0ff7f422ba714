"""`txlab demo` and `txlab acid`: thin commands over txlab.interleave and txlab.acid."""

from __future__ import annotations

import os
import sys

import click

from txlab import cli_types as bounded
from txlab import errors, names, server
from txlab.cli_shared import (
    EXIT_130,
    EXIT_141,
    complete_demos,
    complete_levels,
    emit,
    err,
    format_option,
    html_writer,
    out_term,
    output_option,
    seconds_option,
    stderr_term,
)
from txlab.cli_shared import AliasedOption as _AliasedOption

DEFAULT_MAX_PERMUTATIONS = 200  # a spec without permutation lines: more is refused
DEFAULT_STEP_TIMEOUT_S = 30.0


def _step_timeout_default() -> float:
    """isolationtester cancels a step after 2 x PG_TEST_TIMEOUT_DEFAULT seconds (180
    unset); txlab's own default is 30 s, unless that variable asks for the tester's."""
    try:
        tester = int(os.environ.get("PG_TEST_TIMEOUT_DEFAULT", ""))
    except ValueError:
        return DEFAULT_STEP_TIMEOUT_S
    if tester <= 0:
        return DEFAULT_STEP_TIMEOUT_S
    return float(min(2 * tester, bounded.MAX_PG_MS // 1000))  # what a PostgreSQL timeout holds


EXIT_HELP = """\b
Exit codes:
  0    ran; no outcome differs from the demo's `expect` metadata (or
       nothing expected; an expected `anomaly` in a spec without a witness
       cannot be judged: its verdict says CANNOT TELL)
  1    an outcome differs from the demo's `expect` metadata
  2    usage error (unknown demo, bad spec, bad option)
  3    database or runtime error, or an output that could not be written
       (a full disk): -o's report then goes to standard output, --html
       is still written
""" + EXIT_130 + "\n" + EXIT_141


def _dsn_option(f):
    return click.option(
        "--dsn", metavar="URL",
        help="PostgreSQL URL or key=value DSN (else TXLAB_DSN, DATABASE_URL, the embedded server).",
    )(f)


def _schema(ctx, param, value):
    from txlab import db

    try:
        return db.check_schema_name(value)
    except errors.UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def _term(output: str | None = None):
    """What the output can show: the terminal's width and colour (not with --no-color or
    NO_COLOR), or plain text COLUMNS (else 80) wide for -o FILE."""
    return out_term(output)


def _announce(url: str) -> None:
    err("started a temporary embedded PostgreSQL server for this run; it stops at the end "
        "(`txlab server start` keeps one running)", None)


def _notice(line: str) -> None:
    click.echo(f"txlab: {line}", err=True)


@click.command("demo", epilog=EXIT_HELP)
@click.argument("name", required=False, shell_complete=complete_demos)
@click.option("--isolation", "-i", metavar="LEVEL|all", shell_complete=complete_levels,
              help="Run the sessions' plain BEGIN at this level (read-committed, repeatable-read, "
                   "serializable, read-uncommitted, or `all` for the four side by side, or a "
                   "list such as rc,ser). "
                   "Default: the server's default_transaction_isolation. `all` is refused for "
                   "a spec whose every session names its own level (it would run the same at "
                   "each).")
@click.option("--permutation", "-P", metavar='"s1a s2a ..."', cls=_AliasedOption,
              hidden_aliases=("-p",),
              help="Run this permutation instead of the spec's (markers like s2a(*) allowed).")
@format_option(("text", "transcript", "json"), {"pretty": "text"},
               "text: classroom timeline and verdict; transcript: exactly what PostgreSQL's "
               "isolationtester prints; json: events and verdicts as data.")
@output_option()
@click.option("--all", "all_", is_flag=True,
              help="Run every built-in demo at every level and print the matrix.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              metavar="FILE",
              help="Also write one self-contained HTML page: a step player per level with the "
                   "committed table state after each step (with --all: the matrix, each cell "
                   "linking to its player).")
@click.option("--list", "list_", is_flag=True, help="List the built-in demos.")
@click.option("--show", "show", is_flag=True,
              help="Print NAME's spec (a built-in demo or a file) instead of running it: a "
                   "starting point to copy.")
@click.option("--new", "new", metavar="FILE",
              help="Write a commented template spec to FILE (a runnable double booking) and "
                   "exit; it never overwrites a file.")
@click.option("--step", "step", is_flag=True,
              help="Step mode: wait for a key before each step (Enter/space: next, b: back, "
                   "q: quit) and show who waits for whom and the tables after each step; after "
                   "the verdict, b goes back to the last step. Needs a terminal.")
@click.option("--timelines", is_flag=True,
              help="With --isolation all: print each level's timeline before the side-by-side "
                   "table (by default the table stands alone).")
@seconds_option("step-timeout", "--step-timeout",
                type=bounded.seconds(min=0.1, max=bounded.MAX_PG_MS // 1000),
                help="Cancel a step that has not finished after this long (it is reported, "
                     f"never a hang) [default: {DEFAULT_STEP_TIMEOUT_S:g}; twice "
                     "PG_TEST_TIMEOUT_DEFAULT when that is set, as isolationtester].")
@click.option("--max-permutations", type=click.IntRange(min=1),
              help="Refuse specs without permutation lines that have more interleavings"
                   f" [default: {DEFAULT_MAX_PERMUTATIONS}; none with --format transcript,"
                   " which runs them all, as isolationtester does].")
@_dsn_option
@click.option("--schema", default="txlab_demo", show_default=True, callback=_schema,
              help="Schema txlab creates (and empties before each demo) for the spec's tables; "
                   "txlab touches nothing outside it (what the spec's own SQL creates elsewhere, a"
                   " role, is the spec's teardown's to drop).")
def demo(name, isolation, permutation, fmt, output, all_, html_file, list_, show, new, step, timelines,
         step_timeout, max_permutations, dsn, schema):
    """Run a step-by-step demo: NAME from the catalog (see --list), an anomaly's
    everyday name (lost-update, write-skew, dirty-read ...: the demo that shows it),
    or a .spec file in PostgreSQL's isolation-tester format.

    \b
    Examples:
      txlab demo p4 --isolation all
      txlab demo write-skew -i all         (the same as g2-item)
      txlab demo g2-item -i serializable --format transcript
      txlab demo --show p4 > my.spec       (a built-in spec to copy)
      txlab demo --new my.spec             (a commented template)
      txlab demo my.spec -i all
      txlab demo p4 -i rc --step           (one step per key press)
      txlab demo my-case.spec -P "s1a s2a s1c s2c"
      txlab demo --all
    """
    if step_timeout is None:
        step_timeout = _step_timeout_default()
    from txlab import paths
    from txlab.interleave import demo as demos
    from txlab.interleave import render

    paths.check_outputs({"--output": output, "--html": html_file},
                        reads=name if name and name.endswith(".spec") else None)
    fmt = "pretty" if fmt == "text" else fmt  # the demo renderer's name for the text view
    if new:
        if name or show or all_ or list_:
            raise click.UsageError("--new FILE writes a template and exits; give it alone")
        path = demos.write_template(new)
        err(f"wrote {path}; run it with `txlab demo {path} -i all`, then make it your own",
            None)
        return
    if show:
        if not name:
            raise click.UsageError("--show needs a demo NAME (see --list) or a .spec file")
        emit(_demo_path(name).read_text(), output, "spec")
        return
    if list_:
        from txlab.interleave import spec as specs

        rows = [(key, demos.parse_meta(specs.load(path)).title or "")
                for key, path in demos.catalog().items()]
        click.echo(render.render_list(rows, _term()), nl=False)
        return
    if all_:
        if name or permutation or isolation:
            raise click.UsageError("--all runs the whole catalog at every level; "
                                   "give no NAME, --isolation or --permutation with it")
        if fmt == "transcript":
            raise click.UsageError("--all prints a matrix: use --format text or json")
        if step or timelines:
            raise click.UsageError(f"--all prints the matrix of the whole catalog; "
                                   f"{'--step' if step else '--timelines'} is for one demo "
                                   "(txlab demo NAME -i rc --step)")
        with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
            matrix = demos.run_matrix(database.dsn, step_timeout, schema,
                                      step_states=bool(html_file))
        from txlab.html import demo as demo_html

        emit(render.render_matrix(matrix, fmt, _term(output)), output,
             then=html_writer(html_file, lambda: demo_html.matrix_page(
                 render.matrix_json(matrix), [render.to_json(r) for r in matrix.results])))
        sys.exit(errors.EXIT_VIOLATED if matrix.mismatches else errors.EXIT_OK)
    if not name:
        raise click.UsageError("give a demo NAME or a .spec file, or --all or --list")
    # Validate everything before starting a server.
    path = _demo_path(name)
    from txlab.interleave import spec as specs

    parsed = specs.load(path)
    demos.parse_meta(parsed)
    if permutation:
        specs.parse_permutation(parsed, permutation)
    levels = demos.levels_for(isolation)
    pinned = demos.pinned_sessions(parsed) if len(levels) > 1 else []
    if pinned:  # the side-by-side columns would all run the levels the steps name
        raise errors.UsageError(
            f"every session of {path} ({', '.join(pinned)}) sets its own isolation level, so "
            f"--isolation {isolation} would run the same thing at every level it names; run it "
            "without --isolation, or write a plain BEGIN in its steps to compare levels")
    if max_permutations is None:
        max_permutations = sys.maxsize if fmt == "transcript" else DEFAULT_MAX_PERMUTATIONS
    if not permutation and not parsed.permutations:
        count = specs.count_permutations(parsed)
        if count > max_permutations:
            raise errors.UsageError(
                f"{path} has no permutation lines and {count} interleavings; pick one with "
                "--permutation or raise --max-permutations")
    if step and html_file:
        raise click.UsageError("--step is interactive; --html writes the page of a whole run: "
                               "give one of them")
    if step:
        return _step_mode(path, isolation, permutation, "json" if output else fmt, step_timeout,
                          dsn, schema)
    for w in parsed.warnings:
        err(w, "warning")
    if isolation:
        for where in demos.explicit_levels(parsed):
            err(f"{where} sets its own isolation level; --isolation only changes what a plain "
                "BEGIN gets", "warning")
    from txlab.interleave.driver import SetupFailed

    with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
        try:
            result = demos.run_demo(str(path), database.dsn, isolation, permutation, step_timeout,
                                    max_permutations, schema, step_states=bool(html_file))
        except SetupFailed as exc:
            # isolationtester has printed the run up to its failed setup when it exits
            if fmt == "transcript" and exc.partial is not None and len(levels) == 1:
                from txlab.interleave import transcript

                emit(transcript.render(exc.partial), output)
            raise
    for lr in result.levels:  # what the run itself found (a damaged schema set aside)
        for w in lr.run.warnings[len(parsed.warnings):]:
            err(w, "warning")
    from txlab.html import demo as demo_html

    emit(render.render(result, fmt, _term(output), timelines or None), output,
         then=html_writer(html_file, lambda: demo_html.page(render.to_json(result))))
    for lr in result.levels:
        for w in (w for r in lr.run.runs for w in r.warnings):
            err(w, "warning")
        if fmt == "transcript":  # the other formats say it in the report
            for r in lr.run.runs:
                if r.left_open:
                    err(demos.left_open_note(r.left_open), "warning")
    unexpected = any(v.as_expected is False for lr in result.levels for v in lr.verdicts)
    sys.exit(errors.EXIT_VIOLATED if unexpected else errors.EXIT_OK)


def _step_mode(path, isolation, permutation, fmt, step_timeout, dsn, schema):
    from txlab.interleave import demo as demos
    from txlab.interleave import stepmode
    from txlab.keys import Keys

    if fmt != "pretty":
        raise click.UsageError("--step shows the classroom view; give no --format or -o with it")
    if len(demos.levels_for(isolation)) > 1:
        raise click.UsageError("--step runs one isolation level at a time; pick one with -i")
    keys = Keys()  # refuses when standard input is not a terminal, before any server starts
    term = _term()
    with keys, server.open_database(dsn, os.environ, announce=_announce,
                                     notice=_notice) as database:
        result = stepmode.run(str(path), database.dsn, isolation, permutation, step_timeout,
                              schema, keys, lambda text: click.echo(text, nl=False), term)
    unexpected = any(v.as_expected is False for lr in result.levels for v in lr.verdicts)
    sys.exit(errors.EXIT_VIOLATED if unexpected else errors.EXIT_OK)



@click.command("acid", epilog="""\b
Exit codes:
  0    every property held
  1    a property did not hold
  2    usage error (e.g. durability on a server txlab did not start)
  3    database or runtime error, or an output that could not be written
       (a full disk): -o's report then goes to standard output
""" + EXIT_130 + "\n" + EXIT_141)
@click.argument("part", default="all", metavar="[PART]",
                type=click.Choice(["atomicity", "consistency", "isolation", "durability", "all"]))
@click.option("--yes", "-y", is_flag=True,
              help="Crash and restart the persistent server for durability without asking.")
@format_option(("text", "json"))
@output_option()
@_dsn_option
def acid(part, yes, fmt, output, dsn):
    """Show A, C, I and D on a real PostgreSQL, with a short narrative for each.

    \b
    atomicity    a transfer whose second statement fails, and one whose session
                 is killed half-way, leave no partial effect
    consistency  CHECK, FOREIGN KEY and UNIQUE refuse an invalid state; the
                 transaction rolls back
    isolation    the lost-update and write-skew demos at READ COMMITTED and
                 SERIALIZABLE
    durability   commit rows, crash the server (pg_ctl stop -m immediate),
                 restart: committed rows survive, the in-flight ones do not.
                 Interrupted, it still starts the crashed server again.
                 Only on an embedded server txlab started (not with --dsn);
                 on the persistent one (`txlab server start`) only after a
                 yes (asked on a terminal, or --yes).
    all          each of them in turn (the default)

    Works in its own schema, txlab_acid, and drops it afterwards.
    """
    from txlab import acid as acid_lib
    from txlab import paths

    paths.check_outputs({"--output": output})  # before any server starts
    with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
        if part == "durability" and database.embedded is None:
            acid_lib.durability(database)  # raises the explanation
        crash = _may_crash(part, database, yes)
        experiments = acid_lib.run(part, database, crash)
        skipped = part == "all" and (database.embedded is None or not crash)
    emit(acid_lib.render(experiments, skipped, fmt, out_term(output)), output)
    sys.exit(errors.EXIT_OK if all(e.held for e in experiments) else errors.EXIT_VIOLATED)


def _may_crash(part: str, database, yes: bool) -> bool:
    """Ask before crashing a server that outlives this command (the persistent one)."""
    from txlab import acid as acid_lib

    if not acid_lib.crashes(part, database) or "persistent" not in database.source or yes:
        return True
    question = (f"durability crashes and restarts {database.source}; anything connected to it "
                "loses its connection.")
    if not sys.stdin.isatty():
        raise errors.UsageError(f"{question} Pass --yes to allow it, or stop it first "
                                "(`txlab server stop`): then txlab starts a temporary one.")
    from txlab import term

    # wrapped to the terminal, "Go on? [y/N]:" on a line of its own (click adds the [y/N])
    asked = term.wrapped(f"txlab: {question}", stderr_term()) + "\nGo on?"
    if click.confirm(asked, default=False, err=True):
        return True
    if part == "durability":
        raise errors.UsageError("durability not run: the persistent server was left alone")
    err("durability skipped: the persistent server was left alone", None)
    return False


def _demo_path(name: str):
    """The spec NAME names (names.demo); its note, if any, to stderr."""
    path, note = names.demo(name)
    if note:
        err(note, None)
    return path
