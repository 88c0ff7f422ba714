"""Every built-in scenario keeps the history contract (docs/history-format.md):
committed versions of a key form a contiguous chain, and a committed read records
the same value that the version's installer recorded. The checker relies on both."""

from __future__ import annotations

from collections import defaultdict

import pytest

from txlab.scenario import builtin_dir, discover
from txlab.testing import run

BUILTIN = {n: s for n, s in discover(env={}).items() if s.path.parent == builtin_dir()}
PAIRS = [(n, st.name) for n, s in sorted(BUILTIN.items()) for st in s.strategies]


def _reads(ops):
    for op in ops:
        if op[0] == "r":
            yield op[1], op[2], op[3]
        elif op[0] == "pr":
            yield from (tuple(row) for row in op[2])


@pytest.mark.parametrize("scenario,strategy", PAIRS)
def test_versions_chain_and_values_agree(pg_dsn, scenario, strategy):
    result = run(scenario, pg_dsn, strategy=strategy, isolation="read-committed", workers=4,
                 transactions=40, seed=11, think_ms=1, deadlock_timeout_ms=100, check=False)
    h = result.history
    installed = {}  # (key, version) -> value, committed installs and the initial state
    versions = defaultdict(list)  # key -> every version installed by setup or a committed txn
    for _, key, version, value in h.initial:
        installed[(key, version)] = value
        versions[key].append(version)
    committed = [a for a in h.attempts if a.outcome == "committed"]
    for a in committed:
        for op in a.ops:
            if op[0] == "w":
                installed[(op[1], op[2])] = op[3]
                versions[op[1]].append(op[2])
    for key, vs in versions.items():
        assert len(vs) == len(set(vs)), f"{key}: a version installed twice: {sorted(vs)}"
        assert sorted(vs) == list(range(1, len(vs) + 1)), f"{key}: not a chain from 1: {sorted(vs)}"
    for a in committed:
        own = set()
        for op in a.ops:
            if op[0] == "w":
                own.add(op[1])
        for key, version, value in _reads(a.ops):
            if key in own or (key, version) not in installed:
                continue
            assert installed[(key, version)] == value, (a, key, version)
