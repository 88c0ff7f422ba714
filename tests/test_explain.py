"""`txlab explain`: every term a report can print is explained, and the commands it
suggests are real commands."""

from __future__ import annotations

import ast
import json
import re
import shlex

import pytest
from click.testing import CliRunner

from txlab import db, errors, glossary, scenario
from txlab.checker import models
from txlab.cli import cli
from txlab.db import LEVELS
from txlab.stats import INTERRUPTED_CAUSE


def _explain(*args):
    return CliRunner().invoke(cli, ["explain", *args], catch_exceptions=False)


def _printable_terms() -> dict[str, str]:
    """Every term a report can print -> where it comes from."""
    out = {cause: "errors" for cause in errors.CAUSE_NAMES}
    out[INTERRUPTED_CAUSE] = "stats"
    out.update({a.name: "anomaly" for a in models.ANOMALIES})
    out.update({name: "model" for name in models.MODELS})
    for key, level in LEVELS.items():
        out[key] = out[level.sql] = "level"
    for s in scenario.discover(()).values():
        out.update({st.name: f"strategy of {s.name}" for st in s.strategies})
    # jargon the reports print
    out.update(dict.fromkeys(("naive", "model", "valid", "invalid", "rw edge", "G-nonadjacent",
                              "declined", "retries", "committed", "aborted", "allowed",
                              "forbidden", "UNEXPECTED", "cycle", "think time", "throughput",
                              "seed", "invariant"), "jargon"))
    return out


def test_every_printable_term_is_explained():
    for term, source in _printable_terms().items():
        e = glossary.lookup(term)
        assert e.what, (term, source)
        if e.kind in ("SQLSTATE", "anomaly", "isolation level") and term != INTERRUPTED_CAUSE:
            assert e.why and e.fix, f"{term} ({source}) says what, not why and what to do"
        if source.startswith("strategy"):
            assert any(line.startswith(source.split()[-1] + ":") for line in e.uses), term
        if e.kind in ("SQLSTATE", "anomaly", "isolation level", "strategy") and \
                term not in (INTERRUPTED_CAUSE, "23502", "23503"):
            assert e.show, f"{term}: no command shows it"


def test_strategies_come_from_the_scenarios_not_a_copy():
    e = glossary.lookup("for-update-unsorted")
    st = scenario.discover(()).get("limited-stock-cart").strategy("for-update-unsorted")
    assert e.kind == "strategy" and st.help in e.uses[0]


def _commands():
    for e in glossary.entries():
        for cmd in e.show:
            yield e.term, cmd


def test_the_commands_it_suggests_parse():
    """Each `txlab ...` an entry suggests names a real command, scenario, strategy,
    demo, knob and option value (placeholders in capitals excepted)."""
    catalogue = scenario.discover(())
    from txlab.interleave import demo

    demos = demo.catalog()
    for term, cmd in _commands():
        argv = shlex.split(cmd)
        assert argv[0] == "txlab", (term, cmd)
        if any(a.isupper() and len(a) > 2 for a in argv):
            continue  # HISTORY, SCENARIO: a placeholder
        ctx = cli.make_context("txlab", argv[1:], resilient_parsing=False)
        sub = cli.get_command(ctx, argv[1])
        assert sub is not None, (term, cmd)
        sub_ctx = sub.make_context(argv[1], argv[2:])  # parses options and their values
        p = sub_ctx.params
        if argv[1] == "run":
            s = catalogue[p["scenario"]]
            s.strategy(p["strategy"])
            s.params(dict(p["params"]))
        elif argv[1] == "demo":
            assert p["name"] in demos or (p["name"] is None and "--all" in argv), (term, cmd)
        elif argv[1] in ("matrix", "describe"):
            for name in p.get("names") or [p.get("scenario")] if "scenario" in p else ():
                assert name in catalogue, (term, cmd)


def test_cli_explain_prints_an_entry_and_lists_terms():
    r = _explain("40001")
    assert r.exit_code == 0
    flat = " ".join(r.stdout.split())
    for text in ("40001-concurrent-update", "40001-rw-dependencies", "What to do", "--retries",
                 "txlab demo p4 -i repeatable-read"):
        assert text in flat, text
    r = _explain("lost", "update")  # several words are one term
    assert r.exit_code == 0 and r.stdout.startswith("lost update")
    assert _explain("READ_COMMITTED").stdout.startswith("READ COMMITTED")
    data = json.loads(_explain("rw", "edge", "--format", "json").stdout)
    assert data["term"] == "rw edge" and data["kind"] == "report term"
    listing = _explain()
    assert listing.exit_code == 0
    for text in ("40P01", "G2-item", "SERIALIZABLE", "naive", "rw edge", "for-update-unsorted"):
        assert text in listing.stdout, text


@pytest.mark.parametrize("term, close", [("lost-updte", "lost update"), ("40P1", "40P01"),
                                         ("serialisable", None), ("g2item", "G2-item")])
def test_unknown_terms_exit_2_with_the_closest(term, close):
    r = _explain(term)
    if close is None:  # a spelling variant that is an alias
        assert r.exit_code == 0
        return
    assert r.exit_code == 2 and close in r.stderr and "Traceback" not in r.stderr


def test_nothing_close_still_exits_2():
    r = _explain("zzzzqqq")
    assert r.exit_code == 2 and "txlab explain` lists every term" in r.stderr


def test_a_run_report_names_its_terms(pg_dsn, schema):
    r = CliRunner().invoke(cli, ["run", "bank-transfer", "-n", "40", "-p", "accounts=2",
                                 "--think-ms", "5", "--format", "json", "--dsn", pg_dsn,
                                 "--schema", schema], catch_exceptions=False)
    rep = json.loads(r.stdout)
    assert rep["terms"][:2] == ["naive", "READ COMMITTED"]
    for t in rep["terms"]:
        glossary.lookup(t)
    assert all(a["unit"] for a in rep["anomalies"])


def _catalog_expect(demo_name: str) -> dict:
    from txlab.interleave import demo as demos
    from txlab.interleave import spec as specs

    return demos.parse_meta(specs.load(demos.catalog()[demo_name])).expect


def test_an_anomaly_explained_as_forbidden_everywhere_never_occurs_in_its_demo():
    # `explain OTV` once said REPEATABLE READ was the fix, while its own demo (and
    # PostgreSQL) prevents it at every level. An entry whose fix is "Nothing" must
    # name a demo whose catalog expectations hold no anomaly at any level; the other
    # way round, a demo with an anomaly must not be explained as forbidden everywhere.
    checked = 0
    for entry in glossary.entries():
        if entry.kind != "anomaly":
            continue
        demos_shown = [c.split()[2] for c in entry.show if c.startswith("txlab demo ")]
        for name in demos_shown[:1]:
            expect = _catalog_expect(name)
            if not expect:
                continue
            checked += 1
            occurs = [lv for lv, out in expect.items() if out == "anomaly"]
            if entry.fix.startswith("Nothing"):
                assert not occurs, (entry.term, name, expect)
            elif entry.term in ("OTV", "G0", "G1a", "G1b", "G1c"):
                pytest.fail(f"{entry.term} must be explained as forbidden everywhere")
    assert checked >= 8


@pytest.mark.parametrize("term, entry", [
    ("non-repeatable read", "G-single"), ("phantom read", "phantom"), ("P3", "phantom"),
    ("serialization anomaly", "G2-item"), ("read-only anomaly", "read-only anomaly"),
])
def test_the_words_a_lecture_uses_are_explained(term, entry):
    r = _explain(term)
    assert r.exit_code == 0 and r.output.startswith(entry + " "), r.output[:200]


def test_phantom_reads_are_said_to_stop_at_repeatable_read():
    out = " ".join(_explain("phantom").output.split())
    assert "only READ COMMITTED shows it" in out and "REPEATABLE READ or SERIALIZABLE for" in out


def test_words_the_output_uses_in_passing_are_explained():
    # A newcomer met these in reports, demos and interleave failures, and
    # `txlab explain` knew none of them (`pr` suggested G2-item-process).
    for word, entry in [("pr", "micro-op"), ("r", "micro-op"), ("v1", "micro-op"),
                        ("preemption", "preemption"), ("witness", "witness"),
                        ("Adya", "Adya"), ("Elle", "Elle"), ("Hermitage", "Hermitage"),
                        ("outcome unknown", "outcome unknown"), ("unknown", "outcome unknown")]:
        assert glossary.lookup(word).term == entry, word


# The renderers whose verdicts, banners and headings a user reads and then asks
# `txlab explain` about.
RENDERERS = ("report.py", "report_term.py", "story.py", "matrix.py", "acid.py",
             "cli_check.py", "cli_demo.py", "interleave/demo.py", "interleave/render.py",
             "checker/render.py", "html/run.py", "html/matrix.py", "html/demo.py",
             "html/check.py", "html/page.py")
# Capital words at the start of a literal that are SQL's or PostgreSQL's own, not
# txlab's (a timeline's BEGIN; ERROR 40001: ...; a command tag OK; the server log),
# and a file format.
NOT_TXLABS = {"BEGIN", "ROLLBACK", "NULL", "ERROR", "OK", "LOG", "SET", "SHOW", "SELECT",
              "UPDATE", "INSERT INTO", "CREATE TABLE", "JSON"}
_CAPS = re.compile(r"([A-Z]{2,}(?: [A-Z]{2,})*)(?=:|$| [a-z(])")


def _capital_words(path) -> set[str]:
    """The capital words a literal starts with (`SERVER LOST: ...`, `CANNOT TELL
    whether ...`, "PREVENTED"): verdicts and banners, as the code writes them; an
    f-string's leading {prefix} is skipped; option metavars are not output."""
    tree = ast.parse(path.read_text())
    metavars = {id(k.value) for k in ast.walk(tree)
                if isinstance(k, ast.keyword) and k.arg == "metavar"}
    out = set()
    for node in ast.walk(tree):
        if id(node) in metavars:
            continue
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            parts = node.values[1:] if isinstance(node.values[0], ast.FormattedValue) \
                else node.values
            if parts and isinstance(parts[0], ast.Constant):
                text = parts[0].value
        m = _CAPS.match(text or "")
        if m:
            out.add(m.group(1))
    return out - NOT_TXLABS


def _lead(line: str) -> str:
    """A verdict line's word: `SERVER LOST after 1 of 2 ...` -> SERVER LOST."""
    m = _CAPS.match(line)
    assert m, line
    return m.group(1)


def _report_words() -> dict[str, str]:
    """Every verdict, banner, heading and count unit the demo, matrix, run, check and
    acid reports print -> where it comes from; read off the code, not typed here."""
    from pathlib import Path

    import txlab
    from txlab import acid, matrix
    from txlab.checker.check import INVALID, UNKNOWN, VALID
    from txlab.interleave import demo as demos
    from txlab.interleave import render as demo_render
    from txlab.interleave import spec as specs

    out: dict[str, str] = {}
    root = Path(txlab.__file__).parent
    for name in RENDERERS:
        out.update(dict.fromkeys(_capital_words(root / name), name))
    # demo verdicts: the default heads, the built-in demos' own (`when`), the notes
    out.update(dict.fromkeys(demo_render.HEAD_STYLES, "demo verdict"))
    for name, path in demos.catalog().items():
        for text in demos.parse_meta(specs.load(path)).when.values():
            out[text.partition(":")[0].strip().upper()] = f"demo {name}: when"
    for kw in ({"teaching": False}, {"expect_set_aside": True}, {}):
        v = demos.Verdict("ok", "", expected="anomaly", **kw)
        out[_lead(v.expectation_note)] = "demo expectation note"
    # matrix: column headings, short level names, verdicts, why it is partial
    out.update(dict.fromkeys(matrix.HEADERS, "matrix heading"))
    out.update(dict.fromkeys(matrix.SHORT.values(), "matrix level"))
    s = scenario.discover(()).get("bank-transfer")
    combo = (s, "naive", db.parse_isolation("serializable"))
    for failed in (None, matrix.MatrixFailed("x", [], combo, lost=True),
                   matrix.MatrixFailed("x", [], combo, lost=False)):
        out[_lead(matrix.interrupted([], 1, failed))] = "matrix partial"
    row = matrix.Row("s", "naive", "serializable", 1.0, 1, {}, 0, 0, False, ["i"], {}, [],
                     expected_safe=True)
    out.update(dict.fromkeys(w.strip() for w in matrix._verdict(row).split(",")))
    # check: its verdicts; every count unit a report prints after an anomaly
    out.update(dict.fromkeys((VALID, INVALID, UNKNOWN), "check verdict"))
    for kind in [*models.BY_NAME, "not-an-anomaly"]:
        for n in (1, 2):
            out[models.count_unit(kind, n)] = f"unit of {kind}"
    # acid: its parts (headings)
    out.update(dict.fromkeys(acid.PARTS, "acid part"))
    return out


def test_every_verdict_heading_and_unit_a_report_prints_is_explained():
    # PREVENTED, CANNOT TELL, SERVER LOST (demo and matrix verdicts) exited 2 with "no
    # explanation", and "group with a cycle" (a unit) got "Closest: G0".
    words = _report_words()
    for must in ("PREVENTED", "NO ANOMALY", "CANNOT TELL", "NOT COMPARED", "SERVER LOST",
                 "STOPPED", "SCHEMA TAKEN", "HISTORY NOT WRITTEN", "NOT CHECKED",
                 "group with a cycle", "FALSE POSITIVE", "HELD"):
        assert must in words, must  # the collection itself finds them
    unknown = {}
    for word, source in words.items():
        try:
            glossary.lookup(word)
        except errors.UsageError as exc:
            unknown[word] = (source, str(exc))
    assert not unknown, unknown
    for word in ("PREVENTED", "CANNOT TELL", "SERVER LOST", "group with a cycle"):
        r = _explain(word)
        assert r.exit_code == 0 and "no explanation" not in r.output, (word, r.output)
    for word, entry in [("PREVENTED", "PREVENTED"), ("prevented (wait)", "PREVENTED"),
                        ("CANNOT TELL", "expect"), ("group with a cycle", "cycle"),
                        ("overwritten update", "lost update"), ("pair of reads",
                                                                "incompatible-order")]:
        assert glossary.lookup(word).term == entry, word


def test_words_that_were_explained_keep_their_entries():
    # the neighbour: the new entries and aliases take no word from an older entry
    for word, entry in [("overwritten updates", "lost update"), ("VIOLATED", "invariant"),
                        ("HOLDS", "invariant"), ("UNEXPECTED", "UNEXPECTED"),
                        ("ANOMALY", "anomaly"), ("DEADLOCK", "40P01"),
                        ("unknown", "outcome unknown"), ("valid", "valid"),
                        ("RC", "READ COMMITTED"), ("INTERRUPTED", "interrupted")]:
        assert glossary.lookup(word).term == entry, word
