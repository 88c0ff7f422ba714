"""Elle's own verdicts, as data: Elle's test suite and elle-cli's test histories.

tests/data/elle/elle-tests.json transcribes the history-level cases of Elle's
rw-register and list-append tests (jepsen-io/elle); tests/data/elle/elle-cli.json
lists elle-cli's test histories (copied under tests/data/elle/elle-cli/) with the
results Elle gave. Every case is checked twice:

- with the options Elle's test used (Elle's defaults where it set none: no
  writes-follow-reads, no garbage reads): txlab must report exactly the
  anomalies Elle reported, in txlab's names;
- with txlab's defaults: the same, except for the cases listed with a
  `txlab_default` entry, each with the reason (docs/checker.md, "Where txlab
  differs from Elle").

Elle reports only the anomalies that the models or anomaly classes it was asked
about prohibit; so txlab's findings are compared within that set. Elle-only
bookkeeping (empty-transaction-graph) is not an anomaly but is held to txlab's
`empty_graph` (then the verdict is unknown, as Elle's :valid? :unknown), and an Elle "<model>-cycle-exists"
(a cycle exists but was not named) is matched by any cycle txlab names there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txlab import checker
from txlab.checker.models import BASE_CYCLES, MODELS

DATA = Path(__file__).parent / "data" / "elle"
TESTS = json.loads((DATA / "elle-tests.json").read_text())["cases"]
CLI = json.loads((DATA / "elle-cli.json").read_text())["cases"]

_NAMES = {"G-single-item": "G-single", "G-nonadjacent-item": "G-nonadjacent", "G2": "G2-item",
          "lost-update": "lost update"}
_IGNORED = {"empty-transaction-graph"}
_SI_CYCLES = ("G0", "G1c", "G-single", "G-nonadjacent")


def txlab_name(elle: str) -> str:
    for suffix in ("-process", "-realtime"):
        if elle.endswith(suffix):
            return txlab_name(elle[: -len(suffix)]) + suffix
    return _NAMES.get(elle, elle)


def _variants(kinds, *suffixes):
    return {f"{k}-{s}" for k in kinds for s in suffixes}


# Elle's :anomalies option: every anomaly that implies the one asked for (txlab's names).
ELLE_ANOMALIES = {
    "G0": {"G0"},
    "G1": {"G0", "G1a", "G1b", "G1c", "incompatible-order", "dirty-update", "future-read"},
    "G2": {"G-single", "G-nonadjacent", "G2-item", "lost update"},
    "G-single": {"G-single"},
    "internal": {"internal"},
    "dirty-update": {"dirty-update"},
}
_RC = set(MODELS["read-committed"].forbids)
_SI = set(MODELS["snapshot-isolation"].forbids)
_SER = set(MODELS["serializable"].forbids)
# Elle's consistency models: what each prohibits (txlab's names), process / real-time order.
# (The txlab model is the nearest one, for the model-dependent search order only.)
ELLE_MODELS = {
    "read-uncommitted": (set(MODELS["read-uncommitted"].forbids), False, False, "read-uncommitted"),
    "read-committed": (_RC, False, False, "read-committed"),
    "repeatable-read": (_RC | {"G-single", "G-nonadjacent", "G2-item", "lost update"}, False, False,
                        "serializable"),
    "snapshot-isolation": (_SI, False, False, "snapshot-isolation"),
    "serializable": (_SER, False, False, "serializable"),
    "strict-serializable": (set(MODELS["strict-serializable"].forbids), True, True,
                            "strict-serializable"),
    "strong-session-snapshot-isolation": (_SI | _variants(_SI_CYCLES, "process"), True, False,
                                          "snapshot-isolation"),
    "strong-session-serializable": (_SER | _variants(BASE_CYCLES, "process"), True, False,
                                    "serializable"),
    "strong-snapshot-isolation": (_SI | _variants(_SI_CYCLES, "process", "realtime"), True, True,
                                  "snapshot-isolation"),
}
CYCLE_KINDS = set(BASE_CYCLES) | _variants(BASE_CYCLES, "process", "realtime")


def translate(opts: dict, only):
    """Elle's options -> (txlab keyword arguments, the anomalies Elle would report)."""
    if "analyzer" in opts:  # one of Elle's graph analyzers, called directly
        return {"process": False, "realtime": False, "model": "serializable"}, set(only)
    models = opts.get("consistency-models", ["strict-serializable"]) or []
    prohibited: set = set()
    process = realtime = False
    model = "serializable"
    for m in models:
        p, proc, rt, model = ELLE_MODELS[m]
        prohibited |= p
        process |= proc
        realtime |= rt
    for a in opts.get("anomalies") or []:
        prohibited |= ELLE_ANOMALIES[a]
    if only:
        prohibited &= set(only)
    kw = {"process": process, "realtime": realtime, "model": model,
          "sequential_keys": bool(opts.get("sequential-keys?")),
          "linearizable_keys": bool(opts.get("linearizable-keys?"))}
    return kw, prohibited


def compare(found: set, prohibited: set, expected: list) -> None:
    got = found & prohibited
    wild = any(e.endswith("-cycle-exists") for e in expected)
    want = {txlab_name(e) for e in expected
            if e not in _IGNORED and not e.endswith("-cycle-exists")}
    if wild:  # Elle proved a cycle exists without naming it: txlab must name one
        assert want <= got and (got - want) <= CYCLE_KINDS and got & CYCLE_KINDS, (got, expected)
    else:
        assert got == want, f"txlab found {sorted(got)}, Elle {sorted(want)} (all found: {sorted(found)})"


def run(source, opts: dict, only, elle_defaults: bool):
    kw, prohibited = translate(opts, only)
    if elle_defaults:
        kw.update(wfr_keys=bool(opts.get("wfr-keys?")), garbage_reads=False)
    else:  # txlab's defaults, except where Elle's test set an option itself
        if "wfr-keys?" in opts:
            kw["wfr_keys"] = opts["wfr-keys?"]
        if not only:
            prohibited = prohibited | {"garbage-read"}
    result = checker.check(source, **kw)
    # no search timed out; unknown only where there was no graph to search at all
    assert result.verdict != checker.UNKNOWN or (result.empty_graph and not result.unknown)
    return set(result.anomalies), prohibited, result


def empty_as_elle(result, expected: list, only) -> None:
    """Elle's :empty-transaction-graph (no dependency inferred: :valid? :unknown), told
    as Elle tells it. Checks limited to one analyser (`only`) ran no graph in Elle."""
    if not only:
        assert result.empty_graph == ("empty-transaction-graph" in expected), expected


def _checks():
    for case in TESTS:
        for n, chk in enumerate(case["checks"]):
            yield pytest.param(case, n, chk, id=f"{case['id']}#{n}")


@pytest.mark.parametrize("case,n,chk", list(_checks()))
def test_elle_test_suite_with_elles_options(case, n, chk):
    found, prohibited, result = run(case["history"], chk["opts"], chk.get("only"), True)
    compare(found, prohibited, chk["anomaly-types"])
    empty_as_elle(result, chk["anomaly-types"], chk.get("only"))
    assert (not (found & prohibited)) == (chk["valid"] is not False)


@pytest.mark.parametrize("case,n,chk", list(_checks()))
def test_elle_test_suite_with_txlab_defaults(case, n, chk):
    found, prohibited, _ = run(case["history"], chk["opts"], chk.get("only"), False)
    diff = chk.get("txlab_default") or case.get("txlab_default")
    compare(found, prohibited, diff["anomaly-types"] if diff else chk["anomaly-types"])


@pytest.mark.parametrize("case", CLI, ids=[c["case"] for c in CLI])
def test_elle_cli_histories_with_elles_options(case):
    found, prohibited, result = run(DATA / "elle-cli" / case["file"], case["opts"], None, True)
    compare(found, prohibited, case["anomaly-types"])
    empty_as_elle(result, case["anomaly-types"], None)
    assert (not (found & prohibited)) == (case["valid"] is not False)


@pytest.mark.parametrize("case", CLI, ids=[c["case"] for c in CLI])
def test_elle_cli_histories_with_txlab_defaults(case):
    found, prohibited, _ = run(DATA / "elle-cli" / case["file"], case["opts"], None, False)
    diff = case.get("txlab_default")
    compare(found, prohibited, diff["anomaly-types"] if diff else case["anomaly-types"])


def test_every_difference_says_why():
    diffs = [c["txlab_default"] for c in TESTS + CLI + [k for c in TESTS for k in c["checks"]]
             if "txlab_default" in c]
    assert diffs and all(d["why"] for d in diffs)
