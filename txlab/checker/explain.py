"""Explanations in Elle's style: name the transactions, justify each edge in one
sentence, end with the contradiction. Data first (`cycle_data`, `finding_data`),
text second (`cycle_text`), and Graphviz (`cycle_dot`).
"""

from __future__ import annotations

import json

from txlab.checker.infer import PROC, PRW, RT, RW, WR, WW, first_reads
from txlab.checker.loading import APPEND, FAIL, INFO, OK, REGISTER, TXLAB, Txns
from txlab.checker.versions import Index

_OUTCOME = {OK: "committed", FAIL: "failed", INFO: "unknown"}
EDGE_LABEL = {WW: "ww", WR: "wr", RW: "rw", PRW: "rw", PROC: "p", RT: "rt"}
EDGE_COLOUR = {WW: "#1f77b4", WR: "#2ca02c", RW: "#d62728", PRW: "#d62728",
               PROC: "#7f7f7f", RT: "#ff7f0e"}


def tname(tx: Txns, i: int) -> str:
    return f"T{tx.names[i]}"


def _v(tx: Txns, v) -> str:
    if tx.format == TXLAB:
        return f"v{v}"
    if tx.format == APPEND:
        return "the empty list" if v is None else f"the element {edn(v)}"
    return "the initial nil" if v is None else edn(v)


def _key(tx: Txns, k) -> str:
    """A key in a sentence: as named (x, :x), a vector key in Elle's notation ([:anti 1])."""
    return k if isinstance(k, str) else str(k) if tx.format == TXLAB else edn(k)


def _show(tx: Txns, x) -> str:
    """A value in a sentence: Python's notation for txlab's values, Elle's for Elle's."""
    return repr(x) if tx.format == TXLAB else edn(x)


def _op_text(tx: Txns, op) -> str:
    if op[0] == "pr":
        rows = ", ".join(f"{k} v{v}" for k, v, *_ in op[2])
        return f"pr `{op[1]}` -> [{rows}]"
    f, k, v, val = op
    return f"{f} {k} v{v} = {val!r}"


def _elle_op(tx: Txns, op) -> list:
    """A micro-op back in Elle's notation."""
    if op[0] == "w":
        return ["append" if tx.format == APPEND else "w", op[1], op[2]]
    return ["r", op[1], op[3]]


def txn_data(tx: Txns, i: int) -> dict:
    d = {"name": tname(tx, i), "id": tx.names[i], "outcome": _OUTCOME.get(tx.status[i])}
    if i == 0:
        d["note"] = "the initial state"
    if tx.process[i] is not None:
        d["process"] = tx.process[i]
    if tx.format == TXLAB:
        d["ops"] = [_op_text(tx, op) for op in tx.ops[i]]
    else:
        d["ops"] = [_elle_op(tx, op) for op in tx.ops[i]]
    return d


def _let(tx: Txns, i: int) -> str:
    d = txn_data(tx, i)
    head = f"id {d['id']}" if tx.format == TXLAB else f":index {d['id']}"
    if "process" in d:
        head += f", {'worker' if tx.format == TXLAB else ':process'} {d['process']}"
    if i == 0:
        if not d["ops"]:
            return f"{d['name']} = {{the initial state}}"
        more = " ..." if len(d["ops"]) > 4 else ""
        return f"{d['name']} = {{the initial state: {', '.join(map(str, d['ops'][:4]))}{more}}}"
    ops = ", ".join(d["ops"]) if tx.format == TXLAB else edn(d["ops"], keyword_first=True)
    return f"{d['name']} = {{{head}, {d['outcome']}: {ops}}}"


def edn(value, keyword_first: bool = False) -> str:
    """`value` in Elle's (EDN) notation: [[:append 250 10] [:r 253 [1 3 4]]], nil.
    A keyword was read as the string ":name" and is written back as it was; with
    `keyword_first`, each micro-op's function (append, r, w) is a keyword too."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.startswith(":") and " " not in value else json.dumps(value)
    if isinstance(value, (list, tuple)):
        if keyword_first:
            return "[" + " ".join(_edn_mop(op) for op in value) + "]"
        return "[" + " ".join(edn(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{edn(k)} {edn(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _edn_mop(op) -> str:
    if isinstance(op, (list, tuple)) and op and isinstance(op[0], str):
        return "[" + " ".join([":" + op[0].lstrip(":")] + [edn(v) for v in op[1:]]) + "]"
    return edn(op)


def _next_version(tx: Txns, i: int, k, v):
    """The version of k that transaction i installed right after v."""
    mine = [op[2] for op in tx.ops[i] if op[0] == "w" and op[1] == k and op[2] != v]
    if tx.format == TXLAB:
        try:
            later = [x for x in mine if x > v]
            return min(later) if later else (mine[0] if mine else None)
        except TypeError:
            pass
    return mine[0] if mine else None


def _next_of(tx: Txns, idx: Index, b: int, k, v):
    """The version of k that b installed right after v. In list-append: the next element
    in the order read, else (v is the last element read) one of b's that no read shows."""
    if tx.format == APPEND:
        after = idx.after.get(k, {})
        if v in after:
            return after[v]
        unread = [op[2] for op in tx.ops[b] if op[0] == "w" and op[1] == k
                  and op[2] not in after and op[2] != v]
        if unread:
            return unread[0]
    return _next_version(tx, b, k, v)


def _nexts(idx: Index, k, v) -> tuple:
    nx = idx.nextw.get(k, {}).get(v)
    return () if nx is None else (nx,) if type(nx) is int else nx


def edge_reason(tx: Txns, idx: Index, a: int, b: int, bit: int) -> dict:
    """Why a < b: the data behind one edge, and the sentence that says it."""
    A, B = tname(tx, a), tname(tx, b)
    K, S = (lambda k: _key(tx, k)), (lambda x: _show(tx, x))  # keys, values
    if bit == WW:
        final = {}
        for op in tx.ops[a]:
            if op[0] == "w":
                final[op[1]] = op[2]
        # list-append: every append of a is a version, not only its last one
        writes = ([(op[1], op[2]) for op in tx.ops[a] if op[0] == "w"] if tx.format == APPEND
                  else final.items())
        for k, v in writes:
            if b in _nexts(idx, k, v):
                nv = _next_of(tx, idx, b, k, v)
                if tx.format == APPEND:
                    s = f"{A} appended {S(v)} to {K(k)}, and {B} appended {S(nv)} right after it"
                elif tx.format == REGISTER:
                    s = f"{A} wrote {K(k)} = {S(v)}, and {B} overwrote it with {S(nv)}"
                else:
                    s = (f"{A} installed {K(k)} {_v(tx, v)}, and {B} installed the next "
                         f"version {_v(tx, nv)}")
                return {"edge": "ww", "key": k, "version": v, "next": nv, "because": s}
    if bit == WR:
        for op in tx.ops[b]:
            rows = [op[1:]] if op[0] == "r" else op[2] if op[0] == "pr" else []
            for k, v, *_ in rows:
                if idx.writer.get(k, {}).get(v) == a:
                    by = ("appended it" if tx.format == APPEND else
                          "wrote it" if tx.format == REGISTER else "installed it")
                    what = "the initial version" if a == 0 else f"and {A} {by}"
                    if tx.format == APPEND:
                        s = f"{B} read {K(k)} ending in {_v(tx, v)}, {what}"
                    elif tx.format == REGISTER:
                        s = f"{B} read {K(k)} = {S(v)}, {what}"
                    else:
                        s = f"{B} read {K(k)} at {_v(tx, v)}, {what}"
                    return {"edge": "wr", "key": k, "version": v, "because": s}
    if bit in (RW, PRW):
        reads = []
        for op in tx.ops[a]:
            if op[0] == "r" and bit == RW:
                reads.append((op[1], op[2], None))
            elif op[0] == "pr" and bit == PRW:
                reads.extend((r[0], r[1], op[1]) for r in op[2])
        written = set()
        for op in tx.ops[a]:
            if op[0] == "w":
                written.add(op[1])
        for k, v, pred in reads:
            if b in _nexts(idx, k, v):
                nv = _next_of(tx, idx, b, k, v)
                how = (f"{A}'s predicate read `{pred}` returned {K(k)}" if pred
                       else f"{A} read {K(k)}")
                if tx.format == APPEND:
                    s = f"{how} ending in {_v(tx, v)}, and {B} appended the next element {S(nv)}"
                elif tx.format == REGISTER:
                    s = f"{how} = {S(v)}, and {B} overwrote it with {S(nv)}"
                else:
                    s = f"{how} at {_v(tx, v)}, and {B} installed the next version {_v(tx, nv)}"
                d = {"edge": "rw", "key": k, "version": v, "next": nv, "because": s}
                if pred:
                    d["predicate"] = pred
                return d
    if bit == PROC:
        who = "worker" if tx.format == TXLAB else "process"
        return {"edge": "process", "process": tx.process[a],
                "because": f"{who} {tx.process[a]} ran {A} and then {B}"}
    if bit == RT:
        ca, ib = tx.complete[a], tx.invoke[b]
        gap = _duration(ib - ca) if tx.format == TXLAB else f"{ib - ca} time units"
        return {"edge": "realtime", "completed": ca, "invoked": ib,
                "because": f"{A} completed {gap} before {B} was invoked"}
    return {"edge": EDGE_LABEL.get(bit, "?"), "because": "(no justification found)"}


def _duration(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e3:.1f} µs" if ns >= 1000 else f"{ns} ns"


def cycle_data(tx: Txns, idx: Index, kind: str, status: str, cycle: list) -> dict:
    verts = [a for a, _, _ in cycle]
    steps = []
    for a, b, bit in cycle:
        r = edge_reason(tx, idx, a, b, bit)
        steps.append({"from": tname(tx, a), "to": tname(tx, b), **r})
    return {"kind": kind, "status": status, "cycle": [tname(tx, v) for v in verts + verts[:1]],
            "transactions": [txn_data(tx, v) for v in verts], "steps": steps,
            "let": [_let(tx, v) for v in verts]}


def cycle_text(ex: dict) -> str:
    lines = ["Let:"] + [f"  {t}" for t in ex["let"]] + ["Then:"]
    steps = ex["steps"]
    for n, s in enumerate(steps):
        last = n == len(steps) - 1 and n > 0
        pre = "However, " if last else ""
        end = ": a contradiction!" if last else "."
        lines.append(f"  - {pre}{s['from']} < {s['to']}, because {s['because']}{end}")
    return "\n".join(lines)


def cycle_dot(ex: dict, tx_cycle: list | None = None) -> str:
    colour = {"ww": EDGE_COLOUR[WW], "wr": EDGE_COLOUR[WR], "rw": EDGE_COLOUR[RW],
              "process": EDGE_COLOUR[PROC], "realtime": EDGE_COLOUR[RT]}
    short = {"process": "p", "realtime": "rt"}
    out = [f'digraph "{ex["kind"]}" {{', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];',
           f'  label="{ex["kind"]} ({ex["status"]})";']
    for t in ex["transactions"]:
        ops = "\\l".join(str(o).replace('"', "'") for o in t["ops"][:8]) + "\\l"
        out.append(f'  "{t["name"]}" [label="{t["name"]} ({t["outcome"]})\\n{ops}"];')
    for s in ex["steps"]:
        k = s["edge"]
        label = short.get(k, k) + (f" {s['key']}" if "key" in s else "")
        out.append(f'  "{s["from"]}" -> "{s["to"]}" [label="{label}", color="{colour[k]}", '
                   f'fontcolor="{colour[k]}"];')
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- non-cycle findings


def finding_data(tx: Txns, idx: Index, kind: str, status: str, data: dict) -> dict:
    """One non-cycle anomaly as data with a sentence."""
    T = lambda i: tname(tx, i)  # noqa: E731
    K, S = (lambda k: _key(tx, k)), (lambda x: _show(tx, x))  # keys, values
    txns: list[int] = []
    if kind == "G1a":
        r, w = data["reader"], data["writer"]
        txns = [r, w]
        s = (f"{T(r)} read {K(data['key'])} at {_v(tx, data['version'])}, which {T(w)} wrote, "
             f"but {T(w)} failed (it had no effect)")
    elif kind == "G1b":
        r, w = data["reader"], data["writer"]
        txns = [r, w]
        s = (f"{T(r)} read {K(data['key'])} at {_v(tx, data['version'])}, an intermediate version: "
             f"{T(w)} overwrote it before committing")
    elif kind == "garbage-read" and "writer" not in data:  # Elle formats
        txns = [data["reader"]]
        what = "an element" if tx.format == APPEND else "a value"
        s = (f"{T(data['reader'])} read {K(data['key'])} = {S(data['value'])}, {what} that no "
             "transaction wrote")
    elif kind == "garbage-read":
        r, w = data["reader"], data["writer"]
        txns = [r, w]
        by = "the initial state has" if w == 0 else f"{T(w)} installed"
        s = (f"{T(r)} read {K(data['key'])} at {_v(tx, data['version'])} = {S(data['value'])}, but "
             f"{by} {_v(tx, data['version'])} = {S(data['installed'])}, and no transaction "
             f"wrote {S(data['value'])} there: a value nobody wrote")
    elif kind == "future-read":
        txns = [data["txn"]]
        s = (f"{T(data['txn'])} read {K(data['key'])} showing {S(data['element'])} (at "
             f"{_v(tx, data['element'])}), which it writes itself only later")
    elif kind == "dirty-update":
        a, b = data["txns"]
        txns = [a, b]
        s = (f"{T(a)} failed, yet its append to {K(data['key'])} was followed by {T(b)}'s, "
             f"which committed: {K(data['key'])} went through {S(data['values'])}")
    elif kind == "internal":
        txns = [data["txn"]]
        if tx.format == TXLAB:
            s = (f"{T(data['txn'])} read {K(data['key'])} at {_v(tx, data['actual'])} = "
                 f"{S(data['actual_value'])} although it had itself installed "
                 f"{_v(tx, data['expected'])} = {S(data['expected_value'])}")
        else:
            s = (f"{T(data['txn'])} read {K(data['key'])} = {S(data['actual'])} although its own "
                 f"earlier operations imply {S(data['expected'])}")
    elif kind == "lost update":
        txns = data["txns"]
        names = ", ".join(T(i) for i in txns[:-1]) + f" and {T(txns[-1])}"
        every = "both" if len(txns) == 2 else "all"
        s = (f"{names} {every} read {K(data['key'])} at {_v(tx, data['version'])} and {every} "
             f"wrote it: {data['lost']} committed update{'s' if data['lost'] > 1 else ''} "
             f"overwritten unseen")
    else:
        txns = [i for i in data.get("txns", []) if i is not None]
        k = data.get("key")
        names = " and ".join(T(i) for i in txns)
        if kind == "duplicate-versions" and "version" in data:
            s = f"{names} both installed {K(k)} {_v(tx, data['version'])}"
        elif kind == "cyclic-versions" and "versions" in data and "why" not in data:
            s = f"the versions of {K(k)} form a cycle: " + " < ".join(map(S, data["versions"]))
            if data.get("sources"):
                s += " (inferred from " + ", ".join(data["sources"]) + ")"
        elif kind == "incompatible-order":
            a, b = data["reads"]
            s = f"{names} read {K(k)} as {S(a)} and {S(b)}: neither is a prefix of the other"
        else:
            where = f" {_v(tx, data['version'])}" if "version" in data else ""
            s = f"{K(k)}{where}: {data.get('why', kind)}"
    txns = list(dict.fromkeys(txns))  # a cycle of versions may name one transaction twice
    out = {"kind": kind, "status": status, "because": s,
           "transactions": [txn_data(tx, i) for i in txns],
           "let": [_let(tx, i) for i in txns]}
    out.update({k: v for k, v in data.items() if k in ("key", "version")})
    return out


def finding_text(ex: dict) -> str:
    return "\n".join(["Let:"] + [f"  {t}" for t in ex["let"]] + ["Then:", f"  - {ex['because']}."])


__all__ = ["cycle_data", "cycle_text", "cycle_dot", "finding_data", "finding_text", "first_reads"]
