"""The block readers read what the line-by-line readers read. Pure: no database.

`txlab check FILE` reads Jepsen's EDN and JSON lines a block of lines at a time: an
EDN block is rewritten into JSON by byte substitutions (edn._Blocks) and parsed in
one call, a JSON block is parsed in one call; whatever does not fit goes line by line.
Each test here compares a block reader, at several block sizes (so that forms and
lines fall across block boundaries), with the reference: for EDN the tokenizer alone,
for JSON one parse per line. Values, line numbers and error messages must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab.checker import edn, loading
from txlab.checker.loading import HistoryFormatError

SETTINGS = settings(max_examples=int(__import__("os").environ.get("TXLAB_FUZZ_EXAMPLES", "100")),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])
SIZES = (7, 64, 400, 1 << 18)


def outcome(gen):
    """(what the reader yields, the error it ends with or None)."""
    out = []
    try:
        for x in gen:
            out.append(x)
    except HistoryFormatError as exc:
        return out, str(exc)
    return out, None


def tokenizer_reads(path: Path, data: bytes):
    tok = edn._Tokenizer(path)

    def gen():
        for n, line in enumerate(data.split(b"\n"), 1):
            if line.strip():
                yield from tok.feed(n, line)
        tok.finish()

    return outcome(gen())


def block_reads(monkeypatch, path: Path, data: bytes, reader):
    path.write_bytes(data)
    got = []
    for size in SIZES:
        monkeypatch.setattr(loading, "BLOCK", size)
        with open(path, "rb") as f:
            got.append(outcome(reader(path, f)))
    return got


# ---------------------------------------------------------------- EDN, as Jepsen writes it

keywords = st.sampled_from([":type", ":f", ":process", ":value", ":index", ":time", ":ok",
                            ":invoke", ":fail", ":info", ":txn", ":r", ":w", ":append",
                            ":nemesis", ":start-partition", ":x", ":cas?", ":a.b/c", ":nil",
                            ":1"])
numbers = st.one_of(st.integers(-5, 5), st.integers(-2 ** 63, 2 ** 63 - 1),
                    st.integers(2 ** 64, 2 ** 70), st.sampled_from(["1.5", "-0.25", "1e3",
                                                                    "2N", "1/2", "-0"]))
strings = st.text(st.sampled_from('ab "\\\n\t:;{}[]#,é'), max_size=5).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    .replace("\t", "\\t") + '"')
atoms = st.one_of(keywords, numbers.map(str), st.just("nil"), st.sampled_from(
    ["true", "false", "foo", "\\a", "nilly"]), strings)


def _vector(items):
    return "[" + " ".join(items) + "]"


def _map(pairs):
    return "{" + ", ".join(f"{k} {v}" for k, v in pairs) + "}"


values = st.recursive(atoms, lambda c: st.lists(c, max_size=4).map(_vector)
                      | st.lists(st.tuples(keywords, c), max_size=3).map(_map)
                      | st.lists(c, max_size=2).map(lambda x: "#{" + " ".join(x) + "}")
                      | st.lists(c, max_size=2).map(lambda x: "(" + " ".join(x) + ")"),
                      max_leaves=8)
mops = st.lists(st.tuples(st.sampled_from([":r", ":w", ":append"]),
                          st.one_of(st.integers(-3, 300).map(str), keywords),
                          st.one_of(st.just("nil"), st.integers(-3, 9).map(str),
                                    st.lists(st.integers(0, 9).map(str), max_size=3)
                                    .map(_vector))).map(_vector),
                max_size=4).map(_vector)
ops = st.fixed_dictionaries(
    {":type": st.sampled_from([":invoke", ":ok", ":fail", ":info"]),
     ":f": st.sampled_from([":txn", ":start-partition"]),
     ":process": st.one_of(st.integers(0, 9).map(str), st.just(":nemesis")),
     ":value": st.one_of(mops, values), ":index": st.integers(0, 10 ** 6).map(str)},
    optional={":time": numbers.map(str), ":error": values})


@st.composite
def op_line(draw):
    pairs = list(draw(ops).items())
    pairs = draw(st.permutations(pairs))
    line = _map(pairs)
    how = draw(st.sampled_from(["plain"] * 16 + ["tag", "comment", "discard", "split",
                                                 "tabs", "blank", "crlf", "junk", "top"]))
    if how == "tag":
        line = "#jepsen.history.Op" + line
    elif how == "comment":
        line = draw(st.sampled_from(["; a comment", line + " ; after"]))
    elif how == "discard":
        line = line + " #_ " + draw(values)
    elif how == "split":  # a form over two lines
        cut = line.index(", ") if ", " in line else 1
        line = line[:cut] + "\n" + line[cut + 2:]
    elif how == "tabs":
        line = line.replace(" ", "\t", 1)
    elif how == "blank":
        line = line + "\n"
    elif how == "crlf":
        line = line + "\r"
    elif how == "junk":
        line = draw(st.sampled_from(["{:a 1", "]", "{:a}", "{1 2}", '"open', "#{1}",
                                     "{[1] 2}", "{:a 1 :b}", "  "]))
    elif how == "top":
        line = draw(values)
    return line


histories = st.lists(op_line(), min_size=1, max_size=20).map(
    lambda lines: ("\n".join(lines) + "\n").encode())


@SETTINGS
@given(data=histories, end=st.booleans())
def test_edn_blocks_read_what_the_tokenizer_reads(tmp_path, monkeypatch, data, end):
    if not end:
        data = data.rstrip(b"\n")
    p = tmp_path / "history.edn"
    want = tokenizer_reads(p, data)
    for got in block_reads(monkeypatch, p, data, edn.read_file):
        assert got == want


def test_edn_blocks_on_a_jepsen_history(tmp_path, monkeypatch):
    """Every form Jepsen writes, at every block size: the same values as the tokenizer,
    and the clean blocks really take the fast path."""
    clean = [
        "{:type :invoke, :f :txn, :value [[:append 9 1] [:r 8 nil]], :process 0, :time 5, "
        ":index 0}",
        "{:index 1, :time 9, :type :ok, :process 0, :f :txn, :value [[:append 9 1] "
        "[:r 8 [1 2 -3]]]}",
        "{:type :fail, :f :txn, :value [[:w -7 nil]], :process 1, :time -12, :index 2, "
        ":error [:unique-violation {:key 3}]}",
        "{:type :info, :f :txn, :value nil, :process 2, :index 3, :flag true, :x 1.5}",
    ]
    odd = [
        '{:type :info, :f :start-partition, :process :nemesis, :value "majority \\"n1\\"", '
        ":index 4}",
        "; a comment line",
        "#jepsen.history.Op{:index 5, :time 1, :type :invoke, :process 3, :f :txn, "
        ":value [[:r 1 nil]]}",
        "{:type :ok, :f :txn, :process 3, :index 6,",
        " :value [[:r 1 nil]]} ; the end of a form over two lines",
        "{:type :info, :f :kill, :process :nemesis, :value #{\"n1\" \"n2\"}, :index 7}",
        "{:type :ok, :f :txn, :value [[:w 1 123456789012345678901]], :process 4, :index 8}",
        "",
        "{:type :ok, :f :txn, :value [[:w 2 \\a]], :process 4, :index 9} #_ {:skipped (1 2)}",
    ]
    data = ("\n".join(clean * 50 + odd + clean * 50) + "\n").encode()
    p = tmp_path / "history.edn"
    want = tokenizer_reads(p, data)
    assert want[1] is None and len(want[0]) == 400 + 6
    for got in block_reads(monkeypatch, p, data, edn.read_file):
        assert got == want
    b = edn._Blocks()
    text = ("\n".join(clean * 10) + "\n").encode()
    recs = b.parse(text, 40)
    assert recs is not None and b.clean, "the fast path must take Jepsen's plain ops"
    assert [(1, recs[0])] == list(edn._Tokenizer(p).feed(1, text.split(b"\n")[0]))
    assert b.parse(text.replace(b"\n", b"\r\n"), 40) == recs  # Windows line ends too
    recs = b.parse(("\n".join(clean * 3 + odd[:3]) + "\n").encode(), 15)
    assert recs is not None and not b.clean and recs[12:14] == [None, None]
    assert recs[14][":index"] == 5 and all(type(r) is dict for r in recs[:12])


@pytest.mark.parametrize("text", [
    "{:a\t:1}", "[:a, :b]", "{:a :b :c}", "{:a :b, :c}", "{:a:b 1}", "{:a [1\n2]}",
    "[nil nil]", "{:a nil}", "{:a nilly}", "{:a :nil}", "[:a :1]", "{:a 1, :a 2}",
    "{:a 01}", "{:a 1.}", "{:a +1}", "{:a -0}", "{:a 1e400}", "{:a {:b {:c []}}}",
    "{:a 1}  ", "{:é :ü}", "{:a \x01}", "{:a 1} {:b 2}", "{}", "{:a #{}}",
    "{:a :b)}", "{:a :b\u00a0c}", "{:a\u2028:b}", "{:a :b\x1fc}", "{:a:b :c:d}",
])
def test_edn_blocks_on_odd_forms(tmp_path, monkeypatch, text):
    """Odd spacing and forms near JSON: what the tokenizer reads, or its error."""
    data = (text + "\n{:type :ok, :value [[:r 1 nil]]}\n").encode()
    p = tmp_path / "history.edn"
    want = tokenizer_reads(p, data)
    for got in block_reads(monkeypatch, p, data, edn.read_file):
        assert got == want


# ---------------------------------------------------------------- JSON lines

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=6)


@st.composite
def json_line(draw):
    line = json.dumps(draw(json_values))
    how = draw(st.sampled_from(["plain"] * 8 + ["blank", "spaces", "crlf", "two", "bad",
                                                 "split", "nan"]))
    if how == "blank":
        line += "\n"
    elif how == "spaces":
        line = " " + line + " \t"
    elif how == "crlf":
        line += "\r"
    elif how == "two":
        line = line + ", " + line
    elif how == "bad":
        line = line[:draw(st.integers(0, max(0, len(line) - 1)))] or "x"
    elif how == "split":
        line = "[1,\n2]"
    elif how == "nan":
        line = "NaN"
    return line


@SETTINGS
@given(lines=st.lists(json_line(), min_size=1, max_size=12), end=st.booleans())
def test_json_blocks_read_what_one_parse_per_line_reads(tmp_path, monkeypatch, lines, end):
    data = "\n".join(lines).encode() + (b"\n" if end else b"")
    p = tmp_path / "h.jsonl"
    p.write_bytes(data)
    with open(p, "rb") as f:
        want = outcome(loading.json_records(p, loading._numbered_lines(f)))
    for got in block_reads(monkeypatch, p, data, loading.json_lines):
        assert got == want


def test_json_blocks_take_the_fast_path_and_read_huge_integers_exactly(tmp_path, monkeypatch):
    lines = [json.dumps({"type": "ok", "value": [["w", i, i]]}) for i in range(300)]
    lines[150] = json.dumps({"type": "ok", "value": [["w", 1, 2 ** 64 + 1]]})
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(lines) + "\n")
    calls = []
    real = loading.json_records
    monkeypatch.setattr(loading, "json_records",
                        lambda path, it: calls.append(1) or real(path, it))
    monkeypatch.setattr(loading, "BLOCK", 1024)
    with open(p, "rb") as f:
        got = list(loading.json_lines(p, f))
    assert got == [(n, json.loads(line)) for n, line in enumerate(lines, 1)]
    assert got[150][1]["value"][0][2] == 2 ** 64 + 1
    assert 0 < len(calls) < 5, "only the block with the huge integer goes line by line"


def test_edn_blocks_outside_the_subset_are_tried_again_only_now_and_then():
    """A file whose blocks never parse whole costs little more than reading it line by
    line: after four misses in a row only every 16th block is tried; a success resets."""
    b = edn._Blocks()
    bad = b"{:a\t1}\n" * 3
    good = b"{:type :ok, :value [[:r 1 nil]]}\n" * 3
    assert [b.parse(bad, 3) for _ in range(4)] == [None] * 4
    assert [b.parse(good, 3) for _ in range(12)] == [None] * 12
    assert b.parse(good, 3) == [{":type": ":ok", ":value": [[":r", 1, None]]}] * 3
    assert b.parse(good, 3) is not None and b.misses == 0


@pytest.mark.parametrize("line", ["{:a :b)}", "{:a :b\u00a0c}", "{:a :b\u2028c}"])
def test_edn_line_reader_leaves_stray_parens_and_unicode_spaces_to_the_tokenizer(line):
    """The tokenizer ends a keyword at ")" and at any whitespace Python knows (U+00A0
    too); the per-line rewriter must not read such a line as one keyword."""
    data = (line + "\n").encode()
    rec = edn._Fast().parse([data])[0]
    want = outcome(edn._Tokenizer(Path("h")).feed(1, data))
    assert rec is None or ([(1, rec)], None) == want
