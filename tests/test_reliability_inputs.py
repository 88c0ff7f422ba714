"""Bounded inputs (issue 13, items 1, 7 and 11) and fuzzing of what users type: the
spec parser and every command's options answer with a documented exit code and a
message, never "internal error" and never a traceback."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab import scenario as scenarios
from txlab.cli import cli
from txlab.errors import UsageError
from txlab.interleave import spec as specs

NOWHERE = "postgresql://u@127.0.0.1:1/db"  # refuses at once: reaching it means "started"


def txlab(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False,
                              env={"TXLAB_DSN": None, "DATABASE_URL": None})


def clean_exit(r, *codes: int) -> None:
    shown = r.stdout + r.stderr
    assert r.exit_code in codes, (r.exit_code, shown)
    assert "Traceback" not in shown and "internal error" not in shown, shown


# ---------------------------------------------------------------- item 1: knobs


def test_every_numeric_knob_has_a_sane_maximum_overridable_only_deliberately():
    for s in scenarios.discover().values():
        for k in s.knobs:
            if isinstance(k.default, bool) or not isinstance(k.default, (int, float)):
                continue
            assert k.sane_max is not None or k.max is not None, (s.name, k.name)
            if k.sane_max is None:
                continue
            too_big = str(int(k.sane_max) + 1)
            with pytest.raises(UsageError, match="add --allow-large-params"):
                s.params({k.name: too_big})
            assert s.params({k.name: too_big}, allow_large=True)[k.name] == int(too_big)
            assert s.params({k.name: str(int(k.sane_max))})[k.name] == int(k.sane_max)


def test_a_huge_knob_is_refused_before_anything_starts():
    r = txlab("run", "bank-transfer", "-p", "accounts=3000000000", "--dsn", NOWHERE)
    clean_exit(r, 2)
    assert "above 100,000, the sane maximum of this knob" in r.stderr
    assert "cannot connect" not in r.stderr


def test_float_knobs_are_finite_and_limited():
    knob = scenarios.Knob("rate", 0.5, "a fraction")
    for text in ("nan", "inf", "-inf", "1e999"):
        with pytest.raises(UsageError, match="finite"):
            knob.parse(text)
    with pytest.raises(UsageError, match="sane maximum"):
        knob.parse("1e7")
    assert knob.parse("1e7", allow_large=True) == 1e7


def test_describe_documents_each_knobs_range():
    r = txlab("describe", "bank-transfer")
    clean_exit(r, 0)
    assert "2 to 100,000 (sane)" in r.stdout and "--allow-large-params" in r.stdout


# ---------------------------------------------------------------- item 7: output paths


def test_output_paths_are_checked_before_the_run(tmp_path):
    same = str(tmp_path / "report")
    cases = [
        (("--history", str(tmp_path / "missing" / "h.jsonl")), "does not exist"),
        (("-o", str(tmp_path)), "is a directory"),  # click's own check
        (("-o", same, "--history", same), "name the same file"),
        (("-o", same, "--history", f"{tmp_path}/./report"), "name the same file"),
    ]
    for extra, text in cases:
        r = txlab("run", "bank-transfer", "-n", "5", "--dsn", NOWHERE, *extra)
        clean_exit(r, 2)  # 2, not 3: nothing was started or connected to
        assert text in r.stderr, (extra, r.stderr)
    r = txlab("matrix", "bank-transfer", "-o", str(tmp_path / "no" / "m.txt"), "--dsn", NOWHERE)
    clean_exit(r, 2)


def test_a_check_or_demo_never_writes_over_what_it_reads_or_one_file_twice(tmp_path):
    """`txlab check h.jsonl -o h.jsonl` wrote the report over the history it checked."""
    hist = tmp_path / "h.jsonl"
    hist.write_text('{"type": "run", "isolation": "READ COMMITTED"}\n'
                    '{"type": "init", "ops": [["w", "x", 1, 0]]}\n')
    before = hist.read_bytes()
    for extra in (("-o", str(hist)), ("--html", str(hist)),
                  ("-o", str(tmp_path / "r"), "--html", str(tmp_path / "r"))):
        r = txlab("check", str(hist), *extra)
        clean_exit(r, 2)
        assert "is the file being read" in r.stderr or "name the same file" in r.stderr, r.stderr
    assert hist.read_bytes() == before
    spec = tmp_path / "my.spec"
    spec.write_text("# a spec\n")
    r = txlab("demo", str(spec), "-o", str(spec), "--dsn", NOWHERE)
    clean_exit(r, 2)
    assert "is the file being read" in r.stderr and spec.read_text() == "# a spec\n"
    r = txlab("demo", "p4", "-o", str(tmp_path / "d"), "--html", str(tmp_path / "d"),
              "--dsn", NOWHERE)
    clean_exit(r, 2)
    assert "name the same file" in r.stderr


# ---------------------------------------------------------------- item 11: the small ones


@pytest.mark.parametrize("args", [
    ("run", "bank-transfer", "-d", "nan"), ("run", "bank-transfer", "-d", "inf"),
    ("run", "bank-transfer", "-d", "1e999"), ("run", "bank-transfer", "-d", "1e6"),
    ("run", "bank-transfer", "--think-ms", "nan"), ("run", "bank-transfer", "--think-ms", "inf"),
    ("run", "bank-transfer", "--lock-timeout-ms", "2147483648"),
    ("run", "bank-transfer", "--statement-timeout-ms", "99999999999"),
    ("run", "bank-transfer", "--deadlock-timeout-ms", "2147483648"),
    ("run", "bank-transfer", "--retries", "1001"),
    ("matrix", "-d", "nan"), ("matrix", "-i", ","), ("matrix", "-s", ","),
    ("demo", "p4", "--step-timeout", "nan"), ("demo", "p4", "--step-timeout", "1e10"),
    ("run", "bank-transfer", "--dsn", ""), ("clean", "--dsn", ""),
])
def test_unbounded_or_empty_values_are_usage_errors(args):
    extra = () if "--dsn" in args else ("--dsn", NOWHERE)
    clean_exit(txlab(*args, *extra), 2)


def test_a_scenario_file_calling_sys_exit_is_an_error_not_an_exit(tmp_path):
    path = tmp_path / "quitter.py"
    path.write_text("import sys\nsys.exit(7)\n")
    r = txlab("run", str(path), "--dsn", NOWHERE)
    clean_exit(r, 2)
    assert "called sys.exit(7) while loading" in r.stderr


def test_one_broken_file_on_the_scenario_path_breaks_nothing_else(tmp_path):
    (tmp_path / "broken_one.py").write_text("def broken(:\n")
    (tmp_path / "quitter.py").write_text("raise SystemExit(3)\n")
    r = txlab("list", "--scenario-path", str(tmp_path))
    clean_exit(r, 0)
    assert "bank-transfer" in r.stdout
    assert "warning: skipped" in r.stderr and "broken_one.py:1: syntax error" in r.stderr
    clean_exit(txlab("describe", "bank-transfer", "--scenario-path", str(tmp_path)), 0)
    # asking for the broken one by name says what is wrong with it
    r = txlab("run", "broken-one", "--scenario-path", str(tmp_path), "--dsn", NOWHERE)
    clean_exit(r, 2)
    assert "broken_one.py:1: syntax error" in r.stderr


def test_a_thousand_step_spec_without_permutations_runs(pg_dsn, tmp_path):
    path = tmp_path / "long.spec"
    path.write_text("setup { CREATE TABLE t (a int); }\nteardown { DROP TABLE t; }\n"
                    "session s1\n" + "".join(f"step s{i} {{ SELECT {i}; }}\n"
                                             for i in range(1000)))
    r = txlab("demo", str(path), "--dsn", pg_dsn, "--schema", "txlab_long_spec")
    clean_exit(r, 0)


# ---------------------------------------------------------------- fuzzing

SPEC_WORDS = ["setup", "teardown", "session", "step", "permutation", "notices", "{", "}", "(",
              ")", "*", ",", "s1", "s2", "a", "b", "s1a", "s2a", "SELECT 1;", "#", "\n", " ",
              '"', '"x y"', "\t", "{ SELECT 1; }", "0", "-", "--", "/*"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(SPEC_WORDS), max_size=40).map(" ".join),
                 st.text(max_size=200)),
       st.text(alphabet="s12ab*() ,", max_size=20))
def test_the_spec_parser_only_ever_says_spec_error(text, permutation):
    try:
        parsed = specs.parse(text)
    except specs.SpecError:
        return
    if specs.count_permutations(parsed) <= 500:
        specs.permutations(parsed)
    try:
        specs.parse_permutation(parsed, permutation)
    except specs.SpecError:
        pass


COMMANDS = {
    "run": ["bank-transfer", "on-call", "no-such", "x.py", "-i", "-s", "-w", "-d", "-n", "--seed",
            "--think-ms", "--retries", "-p", "--format", "-o", "--history", "--lock-timeout-ms",
            "--statement-timeout-ms", "--deadlock-timeout-ms", "--schema", "--check", "--no-check",
            "--allow-large-params"],
    "matrix": ["bank-transfer", "-i", "-s", "-d", "-w", "--retries", "--think-ms", "--seed",
               "--format", "-o", "--deadlock-timeout-ms", "--no-fail", "--schema"],
    "demo": ["p4", "g2-item", "nosuch", "x.spec", "-i", "-p", "--format", "--all", "--list",
             "--step-timeout", "--max-permutations", "--schema"],
    "acid": ["atomicity", "durability", "all", "bogus"],
    "clean": ["--schema"],
    "describe": ["bank-transfer", "nosuch", "--scenario-path"],
    "check": ["/nonexistent/history.jsonl", "--model", "-i", "--format", "--max-examples",
              "--time-limit"],
}
VALUES = ["", "0", "-1", "1", "2", "1.5", "nan", "inf", "-inf", "1e999", "99999999999999999999",
          "2147483648", "all", ",", "rc", "serializable", "accounts=2", "accounts=nan", "=",
          "x=y", "Bad-Name", "table", "json", "\u00e9\u00e8", "a b", "-", "/", "/dev/null"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(COMMANDS)).flatmap(
    lambda command: st.tuples(st.just(command), st.lists(
        st.one_of(st.sampled_from(COMMANDS[command]), st.sampled_from(VALUES)), max_size=8))))
def test_any_options_end_in_a_documented_exit_code(command_and_args):
    command, args = command_and_args
    dsn = ("--dsn", NOWHERE) if command not in ("check", "describe") else ()
    clean_exit(txlab(command, *args, *dsn), 0, 1, 2, 3)


def test_a_server_out_of_connections_is_named_not_blamed_on_the_url(txlab, pg_dsn, schema):
    # A role limited to 2 connections: the control connection and one worker get in,
    # the second worker is refused (SQLSTATE 53300), as by a full server.
    from psycopg2.extensions import make_dsn

    role = f"{schema}_limited"
    admin = psycopg2.connect(pg_dsn)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 2")
    cur.execute(f"GRANT CREATE ON DATABASE {admin.info.dbname} TO {role}")
    try:
        r = txlab("run", "bank-transfer", "-w", "3", "-n", "10", dsn=make_dsn(pg_dsn, user=role))
        assert r.exit_code == 3
        assert "has no connection left" in r.output and "fewer --workers" in r.output
        assert "Check the URL" not in r.output and "Traceback" not in r.output
    finally:
        cur.execute(f"REVOKE CREATE ON DATABASE {admin.info.dbname} FROM {role}")
        cur.execute(f"DROP OWNED BY {role} CASCADE")
        cur.execute(f"DROP ROLE {role}")
        admin.close()


def _commands_with_output(group=cli, path=()):
    import click

    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands_with_output(cmd, (*path, name))
        elif any(isinstance(p, click.Option) and "-o" in p.opts for p in cmd.params):
            yield (*path, name)


# The least each command with -o needs to get as far as writing its report.
_OUTPUT_ARGS = {
    ("run",): ("bank-transfer", "-n", "5", "--dsn", NOWHERE),
    ("matrix",): ("bank-transfer", "--dsn", NOWHERE),
    ("demo",): ("p4", "--dsn", NOWHERE),
    ("acid",): ("atomicity", "--dsn", NOWHERE),
    ("check",): (str(Path(__file__).parent / "data" / "bank-transfer-naive-rc.jsonl"),),
    ("explain",): ("40001",),
}


def test_every_command_refuses_an_output_in_a_missing_folder_alike(tmp_path):
    """`explain 40001 -o /nonexistent/x` printed the entry and exited 3; acid started
    a server first: each -o is checked before any work, with one message, exit 2."""
    found = set(_commands_with_output())
    assert found == set(_OUTPUT_ARGS), f"a command with -o to add here: {found}"
    target = tmp_path / "missing" / "x.txt"
    for command, args in _OUTPUT_ARGS.items():
        r = txlab(*command, *args, "-o", str(target))
        clean_exit(r, 2)
        assert f"--output {target}: the folder {target.parent} does not exist" in r.stderr, \
            (command, r.stderr)
        assert r.stdout == "", (command, r.stdout)  # nothing done, nothing printed


def test_explain_still_writes_to_a_folder_that_exists(tmp_path):
    # the neighbour: a good -o is written as before
    target = tmp_path / "x.txt"
    r = txlab("explain", "40001", "-o", str(target))
    clean_exit(r, 0)
    assert target.read_text().startswith("40001") and r.stdout == ""
