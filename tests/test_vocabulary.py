"""One vocabulary: the same option means the same thing in every command, and the
namespaces (scenarios, demos, strategies, levels, terms) point at each other."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from txlab.cli import cli

REPORT_COMMANDS = ("run", "matrix", "check", "demo", "acid", "explain")


def _commands(group=cli, path=("txlab",)):
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def _invoke(*args, **kw):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kw)


def test_dash_h_and_no_color_on_every_command():
    assert _invoke("-h").exit_code == 0
    for path, _cmd in _commands():
        r = _invoke(*path[1:], "-h")
        assert r.exit_code == 0 and "Usage:" in r.stdout, path
        assert "--no-color" in r.stdout, path
    assert _invoke("--no-color", "list").exit_code == 0


def _options(cmd):
    return {o: p for p in cmd.params if isinstance(p, click.Option)
            for o in p.opts + p.secondary_opts}


def test_report_commands_take_format_and_output():
    for name in REPORT_COMMANDS:
        opts = _options(cli.commands[name])
        assert "--format" in opts and "-o" in opts and "--output" in opts, name
        assert "text" in opts["--format"].type.choices and "json" in opts["--format"].type.choices


def test_durations_name_their_unit_and_old_spellings_still_work():
    for path, cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.metavar in ("SECONDS", "MS"):
                long = max(p.opts, key=len)
                unit = "-s" if p.metavar == "SECONDS" else "-ms"
                assert long.endswith(unit), (path, long)
    run, matrix, check = cli.commands["run"], cli.commands["matrix"], cli.commands["check"]
    assert run.make_context("run", ["x", "--duration", "2.5"]).params["duration"] == 2.5
    assert run.make_context("run", ["x", "-d", "3"]).params["duration"] == 3
    assert matrix.make_context("matrix", ["--duration", "0.5"]).params["duration"] == 0.5
    assert check.make_context("check", ["h", "--time-limit", "4"]).params["time_limit"] == 4
    demo = cli.commands["demo"]
    assert demo.make_context("demo", ["p4", "--step-timeout", "5"]).params["step_timeout"] == 5
    help_text = _invoke("run", "-h").stdout
    assert "--duration-s" in help_text and "--duration " not in help_text


def test_one_meaning_per_short_option_and_one_think_default():
    meanings: dict[str, set] = {}
    for _path, cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option):
                for o in p.opts:
                    if len(o) == 2 and o not in getattr(p, "hidden_aliases", ()):
                        meanings.setdefault(o, set()).add(max(p.opts, key=len))
    assert meanings["-p"] == {"--param"}
    assert meanings["-P"] == {"--permutation"}
    for short, longs in meanings.items():
        assert len(longs) == 1, (short, longs)
    defaults = {name: _options(cli.commands[name])["--think-ms"].default
                for name in ("run", "matrix")}
    assert len(set(defaults.values())) == 1, defaults
    demo = cli.commands["demo"]
    assert demo.make_context("demo", ["p4", "-p", "s1 s2"]).params["permutation"] == "s1 s2"


def test_run_no_fail(txlab):
    args = ("run", "bank-transfer", "-s", "naive", "-p", "accounts=2", "--think-ms", "20",
            "-n", "40", "--format", "json")
    failing = txlab(*args)
    assert failing.exit_code == 1
    assert txlab(*args, "--no-fail").exit_code == 0


@pytest.mark.parametrize("args, words", [
    (("run", "p4"), ["p4 is a demo", "txlab demo p4"]),
    (("run", "g2item"), ["Did you mean", "the demo g2-item"]),
    (("run", "serializable"), ["isolation level", "-i serializable"]),
    (("run", "lock-doctors"), ["strategy of on-call", "txlab run on-call -s lock-doctors"]),
    (("describe", "deadlock"), ["deadlock is a demo"]),
    (("demo", "bank-transfer"), ["bank-transfer is a scenario", "txlab run bank-transfer"]),
    (("demo", "p5"), ["Did you mean", "'p4'"]),
    (("demo", "40001"), ["txlab explain 40001"]),
    (("matrix", "p4"), ["p4 is a demo"]),
    (("run", "nonexist"), ["unknown scenario 'nonexist'.", "bank-transfer"]),
    # a misspelt anomaly beats a loosely close demo name (writeskew once got pmp-write)
    (("demo", "writeskew"), ["Did you mean 'write-skew' (txlab demo write-skew)?"]),
    (("demo", "lostupdate"), ["Did you mean 'lost-update' (txlab demo lost-update)?"]),
    (("run", "bank-transfer", "-s", "atomc"), ["no strategy 'atomc'. Did you mean 'atomic'?",
                                               "Choose one of: naive, atomic"]),
    (("run", "bank-transfer", "-p", "acounts=3"), ["no knob 'acounts'. Did you mean "
                                                   "'accounts'?", "Its knobs: accounts"]),
    (("run", "bank-transfer", "-s", "qqqq"), ["no strategy 'qqqq'. Choose one of"]),
])
def test_namespaces_point_at_each_other(args, words):
    """Each wrong namespace points at the right one; a name close to nothing in any
    namespace gets no guess (`run nonexist` once guessed the demo nowait)."""
    r = _invoke(*args)
    assert r.exit_code == 2, r.output
    flat = " ".join(r.stderr.split())
    for w in words:
        assert w in flat, (args, w, flat)
    assert "?." not in flat
    if args in (("run", "nonexist"), ("run", "bank-transfer", "-s", "qqqq")):
        assert "Did you mean" not in flat and "demo" not in flat


def test_list_mentions_demos_and_explain():
    flat = " ".join(_invoke("list").stdout.split())
    assert "txlab demo --list" in flat and "txlab explain" in flat


def _complete(line: str) -> list[str]:
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**os.environ, "COMP_WORDS": line, "COMP_CWORD": str(cword),
           "_TXLAB_COMPLETE": "bash_complete"}
    out = subprocess.run([sys.executable, "-c", "from txlab.cli import main; main()"],
                         capture_output=True, text=True, env=env, timeout=60).stdout
    return [item.split(",", 1)[1] for item in out.split()]


def test_shell_completion_knows_the_names():
    assert _complete("txlab run bank") == ["bank-transfer"]
    assert _complete("txlab run on-call -s ") == ["lock-doctors", "materialize", "naive"]
    assert "serializable" in _complete("txlab run on-call -i ")
    assert "all" in _complete("txlab matrix -i ")
    assert set(_complete("txlab demo g2")) == {"g2", "g2-item", "g2-three"}
    assert "40P01" in _complete("txlab explain 40")


def test_clean_never_starts_a_server(tmp_path, monkeypatch):
    for name in ("TXLAB_DSN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TXLAB_HOME", str(tmp_path))
    r = _invoke("clean")
    assert r.exit_code == 0 and "no database to clean" in " ".join(r.stderr.split())
    assert list(tmp_path.iterdir()) == []  # nothing initialised, nothing started


@pytest.mark.slow
def test_acid_asks_before_crashing_the_persistent_server(tmp_path):
    from ptyutil import on_pty as _on_pty

    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    env["TXLAB_HOME"] = str(tmp_path)

    def txlab(*args, **kw):
        return subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True,
                              text=True, env=env, timeout=120, **kw)

    assert txlab("server", "start").returncode == 0
    try:
        refused = txlab("acid", "durability", stdin=subprocess.DEVNULL)
        assert refused.returncode == 2
        flat = " ".join(refused.stderr.split())
        assert "crashes and restarts the persistent" in flat and "--yes" in flat
        assert "Traceback" not in refused.stderr
        rc, out = _on_pty(["acid", "durability"], {"TXLAB_HOME": str(tmp_path)},
                          stdin_data=b"n\n")
        assert rc == 2 and "Go on?" in out and "left alone" in out
        # the question fits the 80-column terminal (it was one line of 150 characters)
        # (the pty does not echo the answer: the reply follows the prompt on its line)
        asked = out[:out.index("Go on? [y/N]:") + len("Go on? [y/N]:")]
        assert max(len(line) for line in asked.splitlines()) <= 80, asked
        status = txlab("server", "status")
        assert status.returncode == 0  # never crashed
        # the URL whole on a line of its own, from the first column, as `server url` prints it
        url = txlab("server", "url").stdout.strip()
        assert url in status.stdout.splitlines(), status.stdout
    finally:
        txlab("server", "stop")


@pytest.mark.parametrize("term, demo", [
    ("lost-update", "p4"), ("write-skew", "g2-item"), ("dirty-read", "g1a"),
])
def test_a_demo_named_by_the_anomaly_it_shows(term, demo):
    """`txlab demo lost-update`: the demo that shows it (the one `txlab explain` names),
    with a note saying which; the spec printed is that demo's."""
    from txlab.interleave import demo as demos

    r = _invoke("demo", term, "--show")
    assert r.exit_code == 0, r.output
    assert f"{term} is shown by the demo {demo}" in " ".join(r.stderr.split())
    assert r.stdout == demos.resolve(demo).read_text()


@pytest.mark.parametrize("code, demo", [("p0", "g0"), ("p1", "g1a"), ("p2", "g-single")])
def test_ansi_phenomena_p0_p1_name_their_demos_as_p2_does(code, demo):
    # `txlab demo p2` worked; p0 (dirty write) and p1 (dirty read) were "unknown demo"
    r = _invoke("demo", code, "--show")
    assert r.exit_code == 0 and f"is shown by the demo {demo}" in " ".join(r.stderr.split())
    assert _invoke("explain", code).exit_code == 0


def test_an_anomaly_given_to_run_points_at_its_demo_and_a_scenario_that_makes_it():
    # `txlab run lost-update` pointed at `txlab explain` only, not at the demo that shows it
    said = " ".join(_invoke("run", "lost-update").stderr.split())
    assert "lost-update is an anomaly: `txlab demo lost-update` shows it step by step" in said
    assert "`txlab run bank-transfer -s naive -i read-committed` produces it" in said
    # the neighbour: a term no demo shows keeps the plain pointer
    said = " ".join(_invoke("run", "40001").stderr.split())
    assert "40001 is explained by: txlab explain 40001" in said


def test_a_term_no_demo_shows_is_still_an_unknown_demo():
    r = _invoke("demo", "naive")  # a strategy: its lesson shows it with `txlab run`
    assert r.exit_code == 2 and "is shown by" not in r.stderr
    assert "strategy of" in r.stderr


def test_a_duration_takes_a_trailing_unit_and_says_what_it_wants():
    # `-d 5s` got click's "'5s' is not a valid float range"
    run, matrix = cli.commands["run"], cli.commands["matrix"]
    for text, seconds in (("5s", 5), ("1.5 s", 1.5), ("500ms", 0.5), ("2S", 2)):
        assert run.make_context("run", ["x", "-d", text]).params["duration"] == seconds, text
        assert matrix.make_context("matrix", ["-d", text]).params["duration"] == seconds, text
    for text in ("5m", "five", "5ss"):
        r = _invoke("run", "bank-transfer", "-d", text)
        assert r.exit_code == 2, r.output
        flat = " ".join(r.stderr.split())
        assert f"'{text}' is not a number of seconds: give e.g. 5 (5s and 500ms" in flat, flat
    # every option in seconds takes the unit
    for path, cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.metavar == "SECONDS":
                assert p.type.convert("3s", p, None) == 3, (path, p.name)


def test_a_plain_number_of_seconds_and_its_bounds_are_as_before():
    # the neighbour
    run = cli.commands["run"]
    assert run.make_context("run", ["x", "-d", "2.5"]).params["duration"] == 2.5
    for text in ("0", "-1", "nan", "1e999"):
        r = _invoke("run", "bank-transfer", "-d", text)
        assert r.exit_code == 2 and "Invalid value for '--duration-s'" in r.stderr, text
