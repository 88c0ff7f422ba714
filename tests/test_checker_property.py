"""Properties of the checker (pure, no database): serial histories are always valid;
a planted cycle of a chosen shape is flagged with exactly the kind its shape names;
a simulated snapshot-isolation database never shows what SI forbids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from txlab import checker
from txlab.checker.synthetic import generate, history, txn

BASE = {"G0", "G1c", "G-single", "G-nonadjacent", "G2-item"}

op_st = st.tuples(st.sampled_from("rwp"), st.integers(0, 3))
txn_st = st.tuples(st.lists(op_st, min_size=1, max_size=4), st.booleans(), st.integers(0, 2))


def serial(txns, offset=0, keys=("a", "b", "c", "d")) -> list[dict]:
    """Run transactions one at a time against a tiny versioned store."""
    version = {k: 1 for k in keys}
    out = []
    for n, (ops, commit, worker) in enumerate(txns):
        mine: dict = {}
        rec = []
        for f, k in ops:
            key = keys[k]
            if f == "r":
                rec.append(("r", key, mine.get(key, version[key])))
            elif f == "p":
                rows = [[x, mine.get(x, version[x])] for x in keys[: k + 1]]  # value: "<key><version>"
                rec.append(("pr", f"first {k + 1}", rows))
            else:
                mine[key] = mine.get(key, version[key]) + 1
                rec.append(("w", key, mine[key]))
        if commit:
            version.update(mine)
        t = offset + 10 * n
        out.append(txn(*rec, outcome="committed" if commit else "aborted", worker=worker,
                       at=(t, t + 5)))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(txn_st, min_size=1, max_size=25))
def test_serial_histories_are_valid_even_strictly(txns):
    h = history(*serial(txns))
    r = checker.check(h, "strict-serializable")
    assert r.anomalies == {}, checker.render(r)
    # two committed transactions at least: the later one's real-time edge from the
    # earlier is a graph; fewer leave nothing to search, and the verdict says unknown
    committed = sum(a.outcome == "committed" for a in h.attempts)
    assert r.empty_graph is (committed < 2)
    assert r.verdict == ("unknown" if committed < 2 else "valid")


def expected_kind(shape: list[str]) -> str:
    n_rw = shape.count("rw")
    if n_rw == 0:
        return "G1c" if "wr" in shape else "G0"
    if n_rw == 1:
        return "G-single"
    adjacent = any(shape[i] == "rw" and shape[(i + 1) % len(shape)] == "rw"
                   for i in range(len(shape)))
    return "G2-item" if adjacent else "G-nonadjacent"


def planted(shape: list[str], start: int) -> list[dict]:
    """Transactions P0..Pn-1 with edge shape[i] from Pi to Pi+1 (mod n), one fresh key each."""
    n = len(shape)
    ops: list[list] = [[] for _ in range(n)]
    for i, kind in enumerate(shape):
        k, j = f"c{i}", (i + 1) % n
        if kind == "ww":
            ops[i].append(("w", k, 2))
            ops[j].append(("w", k, 3))
        elif kind == "wr":
            ops[i].append(("w", k, 2))
            ops[j].append(("r", k, 2))
        else:  # rw
            ops[i].append(("r", k, 1))
            ops[j].append(("w", k, 2))
    return [txn(*o, worker=100 + i, at=(start + i, start + 1000 + i)) for i, o in enumerate(ops)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["ww", "wr", "rw"]), min_size=2, max_size=6),
       st.lists(txn_st, max_size=10), st.booleans())
def test_a_planted_cycle_is_flagged_with_its_kind(shape, background, background_first):
    bg = serial(background, offset=0 if background_first else 10_000)
    cyc = planted(shape, 5_000)
    h = history(*(bg + cyc if background_first else cyc + bg))
    r = checker.check(h, "strict-serializable")
    kind = expected_kind(shape)
    assert set(r.anomalies) & BASE == {kind}, (shape, checker.render(r))
    ex = r.anomalies[kind]["examples"][0]
    assert len(ex["steps"]) == len(shape)
    assert r.verdict == "invalid"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_snapshot_isolation_never_shows_what_it_forbids(seed, keys):
    h = generate("si", 300, keys=keys, workers=4, seed=seed)
    r = checker.check(h, "snapshot-isolation")
    assert r.verdict == "valid", checker.render(r)
    assert set(r.anomalies) <= {"G2-item"}


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_synthetic_serial_database_is_valid(seed):
    r = checker.check(generate("serial", 300, keys=5, seed=seed), "strict-serializable")
    assert r.anomalies == {}


elle_txn_st = st.lists(st.tuples(st.sampled_from(["r", "w"]), st.integers(0, 3)),
                       min_size=1, max_size=4)


def elle_serial(txns, workload: str, fail_every: int) -> list[dict]:
    """A serial Elle history: each transaction invokes and completes before the next."""
    state: dict = {}
    ops, counter = [], 0
    for n, mops in enumerate(txns):
        fails = fail_every and n % fail_every == fail_every - 1
        mine = {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()}
        inv, done = [], []
        for f, k in mops:
            if f == "r":
                inv.append(["r", k, None])
                cur = mine.get(k, [] if workload == "list-append" else None)
                done.append(["r", k, list(cur) if isinstance(cur, list) else cur])
            else:
                counter += 1
                if workload == "list-append":
                    mine.setdefault(k, []).append(counter)
                    inv.append(["append", k, counter])
                    done.append(["append", k, counter])
                else:
                    mine[k] = counter
                    inv.append(["w", k, counter])
                    done.append(["w", k, counter])
        if not fails:
            state = mine
        p = n % 3
        ops.append({"type": "invoke", "f": "txn", "process": p, "time": 2 * n, "value": inv})
        ops.append({"type": "fail" if fails else "ok", "f": "txn", "process": p,
                    "time": 2 * n + 1, "value": inv if fails else done})
    return ops


@settings(max_examples=100, deadline=None)
@given(st.lists(elle_txn_st, min_size=1, max_size=20),
       st.sampled_from(["list-append", "rw-register"]), st.integers(0, 4))
def test_serial_elle_histories_are_valid(txns, workload, fail_every):
    r = checker.check(elle_serial(txns, workload, fail_every), "strict-serializable")
    assert r.anomalies == {}, checker.render(r)
