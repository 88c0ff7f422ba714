"""The spec parser, validation, permutations and PQprint emulation (no database)."""

from __future__ import annotations

import pytest

from txlab.errors import UsageError
from txlab.interleave import demo, transcript
from txlab.interleave import spec as specs

BASIC = """\
# a comment
setup { CREATE TABLE t (id int); }
setup
{
  INSERT INTO t VALUES (1);
}
teardown { DROP TABLE t; }

session s1
setup { BEGIN; }
step s1a { SELECT 1; }
step "s1 b"	{ SELECT 2;   }
teardown { COMMIT; }

session "two"
step s2a { UPDATE t SET id = 2; }

permutation s1a s2a(*) "s1 b"
permutation "s2a" s1a(s2a) "s1 b"(s2a notices 2, *)
"""


def test_parses_setups_sessions_steps_and_markers():
    spec = specs.parse(BASIC)
    assert spec.setups == ("CREATE TABLE t (id int);", "\n  INSERT INTO t VALUES (1);\n")
    assert spec.teardown == "DROP TABLE t;"
    assert [s.name for s in spec.sessions] == ["s1", "two"]
    s1 = spec.sessions[0]
    assert s1.setup == "BEGIN;" and s1.teardown == "COMMIT;"
    assert [(st.name, st.sql, st.line) for st in s1.steps] == [
        ("s1a", "SELECT 1;", 11), ("s1 b", "SELECT 2;", 12)]
    first, second = spec.permutations
    assert [p.name for p in first.steps] == ["s1a", "s2a", "s1 b"]
    assert first.steps[1].markers == (specs.Marker("once", line=18),)
    assert second.steps[1].markers[0].kind == "step" and second.steps[1].markers[0].step == "s2a"
    kinds = [(m.kind, m.step, m.notices) for m in second.steps[2].markers]
    assert kinds == [("notices", "s2a", 2), ("once", None, 0)]
    assert spec.comments[0].text == " a comment"


def test_sql_blocks_keep_newlines_and_trim_only_spaces():
    spec = specs.parse("session s\nstep a {\tSELECT 1;\n  }\n")
    assert spec.sessions[0].steps[0].sql == "SELECT 1;\n"


def test_quoted_names_double_their_quotes_and_may_be_keywords():
    spec = specs.parse('session "a ""b"""\nstep "setup" { SELECT 1; }\npermutation "setup"\n')
    assert spec.sessions[0].name == 'a "b"'
    assert spec.sessions[0].steps[0].name == "setup"


@pytest.mark.parametrize("text, line, words", [
    ("session s\nstep a { SELECT 1; }\nstep a { SELECT 2; }\n", 3, "duplicate step name 'a'"),
    ("session s\nstep a { SELECT 1; }\n\npermutation a b\n", 4, "undefined step 'b'"),
    ("session s\nstep a { SELECT 1; }\nstep b { SELECT 1; }\npermutation a b(a)\n", 4,
     "cannot block on its own session"),
    ("session s\nstep a { SELECT 1; }\nsession t\nstep b { }\npermutation a(c) b\n", 5,
     "undefined blocking step 'c'"),
    ("session s\nstep a { SELECT 1;\n", 2, "unterminated SQL block"),
    ("session s\n  step a { SELECT 1; }\n  step ! { }\n", 3, "unexpected character '!'"),
    ('session "s\n', 1, "unexpected newline in quoted name"),
    ("setup { }\nsession s\nstep a { }\nsetup { }\n", 4, "out of place"),
    ("session s\nstep setup { }\n", 2, "keyword 'setup'"),
    ("session s\nsetup { }\n", 3, "at least one 'step'"),
    ("step a { }\n", 1, "expected 'setup', 'teardown' or 'session'"),
    ("session s\nstep a { }\npermutation a(b notices) \n", 3, "a number after 'notices'"),
    ("session s\nstep a { }\npermutation\n", 4, "step names after 'permutation'"),
    ("session s\nstep a { }\npermutation a\nsession t\n", 4, "permutations come last"),
])
def test_errors_name_the_line(text, line, words):
    with pytest.raises(specs.SpecError) as caught:
        specs.parse(text, "x.spec")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"x.spec:{line}: ")
    assert words in str(caught.value)
    assert isinstance(caught.value, UsageError)  # exit code 2


def test_unused_steps_are_warnings_with_lines_like_isolationtester():
    spec = specs.parse("session s\nstep a { }\nstep b { }\npermutation a\n", "u.spec")
    assert spec.warnings == ("u.spec:3: unused step name: b",)
    assert specs.parse("session s\nstep a { }\nstep b { }\n").warnings == ()


UNCLOSED = """setup { CREATE TABLE t (id int); }
session a
setup { BEGIN;
step a_count { SELECT count(*) FROM t; }
step a_commit { COMMIT; }
session b
step b_ins { INSERT INTO t VALUES (2); }
"""


def test_an_unclosed_block_is_named_where_it_swallowed_a_step():
    # The `{` of line 3 runs to the `}` of line 4, swallowing step a_count: the error was
    # only "undefined step 'a_count' in permutation", at the permutation's line.
    with pytest.raises(specs.SpecError) as exc:
        specs.parse(UNCLOSED + "permutation a_count b_ins a_commit\n", "u.spec")
    assert str(exc.value).startswith("u.spec:8: undefined step 'a_count' in permutation")
    assert ("the SQL block opened at line 3 runs to the '}' at line 4 and holds 'step a_count {"
            in " ".join(str(exc.value).split())) and exc.value.line == 8
    # valid as the tester's grammar reads it (no permutation names the step): a warning
    spec = specs.parse(UNCLOSED, "u.spec")
    assert any("opened at line 3" in w and "is a '}' missing?" in w for w in spec.warnings)
    # the neighbour: the same spec closed has no such warning
    closed = specs.parse(UNCLOSED.replace("BEGIN;", "BEGIN; }"), "u.spec")
    assert not any("missing" in w for w in closed.warnings)


def test_all_permutations_follow_isolationtesters_order():
    spec = specs.parse("session s1\nstep a { }\nstep b { }\nsession s2\nstep x { }\n"
                       "session s3\nstep y { }\n")
    perms = [" ".join(p.name for p in perm.steps) for perm in specs.all_permutations(spec)]
    assert len(perms) == specs.count_permutations(spec) == 12
    assert perms[:4] == ["a b x y", "a b y x", "a x b y", "a x y b"]
    assert perms[-1] == "y x a b"
    assert len(set(perms)) == 12
    for p in perms:  # each session's steps keep their order
        assert p.index("a") < p.index("b")


def test_a_command_line_permutation_is_validated():
    spec = specs.parse("session s1\nstep a { }\nsession s2\nstep b { }\n")
    perm = specs.parse_permutation(spec, "b a(b)")
    assert [p.name for p in perm.steps] == ["b", "a"]
    with pytest.raises(specs.SpecError, match="undefined step 'c'"):
        specs.parse_permutation(spec, "a c")


def test_result_sets_are_printed_like_pqprint():
    out = transcript.result_set(("id", "name", "n", "e"),
                                (("1", "héllo", "1.5", "E1"), ("22", None, "-3", "1e5"),
                                 ("3", "", "", "12a")))
    assert out == ("id|name  |  n|e  \n"
                   "--+------+---+---\n"
                   " 1|héllo|1.5|E1 \n"
                   "22|      | -3|1e5\n"
                   " 3|      |   |12a\n"
                   "(3 rows)\n\n")
    assert transcript.result_set(("x",), ()) == "x\n-\n(0 rows)\n\n"
    assert transcript.result_set(("x",), (("1",),)).endswith("(1 row)\n\n")
    assert transcript.result_set((), ()) == ""


def test_demo_metadata_is_read_from_comments():
    spec = specs.parse(
        "# txlab: title = Lost update\n# txlab: witness = s2 sees 1|50\n"
        "# txlab: witness = check SELECT true\n# txlab: expect rr = abort\n"
        "# A story line.\nsession s\nstep s2 { }\n")
    meta = demo.parse_meta(spec)
    assert meta.title == "Lost update"
    assert meta.witnesses[0] == demo.Witness("sees", ("s2",), "1|50", 2)
    assert meta.check_sql == "SELECT (SELECT true)"
    assert meta.expect == {"repeatable-read": "abort"}
    assert meta.story == "A story line."


@pytest.mark.parametrize("line, words", [
    ("# txlab: colour = red", "unknown txlab metadata key"),
    ("# txlab: expect read-committed = maybe", "must be one of"),
    ("# txlab: expect sometimes = ok", "unknown isolation level"),
    ("# txlab: witness = nosuch sees 1", "undefined step 'nosuch'"),
    ("# txlab: witness = s2 smells 1", "a witness is"),
    ("# txlab: nonsense", "cannot read this txlab: line"),
])
def test_bad_metadata_names_the_line(line, words):
    spec = specs.parse(f"\n{line}\nsession s\nstep s2 {{ }}\n", "m.spec")
    with pytest.raises(specs.SpecError, match=words) as caught:
        demo.parse_meta(spec)
    assert caught.value.line == 2


def test_every_catalog_demo_parses_with_metadata_for_every_level():
    found = demo.catalog()
    assert len(found) >= 21
    for name, path in found.items():
        spec = specs.load(path)
        meta = demo.parse_meta(spec)
        assert meta.title and meta.explain and meta.show, name
        assert set(meta.expect) == {"read-committed", "repeatable-read", "serializable"}, name
        assert spec.warnings == (), name
        assert len(spec.permutations) == 1, name


# ---------------------------------------------------------------- property: print, parse, compare

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                        blacklist_characters='\n\r"'),
                 min_size=1, max_size=8)
_sql = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="}\r"),
               max_size=30)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(_names, _sql), min_size=1, max_size=3), min_size=1,
                max_size=3, unique_by=len),
       st.lists(_sql, max_size=2))
def test_any_printed_spec_parses_back(sessions, setups):
    seen, lines, sessions_out = set(), [], []
    for block in setups:
        lines.append("setup {" + block + "}")
    for i, steps in enumerate(sessions):
        lines.append(f"session {_quote(f's{i}')}")
        kept = []
        for name, sql in steps:
            if name in seen:
                continue
            seen.add(name)
            kept.append((name, sql))
            lines.append(f"step {_quote(name)} {{{sql}}}")
        if not kept:
            lines.append(f"step {_quote(f'x{i}')} {{}}")
            seen.add(f"x{i}")
            kept.append((f"x{i}", ""))
        sessions_out.append(kept)
    spec = specs.parse("\n".join(lines) + "\n")
    trim = " \t\f"
    assert spec.setups == tuple(b.lstrip(trim).rstrip(trim) for b in setups)
    got = [[(s.name, s.sql) for s in sess.steps] for sess in spec.sessions]
    assert got == [[(n, q.lstrip(trim).rstrip(trim)) for n, q in kept] for kept in sessions_out]
    assert len(specs.all_permutations(spec)) == specs.count_permutations(spec)
