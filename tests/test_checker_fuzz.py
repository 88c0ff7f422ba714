"""Malformed histories never crash `txlab check` (issue 13, item 10). Pure: no database.

Hypothesis writes histories in each format the checker reads (txlab's JSON lines,
Elle's JSON, Jepsen's EDN), then breaks them: wrong types in any field, missing
fields, stray lines, cut lines, random bytes. `txlab check` must answer with a
documented exit code only: 0 or 1 with a verdict, or 2 with "cannot check FILE..."
naming the file; never "internal error" or a traceback.
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab import checker
from txlab.checker.synthetic import generate
from txlab.cli import cli

SETTINGS = settings(max_examples=int(__import__("os").environ.get("TXLAB_FUZZ_EXAMPLES", "100")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=8)


def check_file(tmp_path, content: bytes):
    p = tmp_path / "h"
    p.write_bytes(content)
    res = CliRunner().invoke(cli, ["check", str(p), "--max-examples", "1"])
    out = res.output
    assert res.exit_code in (0, 1, 2), out
    assert "internal error" not in out and "Traceback" not in out, out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 2:
        assert f"cannot check {p}" in out, out
    else:
        verdicts = ("VALID", "UNKNOWN") if res.exit_code == 0 else ("INVALID",)
        assert any(line.split(":")[0] in verdicts for line in out.splitlines()), out
    return res


def _txlab_records():
    h = generate("si", 6, keys=3, seed=3)
    recs = [{"type": "run", "format": "txlab-history/1", "isolation": "REPEATABLE READ"},
            {"type": "init", "id": 0, "ops": [list(op) for op in h.initial]}]
    for i, a in enumerate(h.attempts, 1):
        recs.append({"type": "txn", "id": i, "worker": a.worker, "txn": a.txn, "attempt": 0,
                     "invoke_ns": a.invoke_ns, "complete_ns": a.complete_ns,
                     "outcome": a.outcome, "ops": [list(op) for op in a.ops]})
    return recs


TXLAB = _txlab_records()
FIELDS = ["type", "worker", "invoke_ns", "complete_ns", "outcome", "ops", "isolation"]


@st.composite
def broken_txlab(draw):
    recs = json.loads(json.dumps(TXLAB))
    for _ in range(draw(st.integers(1, 3))):
        rec = recs[draw(st.integers(0, len(recs) - 1))]
        how = draw(st.sampled_from(["field", "drop", "op", "opfield", "row"]))
        if how == "field":
            rec[draw(st.sampled_from(FIELDS))] = draw(json_values)
        elif how == "drop" and rec:
            rec.pop(draw(st.sampled_from(sorted(rec))))
        elif isinstance(rec.get("ops"), list) and rec["ops"]:
            op = rec["ops"][draw(st.integers(0, len(rec["ops"]) - 1))]
            if how == "op":
                rec["ops"].append(draw(json_values))
            elif isinstance(op, list) and op:
                op[draw(st.integers(0, len(op) - 1))] = draw(json_values)
    lines = [json.dumps(r) for r in recs]
    if draw(st.booleans()):
        n = draw(st.integers(0, len(lines) - 1))
        lines[n] = lines[n][:draw(st.integers(0, len(lines[n])))]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=12)))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@SETTINGS
@given(content=broken_txlab())
def test_broken_txlab_histories(tmp_path, content):
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    check_file(tmp_path, content)


mops = st.lists(st.tuples(st.sampled_from(["r", "w", "append", ":r", "frob", None, 1]),
                          st.one_of(st.sampled_from(["x", "y"]), json_values),
                          st.one_of(st.integers(0, 4), st.lists(st.integers(0, 4), max_size=3),
                                    json_values)).map(list)
                | st.lists(json_values, max_size=4), max_size=4)
elle_ops = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["invoke", "ok", "fail", "info", ":ok", "bogus"]),
     "process": st.one_of(st.integers(0, 2), json_values)},
    optional={"value": st.one_of(mops, json_values), "f": st.sampled_from(["txn", "nemesis"]),
              "index": json_values, "time": json_values}), min_size=1, max_size=8)


@SETTINGS
@given(ops=elle_ops, layout=st.sampled_from(["lines", "array", "edn"]))
def test_broken_elle_histories(tmp_path, ops, layout):
    if layout == "lines":
        content = "".join(json.dumps(o) + "\n" for o in ops)
    elif layout == "array":
        content = json.dumps(ops)
    else:
        content = "".join(_edn(o) + "\n" for o in ops)
    check_file(tmp_path, content.encode())


def _edn(x) -> str:
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, dict):
        return "{" + ", ".join(f":{k} {_edn(v)}" if isinstance(k, str) and k.isidentifier()
                               else f"{_edn(k)} {_edn(v)}" for k, v in x.items()) + "}"
    if isinstance(x, list):
        return "[" + " ".join(map(_edn, x)) + "]"
    if isinstance(x, str):
        return ":" + x if x.isidentifier() else json.dumps(x)
    return repr(x)


@SETTINGS
@given(ops=elle_ops, cut=st.integers(0, 400), junk=st.binary(max_size=6))
def test_edn_cut_and_spliced(tmp_path, ops, cut, junk):
    text = "".join(_edn(o) + "\n" for o in ops).encode()
    check_file(tmp_path, text[:cut] + junk + text[cut:])


@SETTINGS
@given(content=st.binary(max_size=200))
def test_random_bytes(tmp_path, content):
    check_file(tmp_path, content)


def test_string_and_null_versions_are_refused_with_file_and_line(tmp_path):
    for bad in ('"2"', "null", "2.0", "true"):
        lines = [json.dumps(r) for r in TXLAB]
        rec = json.loads(lines[3])
        rec["ops"][0][2] = json.loads(bad)
        lines[3] = json.dumps(rec)
        p = tmp_path / "h.jsonl"
        p.write_text("\n".join(lines) + "\n")
        res = CliRunner().invoke(cli, ["check", str(p)])
        assert res.exit_code == 2, res.output
        assert f"{p}:4: bad micro-op" in res.output and "must be an integer" in res.output
    lines = [json.dumps(r) for r in TXLAB]
    p.write_text("\n".join(lines) + "\n")
    assert CliRunner().invoke(cli, ["check", str(p)]).exit_code == 0


def test_deeply_nested_values_are_refused(tmp_path):
    deep = "[" * 5000 + "]" * 5000
    p = tmp_path / "h.jsonl"
    p.write_text('{"type": "txn", "outcome": "committed", "ops": [["w", "x", 1, ' + deep + ']]}\n')
    res = CliRunner().invoke(cli, ["check", str(p)])
    assert res.exit_code == 2 and f"cannot check {p}:1" in res.output


def test_the_loader_names_the_line():
    import pytest

    from txlab.checker import HistoryFormatError
    with pytest.raises(HistoryFormatError, match=r"<ops>:2: type must be"):
        checker.check([{"type": "ok", "process": 0, "value": []}, {"type": "nope"}])


@settings(SETTINGS, max_examples=max(10, SETTINGS.max_examples // 3))
@given(ops=elle_ops)
def test_edn_fast_path_reads_what_the_tokenizer_reads(ops):
    from pathlib import Path

    from txlab.checker import edn

    lines = [(_edn(o) + "\n").encode() for o in ops]
    fast = edn._Fast().parse(lines)
    for line, rec in zip(lines, fast, strict=True):
        slow = list(edn._Tokenizer(Path("h")).feed(1, line))
        if rec is not None:
            assert [(1, rec)] == slow


def test_huge_integers_are_read_exactly(tmp_path):
    big = 2 ** 64 + 1
    for content in (json.dumps(ops_pair := [
            {"type": "invoke", "process": 0, "value": [["w", "x", big]]},
            {"type": "ok", "process": 0, "value": [["w", "x", big]]},
            {"type": "invoke", "process": 1, "value": [["r", "x", None]]},
            {"type": "ok", "process": 1, "value": [["r", "x", big + 1]]}]),
            "".join(_edn(o) + "\n" for o in ops_pair)):
        p = tmp_path / "h"
        p.write_text(content)
        r = checker.check(p)
        assert set(r.anomalies) == {"garbage-read"}  # big + 1 was never written
        assert r.anomalies["garbage-read"]["examples"][0]["transactions"][0]["ops"][0][2] == big + 1
