"""Classroom output: every command fits 80 and 200 columns; colour only on a terminal.

The width harness runs each command as a user would (in-process, standard output
and standard error not a terminal, COLUMNS set) and asserts that no line of
either stream is wider. The colour tests run a real txlab in a pseudo-terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
from click.testing import CliRunner
from ptyutil import on_pty as _on_pty
from rich.cells import cell_len

from txlab import glossary, glossary_view, term
from txlab.cli import cli

WIDTHS = (80, 200)


def _widest(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


@pytest.fixture
def at(pg_dsn, schema, tmp_path, monkeypatch):
    """at(width, *args) -> CliRunner result, with --dsn/--schema where a command takes them."""
    for name in ("TXLAB_DSN", "DATABASE_URL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # never the user's server; a short path, because paths and URLs are printed whole
    home = tempfile.mkdtemp(prefix="txh", dir="/tmp")
    monkeypatch.setenv("TXLAB_HOME", home)

    def run(width, *args, db=True):
        argv = list(args)
        if db:
            argv += ["--dsn", pg_dsn]
            if argv[0] in ("run", "matrix", "clean"):
                argv += ["--schema", schema]
        return CliRunner().invoke(cli, argv, env={"COLUMNS": str(width)},
                                  catch_exceptions=False)

    yield run
    shutil.rmtree(home, ignore_errors=True)


def _fits(result, width, what):
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert _widest(text) <= width, f"{what} {name} wider than {width}:\n{text}"
    assert "\x1b[" not in result.stdout + result.stderr, f"{what}: escape codes when piped"


@pytest.mark.parametrize("width", WIDTHS)
def test_run_reports_fit(at, width, tmp_path):
    history = tmp_path / f"h{width}.jsonl"
    violated = at(width, "run", "bank-transfer", "-n", "120", "-p", "accounts=3",
                  "--think-ms", "5", "--seed", "1", "--history", str(history))
    assert violated.exit_code == 1
    assert "lost update" in violated.stdout and "Example: lost update" in violated.stdout
    assert "overwritten" in violated.stdout  # the count says its unit (overwritten updates)
    _fits(violated, width, "run (violated)")
    aborts = at(width, "run", "bank-transfer", "-n", "60", "-p", "accounts=3", "--think-ms", "5",
                "-i", "serializable", "-s", "optimistic", "--retries", "1")
    assert "aborted:" in aborts.stdout
    _fits(aborts, width, "run (aborts)")
    # an outcome too long for its column goes on indented, never as a line of its own
    # that reads like another outcome ("(retryable)" under "read/write dependencies")
    import json

    from txlab import report_term
    from txlab import term as term_mod

    d = json.loads(at(width, "run", "bank-transfer", "-n", "20", "--format", "json").stdout)
    d["outcomes"]["aborted"] = {"40001-rw-dependencies": 1222, "40001-concurrent-update": 4857}
    for w in (66, width):
        text = report_term.render(d, term_mod.plain(w))
        table = text.split("\nOutcomes\n")[1].split("\n\n")[0].splitlines()[2:]
        starts = ("committed", "declined", "aborted", "retries", "failed", "unknown", "  ")
        assert all(line.startswith(starts) for line in table), table
        assert _widest(text) <= w
    assert "\n  (retryable)" in report_term.render(d, term_mod.plain(80))
    checked = at(width, "check", str(history), "-i", "serializable", db=False)
    assert checked.exit_code == 1 and "FORBIDDEN" in checked.stdout
    _fits(checked, width, "check")
    if width == 80:  # stacked: no room for a five-column invariants table
        assert "\n  verdict   VIOLATED" in violated.stdout
    else:
        assert "invariant " in violated.stdout and " verdict " in violated.stdout


@pytest.mark.parametrize("width", (60, 50))
def test_run_header_keeps_each_param_whole(at, width):
    """The params cell wraps between its key=value pairs, never inside one (it printed
    'initial_balance=' / '1000' and 'lock_order=sorte' / 'd' at 60 columns)."""
    r = at(width, "run", "bank-transfer", "-i", "ser", "-n", "20", "-p", "accounts=3",
           "--seed", "1")
    assert r.exit_code == 0, r.output
    _fits(r, width, "run")
    header = r.stdout.split("\nRun\n")[1].split("\n\n")[0]
    words = header.split()
    for param in ("accounts=3", "initial_balance=1000", "max_amount=100", "lock_order=sorted"):
        assert param in words, header
    for key in ("scenario", "strategy", "seed", "isolation", "retries allowed", "params"):
        assert f"{key}  " in header, header


@pytest.mark.parametrize("width", WIDTHS)
def test_catalogue_commands_fit(at, width):
    r = at(width, "list", db=False)
    assert "txlab demo --list" in " ".join(r.stdout.split())  # list points at the demos
    _fits(r, width, "list")
    for name in ("bank-transfer", "limited-stock-cart", "on-call", "room-booking",
                 "ticket-sales"):
        _fits(at(width, "describe", name, db=False), width, f"describe {name}")
    _fits(at(width, "explain", db=False), width, "explain")
    _fits(at(width, "server", "status", db=False), width, "server status")
    _fits(at(width, "clean"), width, "clean")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_explanation_fits(width):
    t = term.plain(width)
    for e in glossary.entries():
        assert _widest(glossary_view.render_entry(e, "text", t)) <= width, e.term


@pytest.mark.parametrize("width", WIDTHS)
def test_matrix_and_acid_fit(at, width):
    r = at(width, "matrix", "bank-transfer", "limited-stock-cart", "-s",
           "naive,for-update-unsorted", "-i", "rc,ser", "-d", "0.2", "-w", "3", "--no-fail")
    assert r.exit_code == 0, r.output
    assert "[1/6] bank-transfer naive READ COMMITTED" in r.stderr  # progress lines in a log
    _fits(r, width, "matrix")
    r = at(width, "acid")
    assert r.exit_code == 0 and "Skipped" in r.stdout
    _fits(r, width, "acid")


def _commands(cmd=cli, path=()):
    """Every command and subcommand of the click group, as its argv."""
    import click

    yield list(path)
    for name, sub in sorted(getattr(cmd, "commands", {}).items()) if isinstance(cmd, click.Group) else ():
        yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("width", (60, 40))
def test_every_help_fits_narrow_terminals(width):
    """`--help` at 60 and 40 columns: the pre-formatted blocks (exit codes, acid's parts,
    demo's examples) wrap too, their continuation lines under the description column."""
    argvs = list(_commands())
    assert ["server", "start"] in argvs and ["acid"] in argvs and len(argvs) > 12
    for argv in argvs:
        r = CliRunner().invoke(cli, [*argv, "--help"], env={"COLUMNS": str(width)})
        assert r.exit_code == 0, (argv, r.output)
        assert _widest(r.stdout) <= width, f"txlab {' '.join(argv)} --help:\n{r.stdout}"
    for argv, first, column in ((["--help"], "    1    an invariant", 9),
                                (["acid", "-h"], "  atomicity    a transfer", 15)):
        lines = CliRunner().invoke(cli, argv, env={"COLUMNS": str(width)}).stdout.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(first))
        hanging = lines[at + 1]  # the entry's next line, under its description
        assert hanging.startswith(" " * column) and hanging[column] != " ", lines[at:at + 3]
    demo = CliRunner().invoke(cli, ["demo", "-h"], env={"COLUMNS": str(width)}).stdout
    assert "\n    txlab demo --show p4 > my.spec\n        (a built-in spec to copy)\n" in demo
    # the real command, not only the test runner: COLUMNS reaches the help's width
    real = subprocess.run([sys.executable, "-m", "txlab", "matrix", "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": str(width)})
    assert real.returncode == 0 and _widest(real.stdout) <= width, real.stdout


def test_help_blocks_stay_as_written_when_they_fit():
    for width in (80, 200):
        out = CliRunner().invoke(cli, ["--help"], env={"COLUMNS": str(width)}).stdout
        assert "\n    1    an invariant was violated, or an anomaly the level forbids occurred\n" in out
        assert "\n    130  interrupted (Ctrl-C, SIGTERM or SIGHUP); run and matrix still print\n" \
               "         what they finished (the partial report)\n" in out
        demo = CliRunner().invoke(cli, ["demo", "-h"], env={"COLUMNS": str(width)}).stdout
        assert "\n    txlab demo --show p4 > my.spec       (a built-in spec to copy)\n" in demo


ERRORS = [
    ("run", "p4"), ("run", "serializable"), ("run", "bank-transfr"), ("demo", "bank-transfer"),
    ("run", "bank-transfer", "-i", "snapshot-serial"), ("run", "bank-transfer", "-s", "magic"),
    ("run", "bank-transfer", "-d", "1", "-n", "5"), ("explain", "lost-updte"),
    ("matrix", "-p", "nope=1"), ("check", "/no/such/history/file/with/a/rather/long/name.jsonl"),
    ("describe", "nope"), ("acid", "sideways"),
]


@pytest.mark.parametrize("width", WIDTHS)
def test_error_messages_fit(at, width):
    for args in ERRORS:
        r = at(width, *args, db=False)
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output
        _fits(r, width, " ".join(args))
    # unreachable database: exit 3, wrapped, password never printed
    r = CliRunner().invoke(cli, ["run", "bank-transfer", "-n", "5", "--dsn",
                                 "postgresql://alice:Sup3rSecret@127.0.0.1:1/a_database_name"],
                           env={"COLUMNS": str(width)})
    assert r.exit_code == 3 and "Sup3rSecret" not in r.output
    _fits(r, width, "unreachable database")


@pytest.mark.parametrize("width", WIDTHS)
def test_demo_outputs_fit(at, width):
    for args in (("demo", "--list"), ("demo", "p4"), ("demo", "p4", "-i", "all"),
                 ("demo", "deadlock", "-i", "read-committed")):
        r = at(width, *args, db=args[1] != "--list")
        assert r.exit_code == 0, (args, r.output)
        _fits(r, width, " ".join(args))


# ---------------------------------------------------------------- colour on a terminal


def test_colour_on_a_terminal_and_never_otherwise(pg_dsn, schema, tmp_path):
    rc, out = _on_pty(["explain", "40001"])
    assert rc == 0 and "\x1b[" in out and "serialization failure" in out
    assert _widest(_strip(out)) <= 80  # the terminal's width, not COLUMNS
    for extra, args in (({"NO_COLOR": "1"}, []), ({}, ["--no-color"]),
                        ({"NO_COLOR": ""}, [])):
        rc, out = _on_pty(["explain", "40001", *args], extra)
        assert rc == 0 and "serialization failure" in out and "\x1b[" not in out, (extra, args)
    rc, out = _on_pty(["--no-color", "list"])
    assert rc == 0 and "\x1b[" not in out
    piped = subprocess.run([sys.executable, "-m", "txlab", "explain", "40001"],
                           capture_output=True, text=True)
    assert piped.returncode == 0 and "\x1b" not in piped.stdout + piped.stderr

    # a run report: verdict words coloured on the terminal, a file written with -o plain
    report = tmp_path / "report.txt"
    args = ["run", "bank-transfer", "-n", "60", "-p", "accounts=2", "--think-ms", "5",
            "--dsn", pg_dsn, "--schema", schema]
    rc, out = _on_pty(args)
    assert rc == 1 and "VIOLATED" in out
    assert _coloured("VIOLATED") in out and _coloured("HOLDS") in out
    rc, out = _on_pty([*args, "-o", str(report)])
    assert rc == 1 and "report written to" in out
    text = report.read_text()
    assert "VIOLATED" in text and "\x1b" not in text
    rc, out = _on_pty([*args, "--no-color"])
    assert rc == 1 and "VIOLATED" in out and "\x1b[" not in out.replace("\x1b[K", "")
    # the demos' output too (rendered by txlab/interleave/render.py with the same styles)
    demo = ["demo", "p4", "-i", "read-committed", "--dsn", pg_dsn]
    rc, out = _on_pty(demo)
    assert rc == 0 and _coloured("ANOMALY") in out and _widest(_strip(out)) <= 80
    rc, out = _on_pty(demo, {"NO_COLOR": "1"})
    assert rc == 0 and "ANOMALY" in out and "\x1b[" not in out


def test_live_progress_line_fits_standard_errors_terminal(pg_dsn, schema, tmp_path):
    """`txlab run ... > file` in a 60-column terminal: the live line goes to standard
    error, a terminal, and is measured there (not on standard output, a file, nor by
    COLUMNS), so every rewrite fits in 59 columns and never wraps into a pile of lines."""
    args = ["run", "bank-transfer", "-i", "ser", "-d", "2", "-p", "accounts=3", "--retries", "3",
            "--dsn", pg_dsn, "--schema", schema]
    for env in ({}, {"COLUMNS": "200"}):
        with open(tmp_path / "report.txt", "w") as report:
            rc, err = _on_pty(args, env, columns=60, stdout=report)
        assert rc == 0, err
        assert "Invariants" in (tmp_path / "report.txt").read_text()
        rewrites = [_strip(s) for line in err.split("\n") for s in line.split("\r")]
        ticks = [s for s in rewrites if " s  committed " in s]
        assert len(ticks) > 3, err  # the live line was there, rewritten
        assert max(len(s) for s in rewrites) < 60, (env, [s for s in rewrites if len(s) >= 60])
        # whole parts only, never cut inside one: "aborted 1,6" would read as a count
        for tick in ticks:
            for part in tick.strip().split("  "):
                assert _PART.fullmatch(part), (part, tick)


_PART = re.compile(r"[\d.]+ s|committed [\d,]+ \([\d,]+ tps\)|(aborted|unknown|declined) [\d,]+"
                   r"|ETA [\d:]+|RECONNECTING \(\d+ workers\)"
                   r"|aborts by cause: [\w-]+ [\d,]+(, [\w-]+ [\d,]+)*(, \+\d+ more)?")


def _coloured(word: str) -> str:
    """WORD as the terminal view writes it: in its style, e.g. bold red VIOLATED."""
    styled = term.to_text(term.word(word), term.Term(80, True, True)).strip()
    assert styled != word and styled.startswith("\x1b[")
    return styled


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_every_anomaly_count_says_its_unit():
    from txlab.checker import models

    for a in models.ANOMALIES:
        unit = models.count_unit(a.name, 2)
        assert unit != "findings", a.name
        if a.family == "cycle":
            assert unit == "groups with a cycle" and models.count_unit(a.name, 1) == \
                "group with a cycle"
    assert models.count_unit("lost update", 5) == "overwritten updates"
    assert models.count_unit("G1a", 1) == "read"


def test_the_story_block_comes_first(pg_dsn, schema):
    """The text view prints whatever to_dict() holds under "story" and "next" at the top."""
    import json

    from txlab import report, report_term

    r = CliRunner().invoke(cli, ["run", "bank-transfer", "-s", "atomic", "-n", "20",
                                 "--format", "json", "--dsn", pg_dsn, "--schema", schema],
                           catch_exceptions=False)
    d = json.loads(r.stdout)
    d["story"] = ["All 20 transfers committed.", "No money vanished."]
    d["next"] = [{"command": "txlab run bank-transfer -s naive", "why": "the unsafe way"}]
    d["next_note"] = "Set TXLAB_DSN first."
    lines = report_term.render(d, term.plain(80)).splitlines()
    assert lines[2:9] == ["All 20 transfers committed. No money vanished.", "", "Try next:",
                          "  txlab run bank-transfer -s naive", "      the unsafe way",
                          "  Set TXLAB_DSN first.", ""]
    assert lines[9] == "Run"
    md = report.markdown(d)
    assert "All 20 transfers committed. No money vanished.\n\nTry next:" in md
    assert "- `txlab run bank-transfer -s naive`: the unsafe way\n\nSet TXLAB_DSN first." in md


def test_declined_row_says_its_count_once():
    """One reason: the row's count is that reason's (not repeated in the label);
    several reasons: each says its own count."""
    from txlab import report

    def rows(reasons):
        d = {"outcomes": {"committed": 5, "declined": sum(reasons.values()),
                          "declined_reasons": reasons, "aborted": {}, "retries": 0,
                          "failed": 0, "unknown": 0}}
        out = report.outcome_rows(d)
        i = next(i for i, r in enumerate(out) if r[0].startswith("declined"))
        return out[i:i + 1 + (len(reasons) if len(reasons) > 1 else 0)]

    assert rows({"insufficient funds": 742}) == [
        ["declined by business rule: insufficient funds", "", 742]]
    # several reasons: a row each under the total, never counts inside the label (at 80
    # columns "..., last doctor" + "42784" read as the last reason's count)
    assert rows({"sold out": 3, "limit": 4}) == [
        ["declined by business rule", "", 7], ["  - sold out", "", 3], ["  - limit", "", 4]]
    assert rows({}) == [["declined by business rule", "", 0]]


def test_describe_keeps_a_docstring_list_as_items():
    """A scenario docstring's indented "name   text" list stays one item per
    paragraph, "name: text" (it was flowed into one paragraph, names lost in it);
    plain paragraphs are still flowed."""
    from txlab import describe

    doc = ("Story line one\ncontinues here.\n\n"
           "  naive        read, decide, write; READ\n"
           "               COMMITTED: lost update.\n"
           "  lock-doctors SELECT ... FOR UPDATE first.\n"
           "  - a bullet  of its own\n")
    assert describe._reflow(doc) == (
        "Story line one continues here.\n\n"
        "naive: read, decide, write; READ COMMITTED: lost update.\n\n"
        "lock-doctors: SELECT ... FOR UPDATE first.\n\n"
        "- a bullet of its own")
    from txlab.cli import cli

    out = CliRunner().invoke(cli, ["describe", "on-call"], env={"COLUMNS": "80"}).stdout
    assert "\nlock-doctors: SELECT ... FOR UPDATE" in out and "\nnaive: SELECT" in out


def test_describe_of_a_scenario_whose_docstring_is_only_its_title_has_no_blank_run():
    from dataclasses import replace

    from txlab import describe
    from txlab.scenario import resolve

    s = resolve("bank-transfer")
    out = describe.render(replace(s, description=f"{s.name}: {s.summary}"))
    assert "\n\n\n" not in out, out
    assert out.splitlines()[1].startswith("Teaches:") and out.splitlines()[2] == ""


@pytest.mark.parametrize("width", [60, 44])
def test_try_next_commands_wrap_between_options_under_their_indent(at, width):
    """A command to copy keeps each option with its value and continues indented; it
    used to run back to column 0 and split `--retries` from `10`."""
    r = at(width, "run", "bank-transfer", "-s", "optimistic", "-p", "accounts=3", "-d", "1")
    assert r.exit_code in (0, 1), r.output
    lines = r.stdout.splitlines()
    start = lines.index("Try next:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    block = lines[start + 1:end]
    assert all(len(ln) <= width for ln in block), block
    assert any("--retries" in ln for ln in block)
    for ln in block:
        assert not ln.rstrip().endswith(("--retries", "-s", "-p")), block  # value follows
        assert ln.startswith("  "), block


@pytest.mark.parametrize("width", [40, 60])
def test_acid_usage_names_its_argument_rather_than_folding_its_choices(width):
    out = CliRunner().invoke(cli, ["acid", "--help"], env={"COLUMNS": str(width)},
                             prog_name="txlab").stdout
    assert out.startswith("Usage: txlab acid [OPTIONS] [PART]\n"), out[:120]
    assert "isolati\n" not in out and "all          each of them in turn" in out


def test_an_error_keeps_a_long_path_whole_on_its_own_line(tmp_path):
    # rich folded a long path mid-word at the terminal's width: a copied path held a
    # line break. Now it has a line of its own, whole; short words still wrap.
    import subprocess
    import sys

    deep = "/".join(["x" * 30] * 4)
    path = f"/tmp/{deep}/h.jsonl"
    env = {**__import__("os").environ, "COLUMNS": "50"}
    done = subprocess.run([sys.executable, "-m", "txlab", "run", "bank-transfer", "-n", "1",
                           "--history", path], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert path + ":" in lines, lines  # whole, on one line
    assert all(len(ln) <= 50 for ln in lines if " " in ln.strip()), lines
