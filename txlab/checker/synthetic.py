"""Synthetic histories in txlab's format: a compact builder for tests and examples,
and generators of large serial / snapshot-isolation histories for the benchmark.
"""

from __future__ import annotations

import random

from txlab.history import Attempt, History


def txn(*ops, outcome: str = "committed", worker: int | None = None,
        at: tuple[int, int] | None = None) -> dict:
    """One attempt. ops: ("r"|"w", key, version[, value]) or ("pr", predicate, rows), each row
    [key, version[, value]]. A value left out is f"{key}{version}", the same everywhere."""
    return {"ops": ops, "outcome": outcome, "worker": worker, "at": at}


def history(*txns: dict, init: dict | None = None, isolation: str = "SERIALIZABLE") -> History:
    """Attempts numbered 1.. in the order given. By default every attempt runs on its own
    worker and all of them overlap in time (no process or realtime order); keys that
    are mentioned start at version 1 (override with init={key: version})."""
    keys: dict = {}
    attempts = []
    for i, t in enumerate(txns, 1):
        ops = []
        for op in t["ops"]:
            if op[0] == "pr":
                ops.append(("pr", op[1], [[r[0], r[1], r[2] if len(r) > 2 else f"{r[0]}{r[1]}"]
                                          for r in op[2]]))
                for r in op[2]:
                    keys.setdefault(r[0], 1)
                continue
            f, k, v = op[:3]
            keys.setdefault(k, 1)
            ops.append((f, k, v, op[3] if len(op) > 3 else f"{k}{v}"))
        inv, comp = t["at"] or (i, 10_000 + i)
        worker = t["worker"] if t["worker"] is not None else i
        attempts.append(Attempt(worker, i, 0, inv, comp, t["outcome"],
                                None, None, None, ops))
    init = {**keys, **(init or {})}
    initial = [("w", k, v, f"{k}{v}") for k, v in init.items() if v is not None]
    return History({"isolation": isolation, "scenario": "synthetic"}, initial, attempts)


def generate(kind: str, n: int, keys: int = 1000, workers: int = 8, seed: int = 1) -> History:
    """n attempts of 1-4 random reads and writes.

    serial: one transaction at a time (round-robin over the workers); no anomalies.
    si: snapshot isolation: rounds of `workers` concurrent transactions read one
    snapshot; at commit the first committer wins and a later writer of the same key
    aborts (40001). Write skew (G2-item) can appear; nothing SI forbids can.
    """
    if kind not in ("serial", "si"):
        raise ValueError("kind is serial or si")
    rng = random.Random(seed)
    names = [f"k{j}" for j in range(keys)]
    version = [1] * keys
    value = [0] * keys
    attempts = []
    rnd, randint = rng.random, rng.randint
    round_size = 1 if kind == "serial" else workers
    txn_no = [0] * workers
    t = made = 0
    while made < n:
        batch = []
        snap_v = version[:] if round_size > 1 else version
        snap_x = value[:] if round_size > 1 else value
        for w in range(min(round_size, n - made)):
            ops = []
            mine: dict = {}
            for _ in range(randint(1, 4)):
                k = randint(0, keys - 1)
                if rnd() < 0.5:
                    v, x = mine[k] if k in mine else (snap_v[k], snap_x[k])
                    ops.append(("r", names[k], v, x))
                else:
                    base = mine[k][0] if k in mine else snap_v[k]
                    x = made * 10 + len(ops)
                    mine[k] = (base + 1, x)
                    ops.append(("w", names[k], base + 1, x))
            batch.append((w if round_size > 1 else made % workers, ops, mine))
            made += 1
        start = t
        t += 10
        for w, ops, mine in batch:
            ok = all(version[k] == snap_v[k] for k in mine)  # first committer wins
            if ok:
                for k, (v, x) in mine.items():
                    version[k], value[k] = v, x
            txn_no[w] += 1
            t += 5
            attempts.append(Attempt(w, txn_no[w], 0, start + w, t,
                                    "committed" if ok else "aborted",
                                    None if ok else "40001-concurrent-update",
                                    None if ok else "40001", None, ops))
    meta = {"scenario": f"synthetic-{kind}", "workers": workers,
            "isolation": "REPEATABLE READ" if kind == "si" else "SERIALIZABLE"}
    return History(meta, [("w", names[j], 1, 0) for j in range(keys)], attempts)


def elle_ops(h: History) -> list:
    """A txlab History as an Elle rw-register history: one invoke and one completion per
    attempt, in the order of their times, with integer keys ("k7" -> 7) and values for
    versions (the initial state is nil, as in Elle). Values must be unique per key, as the
    generators' are."""
    initial = {(k, v) for _, k, v, _ in h.initial}
    events = []
    for i, a in enumerate(h.attempts):
        value = []
        for op in a.ops:
            k = int(op[1][1:]) if isinstance(op[1], str) and op[1][1:].isdigit() else op[1]
            if op[0] == "w":
                value.append(["w", k, op[3]])
            else:
                value.append(["r", k, None if (op[1], op[2]) in initial else op[3]])
        typ = {"committed": "ok", "unknown": "info"}.get(a.outcome, "fail")
        invoke = [[f, k, None] if f == "r" else [f, k, v] for f, k, v in value]
        events.append((a.invoke_ns, 0, i, {"type": "invoke", "f": "txn", "process": a.worker,
                                           "time": a.invoke_ns, "value": invoke}))
        events.append((a.complete_ns, 1, i, {"type": typ, "f": "txn", "process": a.worker,
                                             "time": a.complete_ns, "value": value}))
    events.sort(key=lambda e: e[:3])
    out = []
    for n, e in enumerate(events):
        op = e[3]
        op["index"] = n
        out.append(op)
    return out


def _edn(x) -> str:
    if x is None:
        return "nil"
    if isinstance(x, list):
        return "[" + " ".join(map(_edn, x)) + "]"
    if isinstance(x, str):
        return ":" + x if x.isidentifier() else '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(x)


def write_elle(ops: list, path, fmt: str = "json") -> None:
    """Elle ops to a file, one op per line: JSON ("json"), or Jepsen's EDN ("edn", keywords
    for the op's keys and for the type, f and micro-op names)."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for op in ops:
            if fmt == "json":
                f.write(json.dumps(op, separators=(",", ":")) + "\n")
            else:
                f.write("{" + ", ".join(f":{k} {_edn(v)}" for k, v in op.items()) + "}\n")
