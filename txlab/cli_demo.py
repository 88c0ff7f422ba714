"""`txlab demo` and `txlab acid`: thin commands over txlab.interleave and txlab.acid."""

from __future__ import annotations

import os
import sys

import click

from txlab import cli_types as bounded
from txlab import errors, server

EXIT_HELP = """\b
Exit codes:
  0    ran; every outcome as the catalog expects (or nothing expected)
  1    an outcome differs from the demo's `expect` metadata
  2    usage error (unknown demo, bad spec, bad option)
  3    database or runtime error"""


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


def _term():
    """What standard output can show (width, colour); --no-color wherever the CLI defines it."""
    from txlab import term

    ctx = click.get_current_context(silent=True)
    no_color = bool(ctx and ctx.find_root().meta.get("txlab.no_color"))
    while ctx is not None:
        no_color = no_color or bool(ctx.params.get("no_color"))
        ctx = ctx.parent
    return term.detect(no_color=no_color)


def _announce(url: str) -> None:
    click.echo("txlab: started a temporary embedded PostgreSQL server for this run; it stops "
               "at the end (`txlab server start` keeps one running)", err=True)


def _notice(line: str) -> None:
    click.echo(f"txlab: {line}", err=True)


@click.command("demo", epilog=EXIT_HELP)
@click.argument("name", required=False)
@click.option("--isolation", "-i", metavar="LEVEL|all",
              help="Run the sessions' plain BEGIN at this level (read-committed, repeatable-read, "
                   "serializable, read-uncommitted, or `all` for the four side by side). "
                   "Default: the server's default_transaction_isolation.")
@click.option("--permutation", "-p", metavar='"s1a s2a ..."',
              help="Run this permutation instead of the spec's (markers like s2a(*) allowed).")
@click.option("--format", "fmt", type=click.Choice(["pretty", "transcript", "json"]),
              default="pretty", show_default=True,
              help="pretty: classroom timeline and verdict; transcript: exactly what PostgreSQL's "
                   "isolationtester prints; json: events and verdicts as data.")
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
                   "q: quit) and show who waits for whom and the tables after each step. "
                   "Needs a terminal.")
@click.option("--timelines", is_flag=True,
              help="With --isolation all: print each level's timeline before the side-by-side "
                   "table (by default the table stands alone).")
@click.option("--step-timeout", default=30.0, show_default=True,
              type=bounded.seconds(min=0.1, max=bounded.MAX_PG_MS // 1000), metavar="SECONDS",
              help="Cancel a step that has not finished after this long (it is reported, "
                   "never a hang).")
@click.option("--max-permutations", default=200, show_default=True, type=click.IntRange(min=1),
              help="Refuse specs without permutation lines that have more interleavings.")
@_dsn_option
@click.option("--schema", default="txlab_demo", show_default=True, callback=_schema,
              help="Schema txlab creates (and empties before each demo) for the spec's tables; "
                   "nothing outside it is touched.")
def demo(name, isolation, permutation, fmt, all_, html_file, list_, show, new, step, timelines,
         step_timeout, max_permutations, dsn, schema):
    """Run a step-by-step demo: NAME from the catalog (see --list) or a .spec file
    in PostgreSQL's isolation-tester format.

    \b
    Examples:
      txlab demo p4 --isolation all
      txlab demo g2-item -i serializable --format transcript
      txlab demo --show p4 > my.spec       (a built-in spec to copy)
      txlab demo --new my.spec             (a commented template)
      txlab demo my.spec -i all
      txlab demo p4 -i rc --step           (one step per key press)
      txlab demo my-case.spec --permutation "s1a s2a s1c s2c"
      txlab demo --all
    """
    from txlab import html
    from txlab.interleave import demo as demos
    from txlab.interleave import render

    html.check_target(html_file)
    if new:
        if name or show or all_ or list_:
            raise click.UsageError("--new FILE writes a template and exits; give it alone")
        path = demos.write_template(new)
        click.echo(f"txlab: wrote {path}; run it with `txlab demo {path} -i all`, then make it "
                   "your own", err=True)
        return
    if show:
        if not name:
            raise click.UsageError("--show needs a demo NAME (see --list) or a .spec file")
        click.echo(demos.resolve(name).read_text(), nl=False)
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
            raise click.UsageError("--all prints a matrix: use --format pretty or json")
        with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
            matrix = demos.run_matrix(database.dsn, step_timeout, schema,
                                      step_states=bool(html_file))
        click.echo(render.render_matrix(matrix, fmt, _term()), nl=False)
        if html_file:
            from txlab.html import demo as demo_html

            _write_html(html_file, demo_html.matrix_page(
                render.matrix_json(matrix), [render.to_json(r) for r in matrix.results]))
        sys.exit(errors.EXIT_VIOLATED if matrix.mismatches else errors.EXIT_OK)
    if not name:
        raise click.UsageError("give a demo NAME or a .spec file, or --all or --list")
    # Validate everything before starting a server.
    path = demos.resolve(name)
    from txlab.interleave import spec as specs

    parsed = specs.load(path)
    demos.parse_meta(parsed)
    if permutation:
        specs.parse_permutation(parsed, permutation)
    demos.levels_for(isolation)
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
        return _step_mode(path, isolation, permutation, fmt, step_timeout, dsn, schema)
    for w in parsed.warnings:
        click.echo(f"txlab: warning: {w}", err=True)
    if isolation:
        for where in demos.explicit_levels(parsed):
            click.echo(f"txlab: warning: {where} sets its own isolation level; --isolation "
                       "only changes what a plain BEGIN gets", err=True)
    with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
        result = demos.run_demo(str(path), database.dsn, isolation, permutation, step_timeout,
                                max_permutations, schema, step_states=bool(html_file))
    click.echo(render.render(result, fmt, _term(), timelines or None), nl=False)
    if html_file:
        from txlab.html import demo as demo_html

        _write_html(html_file, demo_html.page(render.to_json(result)))
    for lr in result.levels:
        for w in (w for r in lr.run.runs for w in r.warnings):
            click.echo(f"txlab: warning: {w}", err=True)
    unexpected = any(v.as_expected is False for lr in result.levels for v in lr.verdicts)
    sys.exit(errors.EXIT_VIOLATED if unexpected else errors.EXIT_OK)


def _step_mode(path, isolation, permutation, fmt, step_timeout, dsn, schema):
    from txlab.interleave import demo as demos
    from txlab.interleave import stepmode
    from txlab.keys import Keys

    if fmt != "pretty":
        raise click.UsageError("--step shows the classroom view; give no --format with it")
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


def _write_html(path: str, text: str) -> None:
    from pathlib import Path

    Path(path).write_text(text, encoding="utf-8")
    click.echo(f"txlab: html page written to {path}", err=True)


@click.command("acid", epilog="""\b
Exit codes:
  0    every property held
  1    a property did not hold
  2    usage error (e.g. durability on a server txlab did not start)
  3    database or runtime error""")
@click.argument("part", default="all",
                type=click.Choice(["atomicity", "consistency", "isolation", "durability", "all"]))
@_dsn_option
def acid(part, dsn):
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
                 Only on an embedded server txlab started (not with --dsn).

    Works in its own schema, txlab_acid, and drops it afterwards.
    """
    from txlab import acid as acid_lib

    with server.open_database(dsn, os.environ, announce=_announce, notice=_notice) as database:
        if part == "durability" and database.embedded is None:
            acid_lib.durability(database)  # raises the explanation
        experiments = acid_lib.run(part, database)
        skipped = part == "all" and database.embedded is None
    click.echo(acid_lib.render(experiments, skipped), nl=False)
    sys.exit(errors.EXIT_OK if all(e.held for e in experiments) else errors.EXIT_VIOLATED)
