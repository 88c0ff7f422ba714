"""Elle's strong-session and strong models, Elle's model names, and the default model of
an Elle history: a history that each model must call invalid, and a neighbour it must
not. Pure: no database. (Shapes from Elle's list_append_test.clj.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from txlab import checker
from txlab.checker import models
from txlab.cli import cli


def serial(*txns):
    """(process, micro-ops) transactions, each completed before the next is invoked."""
    out = []
    for p, value in txns:
        out.append({"type": "invoke", "process": p,
                    "value": [[m[0], m[1], None] if m[0] == "r" else m for m in value]})
        out.append({"type": "ok", "process": p, "value": value})
    return out


# Elle "Strong Session SI violation": process 1 appends 2 to x, then reads x without it.
SESSION_SI = serial((0, [["append", "x", 1]]), (1, [["append", "x", 2]]),
                    (1, [["r", "x", [1]]]), (2, [["r", "x", [1, 2]]]))
# Elle "Strong SI violation": the same, but the stale read is another process's.
STRONG_SI = serial((0, [["append", "x", 1]]), (1, [["append", "x", 2]]),
                   (2, [["r", "x", [1]]]), (3, [["r", "x", [1, 2]]]))
# Elle wr-process-test: T1 reads x = [1] before process 2 appends 1 to x, and process 2
# read T1's append to y first.
WR_PROCESS = serial((1, [["r", "x", [1]], ["append", "y", 1]]), (2, [["r", "y", [1]]]),
                    (2, [["append", "x", 1]]))


def verdict(h, model, **kw):
    r = checker.check(h, model, **kw)
    return r.verdict, set(r.forbidden)


def test_a_session_that_misses_its_own_write_breaks_strong_session_snapshot_isolation():
    assert verdict(SESSION_SI, "strong-session-snapshot-isolation") == \
        ("invalid", {"G-single-process"})
    assert verdict(SESSION_SI, "strong-session-serializable") == \
        ("invalid", {"G-single-process"})
    assert verdict(SESSION_SI, "snapshot-isolation")[0] == "valid"  # plain SI allows it
    assert verdict(SESSION_SI, "serializable")[0] == "valid"


def test_another_sessions_stale_read_breaks_only_the_real_time_models():
    assert verdict(STRONG_SI, "strong-session-snapshot-isolation")[0] == "valid"
    assert verdict(STRONG_SI, "strong-session-serializable")[0] == "valid"
    assert verdict(STRONG_SI, "strong-snapshot-isolation") == ("invalid", {"G-single-realtime"})
    assert verdict(STRONG_SI, "strict-serializable") == ("invalid", {"G-single-realtime"})


def test_read_committed_through_a_session_forbids_g1c_process():
    assert verdict(WR_PROCESS, "strong-session-read-committed") == ("invalid", {"G1c-process"})
    assert verdict(WR_PROCESS, "read-committed")[0] == "valid"
    # strong-session read-uncommitted forbids only the write cycles through a session
    assert verdict(WR_PROCESS, "strong-session-read-uncommitted")[0] == "valid"


def test_the_strong_models_are_nested_as_in_elle():
    f = {name: m.forbids for name, m in models.MODELS.items()}
    for weak, strong in [("read-uncommitted", "strong-session-read-uncommitted"),
                         ("strong-session-read-uncommitted", "strong-read-uncommitted"),
                         ("strong-session-read-uncommitted", "strong-session-read-committed"),
                         ("read-committed", "strong-session-read-committed"),
                         ("strong-session-read-committed", "strong-read-committed"),
                         ("strong-read-committed", "strong-snapshot-isolation"),
                         ("snapshot-isolation", "strong-session-snapshot-isolation"),
                         ("strong-session-snapshot-isolation", "strong-snapshot-isolation"),
                         ("strong-session-snapshot-isolation", "strong-session-serializable"),
                         ("serializable", "strong-session-serializable"),
                         ("strong-session-serializable", "strict-serializable"),
                         ("strong-snapshot-isolation", "strict-serializable")]:
        assert f[weak] < f[strong], (weak, strong)
    assert "G2-item-process" not in f["strong-session-snapshot-isolation"]  # write skew: SI's
    assert "G2-item-process" in f["strong-session-serializable"]
    assert not any(k.endswith("-realtime") for k in f["strong-session-serializable"])


def test_an_elle_history_is_judged_against_elles_default_strict_serializable():
    r = checker.check(STRONG_SI)
    assert (r.model, r.verdict) == ("strict-serializable", "invalid")
    assert r.forbidden == ["G-single-realtime"]
    fine = serial((0, [["append", "x", 1]]), (1, [["append", "x", 2]]),
                  (2, [["r", "x", [1, 2]]]))
    r = checker.check(fine)
    assert (r.model, r.verdict) == ("strict-serializable", "valid")


@pytest.mark.parametrize("name,model", [(":strong-serializable", "strict-serializable"),
                                        ("PL-3", "serializable"),
                                        ("strong_session_snapshot_isolation",
                                         "strong-session-snapshot-isolation"),
                                        ("strong-PL-2", "strong-read-committed"),
                                        ("strong-session-si", "strong-session-snapshot-isolation"),
                                        ("strong_si", "strong-snapshot-isolation")])
def test_elles_model_names_are_understood(name, model):
    assert models.resolve_model(name) == model


def test_ruled_out_names_the_weakest_models():
    assert models.ruled_out_text(models.ruled_out({"G2-item"})) == \
        "serializable, and 2 stronger models"
    assert models.ruled_out_text(models.ruled_out({"G-single-realtime"})) == \
        "strong-snapshot-isolation, and 1 stronger model"
    assert models.ruled_out_text(models.ruled_out({"G2-item-realtime"})) == "strict-serializable"


def test_the_cli_takes_a_strong_model_and_exits_1(tmp_path):
    p = tmp_path / "h.edn"
    lines = []
    for op in SESSION_SI:
        val = " ".join("[" + " ".join([":" + m[0], ":" + m[1], "nil" if m[2] is None else
                                       ("[" + " ".join(map(str, m[2])) + "]"
                                        if isinstance(m[2], list) else str(m[2]))]) + "]"
                       for m in op["value"])
        lines.append(f'{{:process {op["process"]}, :type :{op["type"]}, :value [{val}]}}')
    p.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(cli, ["check", str(p), "-m", "strong-session-snapshot-isolation"])
    assert res.exit_code == 1, res.output
    assert "G-single-process forbidden at strong-session-snapshot-isolation" in res.output
    assert "ruled out: strong-session-snapshot-isolation, and 3 stronger models" in res.output
    res = CliRunner().invoke(cli, ["check", str(p), "-m", "snapshot-isolation"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["check", str(p), "-m", "strong-sessions"])
    assert res.exit_code == 2 and "strong-session-serializable" in res.output


def test_an_edn_history_in_one_vector_is_read_as_elles_tests_write_it(tmp_path):
    p = tmp_path / "h.edn"
    p.write_text("[{:process 0, :type :ok, :value [[:append :x 1]]}\n"
                 " {:process 1, :type :ok, :value [[:append :x 2]]}\n"
                 " {:process 2, :type :ok, :value [[:r :x [2 1]] [:r :y nil]]}]\n")
    r = checker.check(p, "serializable")
    assert r.history["transactions"] == 3 and r.history["format"] == "list-append"
    assert r.verdict == "valid"
    p.write_text("[{:process 0, :type :ok, :value [[:append :x 1]]}\n")  # never closed
    res = CliRunner().invoke(cli, ["check", str(p)])
    assert res.exit_code == 2 and "never closed" in res.output


def test_explanations_write_elles_keys_and_values_in_elles_notation():
    h = serial((0, [["append", "ring", 0], ["append", ":anti", ":first"],
                    ["append", (":anti", 1), 0]]),
               (1, [["r", (":anti", 1), [0]], ["r", ":anti", None]]),
               (2, [["r", ":anti", [":first"]]]))
    text = checker.check(h, "serializable").anomalies["G-single"]["examples"][0]["text"]
    assert "read [:anti 1] ending in the element 0" in text
    assert "appended the next element :first" in text
    assert "(':anti', 1)" not in text and "':first'" not in text


def test_a_cycle_of_versions_names_the_initial_state_once():
    # Elle's scc-sort-bug-test: x read as 1 and then as nil by one process (linearizable)
    h = serial((0, [["r", ":x", 1]]), (0, [["r", ":x", None]]),
               (0, [["r", ":x", 4], ["w", ":x", 3]]), (0, [["w", ":x", 4]]))
    r = checker.check(h, "strict-serializable", linearizable_keys=True, garbage_reads=False)
    text = r.anomalies["cyclic-versions"]["examples"][0]["text"]
    assert text.count("T0 = ") == 1 and "T0 = {the initial state}" in text


def test_an_elle_history_names_the_model_not_a_level_it_never_had(tmp_path):
    p = tmp_path / "h.json"
    import json as _json

    p.write_text("".join(_json.dumps(op) + "\n" for op in STRONG_SI))
    res = CliRunner().invoke(cli, ["check", str(p)])
    assert res.exit_code == 1, res.output
    assert "at this level" not in res.output
    assert "FORBIDDEN at strict-serializable: a bug if the system promises " \
           "strict-serializable" in " ".join(res.output.split())


def _spellings():
    """Every spelling `txlab run -i` takes, built from the levels and the aliases."""
    from txlab import db, levels

    for key, level in db.LEVELS.items():
        for text in (key, level.sql, key.replace("-", "_"), level.sql.replace(" ", ""),
                     key.upper().replace("-", "_"), key.replace("z", "s")):
            yield text, key
    yield from levels.ALIASES.items()


def test_check_takes_every_level_spelling_run_takes():
    # `run -i serialisable` was taken and `check -m serialisable` refused; `check -i si`
    # refused what `run -i si` takes
    from txlab import db

    for text, key in _spellings():
        assert db.parse_isolation(text).key == key, text
        assert models.model_for_isolation(text) == models.POSTGRES_LEVELS[key], text
        if key == "repeatable-read":  # its model is snapshot-isolation, not a namesake
            want = "snapshot-isolation" if text in ("si", "snapshot") else None
        else:
            want = key
        if want:
            assert models.resolve_model(text) == want, text
        else:
            with pytest.raises(ValueError, match="-i repeatable-read.*-m snapshot-isolation"):
                models.resolve_model(text)
    history = str(Path(__file__).parent / "data" / "bank-transfer-naive-rc.jsonl")
    for args in (["-m", "serialisable"], ["-m", "read committed"], ["-i", "readcommitted"],
                 ["-i", "si"], ["-m", "strict_serialisable"]):
        r = CliRunner().invoke(cli, ["check", history, *args, "--format", "json"])
        assert r.exit_code in (0, 1), (args, r.output)


def test_an_unknown_level_or_model_is_still_refused():
    # the neighbour
    from txlab import db
    from txlab.errors import UsageError

    for text in ("acid", "read", "serial", "snapshot-read"):
        with pytest.raises(ValueError, match="unknown model"):
            models.resolve_model(text)
        with pytest.raises(ValueError, match="unknown isolation level"):
            models.model_for_isolation(text)
        with pytest.raises(UsageError, match="unknown isolation level"):
            db.parse_isolation(text)
