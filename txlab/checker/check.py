"""check(history, model) -> Result: the whole pipeline, pure (no database, no threads)."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

from txlab import memory
from txlab.checker import components, cycles, explain, graph, infer, models, segments, versions
from txlab.checker.loading import FAIL, INFO, OK, TXLAB, HistoryFormatError, Txns, load, read_txlab

VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"


class NotInParts(Exception):
    """check(..., whole=False): the history cannot be checked in parts."""


@dataclass
class Result:
    model: str
    isolation: str | None
    verdict: str
    anomalies: dict  # name -> {"count", "unit", "status", "definition", "examples": [data]}
    unknown: list  # kinds whose search timed out somewhere
    models_ruled_out: list
    stats: dict
    history: dict
    plots: list = field(default_factory=list)  # (kind, dot text) per example cycle
    components: list | None = None  # with graphs=True: components.describe's drawable graphs
    judged_isolation: str | None = None  # the level given to judge by (--isolation), if any
    run_model: str | None = None  # the model `isolation`, the run's own level, provides
    # No dependency at all between the transactions (none, or none related): no cycle could
    # be looked for, so nothing found is not evidence. Elle's :empty-transaction-graph.
    empty_graph: bool = False

    @property
    def own_model(self) -> bool:
        """Judged by the model of the level the history ran at (or that level is not
        known): a forbidden anomaly is then a database or harness bug."""
        return self.run_model is None or self.run_model == self.model

    @property
    def forbidden(self) -> list:
        return [n for n, a in self.anomalies.items() if a["status"] == "forbidden"]

    def to_dict(self) -> dict:
        return {
            "checker": "txlab-check/1", "history": self.history, "model": self.model,
            "isolation": self.isolation, "judged_isolation": self.judged_isolation,
            "run_model": self.run_model, "own_model": self.own_model, "verdict": self.verdict,
            "counts": {n: a["count"] for n, a in self.anomalies.items()},
            "forbidden": self.forbidden,
            "allowed": [n for n, a in self.anomalies.items() if a["status"] == "allowed"],
            "unknown": self.unknown, "models_ruled_out": self.models_ruled_out,
            "anomalies": self.anomalies, "stats": self.stats, "empty_graph": self.empty_graph,
        } | ({} if self.components is None else {"components": self.components})


def _model_of(level: str | None) -> str | None:
    """The model a recorded level provides; None if there is none or it is unknown."""
    if level:
        try:
            return models.model_for_isolation(level)
        except ValueError:
            pass
    return None


def check(history, model: str | None = None, *, isolation: str | None = None,
          max_examples: int = 3, time_limit: float = 10.0, process: bool | None = None,
          realtime: bool | None = None, graphs: bool = False, wfr_keys: bool = True,
          sequential_keys: bool = False, linearizable_keys: bool = False,
          garbage_reads: bool = True, segment: int | None = None,
          whole: bool = True) -> Result:
    """Check a history (path, txlab History, list of Elle ops, or Txns) against a model.

    model: one of models.MODELS; or isolation: a PostgreSQL level, mapped to the
    model it provides; neither: the history's own isolation level, else (Elle's
    formats) Elle's default strict-serializable, else serializable.
    time_limit: seconds of cycle search per strongly connected component.
    process / realtime: add process / realtime edges, and so look for -process /
    -realtime cycles; by default only when the model forbids those (the strong and
    strict models; Elle does the same: realtime costs n x workers edges, and where
    they are allowed the variants only repeat the plain anomalies).
    graphs: also describe the cyclic components' dependency graphs, small enough
    to draw (components.describe; the result's `components`).
    wfr_keys / sequential_keys / linearizable_keys: how an Elle rw-register history's
    version order is inferred (Elle's options of the same names; see versions.Options);
    garbage_reads: report Elle-format reads of values nobody wrote.
    segment: a long txlab history file is checked a part of about this many
    transactions at a time, in bounded memory (checker/segments.py); None: parts of
    the default size only when the whole check would take more than WHOLE_BUDGET; 0:
    always whole. whole=False: raise NotInParts rather than check it whole.
    """
    opts = versions.Options(wfr_keys, sequential_keys, linearizable_keys, garbage_reads)
    # Millions of small objects and no reference cycles: the collector's full
    # passes would cost more than the check itself.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _check(history, model, isolation, max_examples, time_limit, process, realtime,
                      graphs, opts, segment, whole)
    except RecursionError:  # a value nested thousands deep cannot even be compared
        where = history if isinstance(history, (str, bytes)) or hasattr(history, "__fspath__") \
            else "the history"
        raise HistoryFormatError(f"{where}: a value is nested too deeply") from None
    finally:
        if was_enabled:
            gc.enable()


def _check(history, model, isolation, max_examples, time_limit, process, realtime,
           graphs, opts, segment=None, whole=True) -> Result:
    t0 = time.perf_counter()
    # Process and real-time edges cross every cut, and graphs draw whole components; a
    # txlab history's own model (its level's, else serializable) asks for neither.
    wanted = models.edges_needed(models.resolve_model(model)) if model is not None \
        else (False, False)
    across = (wanted[0] if process is None else process) \
        or (wanted[1] if realtime is None else realtime) or graphs
    cuts = None
    if not across and not isinstance(history, (Txns, list)) and not hasattr(history, "attempts"):
        cuts = _cuts(history, segment)
    if not cuts and not whole:
        raise NotInParts(history)
    if cuts:  # a long txlab history: checked a part at a time (checker/segments.py)
        pieces = segments.parts(Path(history), cuts)
        records, names, _ = next(pieces)
        tx = _part(history, records, names)
    else:
        pieces = iter(())
        tx = history if isinstance(history, Txns) else load(history)
    level = tx.meta.get("isolation")  # the level the run used (None: not recorded)
    run_model = _model_of(level)
    if model is not None:
        model = models.resolve_model(model)
    elif isolation is not None:
        model = models.model_for_isolation(isolation)
    else:
        model = run_model or ("serializable" if tx.format == TXLAB else "strict-serializable")
    needs_process, needs_realtime = models.edges_needed(model)
    process = needs_process if process is None else process
    realtime = needs_realtime if realtime is None else realtime
    t_load = time.perf_counter()
    touched: dict = {}  # txlab histories: key -> (first committed toucher, written?)
    part = _analyse(tx, model, max_examples, time_limit, process, realtime, graphs, opts,
                    touched)
    hist = _history_counts(tx, skip=0)
    for records, names, context in pieces:  # the rest of a history, a part at a time
        del tx
        tx = _part(history, records, names)
        more = _analyse(tx, model, max_examples, time_limit, process, realtime, graphs, opts,
                        touched)
        _merge(part, more, max_examples)
        _add_counts(hist, _history_counts(tx, skip=context))
    anomalies, cyc_unknown, drawn = part["anomalies"], part["unknown"], part["drawn"]
    for kind, a in anomalies.items():
        a["unit"] = models.count_unit(kind, a["count"])
        a["run_status"] = models.status(kind, run_model) if run_model else None
    anomalies = dict(sorted(anomalies.items(), key=lambda kv: models.ORDER.get(kv[0], 999)))
    plots = [(kind, explain.cycle_dot(ex)) for kind, a in anomalies.items()
             for ex in a["examples"] if "cycle" in ex]
    found_names = set(anomalies)
    unknown = sorted((u for u in cyc_unknown if u not in found_names), key=models.ORDER.get)
    forbidden = models.MODELS[model].forbids
    if found_names & forbidden:
        verdict = INVALID
    elif set(unknown) & forbidden or not part["linked"]:
        verdict = UNKNOWN  # a search timed out, or there was no graph to search (as Elle)
    else:
        verdict = VALID
    hist = {"format": tx.format} | hist
    for k in ("scenario", "strategy", "seed", "workers", "server"):
        if k in tx.meta:
            hist[k] = tx.meta[k]
    sec = part["seconds"]
    stats = {"edges": part["edges"], "components": part["components"],
             "largest_component": part["largest"], "process_edges": process,
             "realtime_edges": realtime,
             "seconds": {"load": round(t_load - t0, 3),
                         "edges": round(sec["edges"], 3), "scc": round(sec["scc"], 3),
                         "cycles": round(sec["cycles"], 3),
                         "total": round(time.perf_counter() - t0, 3)}}
    if cuts:
        stats["parts"] = len(cuts) + 1
    return Result(model, level, verdict, anomalies, unknown, models.ruled_out(found_names), stats,
                  hist, plots, drawn, isolation and models.level_sql(isolation), run_model,
                  empty_graph=not part["linked"])


def _cuts(history, segment):
    """Where a txlab history file is cut into parts, or None: checked whole (plan
    gives up at once on anything else: Elle's histories carry no versions to cut by)."""
    if segment == 0:
        return None
    try:
        path = Path(history)
        size = path.stat().st_size
    except (OSError, TypeError, ValueError):
        return None
    seg = segment or segments.SEGMENT
    if size < 2 * seg * _MIN_BYTES_PER_TXN:
        return None  # too short for two parts
    if segment is None and size * memory.BYTES_PER_FILE_BYTE <= WHOLE_BUDGET:
        return None  # the whole check fits the budget, and is faster
    return segments.plan(path, seg)


# A history is checked whole (the fastest way) while that takes at most about this much
# memory; beyond, in parts. `txlab run` asks for parts sooner (runner.py): a load harness
# keeps its memory flat.
WHOLE_BUDGET = 1536 * 2**20
_MIN_BYTES_PER_TXN = 150  # the shortest txn record txlab writes, about


def _part(history, records, names) -> Txns:
    tx = read_txlab(Path(history), records)
    tx.names = [0] + names
    return tx


def _history_counts(tx: Txns, skip: int) -> dict:
    """Transactions of a part, its context (the first `skip` after T0) left out."""
    status = tx.status[1 + skip:]
    return {"transactions": len(status), "committed": status.count(OK),
            "failed": status.count(FAIL), "unknown": status.count(INFO)}


def _add_counts(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] += v


def _analyse(tx: Txns, model, max_examples, time_limit, process, realtime, graphs,
             opts, touched: dict | None = None) -> dict:
    """Anomalies, examples and statistics of one Txns (a whole history, or a part)."""
    t0 = time.perf_counter()
    idx = versions.build(tx, opts)
    adj, found = infer.build(tx, idx, process, realtime)
    found = idx.findings + tx.found + found
    n_edges = sum(map(len, adj))
    if tx.format == TXLAB and not (process or realtime) and touched is not None:
        # the same answer whole or in parts (a part leaves out edges that cross its cut
        # forwards): two committed transactions share a key that one of them writes
        linked = _shares_a_written_key(tx, touched)
    else:
        # T0 (the initial state) is no transaction of the history and no cycle passes it:
        # its edges alone are no graph to search (Elle's graph has no T0 at all)
        linked = any(adj[1:]) or bool(realtime and _ok_before_info(tx))
    t_edges = time.perf_counter()
    comps = graph.strongly_connected(len(adj), adj)
    del adj
    t_scc = time.perf_counter()
    cyc = cycles.find(tx, idx, comps, max_examples, time_limit, process, realtime,
                      models.MODELS[model].forbids)
    t_cycles = time.perf_counter()
    drawn = components.describe(tx, idx, comps, cyc.examples, process, realtime) if graphs else None

    anomalies: dict = {}
    for kind, data in found:
        a = _entry(anomalies, kind, model)
        a["count"] += data.get("lost", 1) if kind == "lost update" else 1
        if len(a["examples"]) < max_examples:
            ex = explain.finding_data(tx, idx, kind, a["status"], data)
            ex["text"] = explain.finding_text(ex)
            a["examples"].append(ex)
    for kind in cyc.counts:
        a = _entry(anomalies, kind, model)
        a["count"] += cyc.counts[kind]
        for c in cyc.examples.get(kind, []):
            ex = explain.cycle_data(tx, idx, kind, a["status"], c)
            ex["text"] = explain.cycle_text(ex)
            a["examples"].append(ex)
    return {"anomalies": anomalies, "unknown": set(cyc.unknown), "drawn": drawn,
            "edges": n_edges, "linked": linked, "components": cyc.components, "largest": cyc.largest,
            "seconds": {"edges": t_edges - t0, "scc": t_scc - t_edges,
                        "cycles": t_cycles - t_scc}}


def _merge(into: dict, more: dict, max_examples: int) -> None:
    """One part's findings added to those of the parts before it."""
    for kind, a in more["anomalies"].items():
        b = into["anomalies"].get(kind)
        if b is None:
            into["anomalies"][kind] = a
            continue
        b["count"] += a["count"]
        b["examples"] += a["examples"][:max(0, max_examples - len(b["examples"]))]
    into["unknown"] |= more["unknown"]
    into["edges"] += more["edges"]
    into["linked"] = into["linked"] or more["linked"]
    into["components"] += more["components"]
    into["largest"] = max(into["largest"], more["largest"])
    for k, v in more["seconds"].items():
        into["seconds"][k] += v


def _shares_a_written_key(tx: Txns, touched: dict) -> bool:
    """Some two committed transactions (of this part, or of one before it: `touched`
    carries key -> (the first committed transaction to touch it, whether any of its
    touchers so far wrote it)) touch one key, and one of them writes it: then they
    have a ww, wr or rw edge between them, as Elle's graph would. A part's context
    (copies of earlier transactions) is the same transaction by name."""
    if touched.get(None):
        return True
    status, names, ops = tx.status, tx.names, tx.ops
    for i in range(1, len(status)):
        if status[i] != OK:
            continue
        me = names[i]
        for op in ops[i]:
            if op[0] == "pr":
                items = [(row[0], False) for row in op[2]]
            else:
                items = [(op[1], op[0] == "w")]
            for key, wrote in items:
                try:
                    seen = touched.get(key)
                except TypeError:  # a key that is no dict key: take it as linked
                    touched[None] = True
                    return True
                if seen is None:
                    touched[key] = (me, wrote)
                elif seen[0] != me and (seen[1] or wrote):
                    touched[None] = True
                    return True
                elif wrote and not seen[1]:
                    touched[key] = (seen[0], True) if seen[0] == me else seen
    return False


def _ok_before_info(tx: Txns) -> bool:
    """Some committed transaction completed before some transaction of unknown outcome
    was invoked. Elle's real-time graph has that edge (an :ok to a later :info); txlab's
    graph holds committed transactions only, so it is asked for here, to tell an empty
    graph as Elle does."""
    inv, comp, status = tx.invoke, tx.complete, tx.status
    done = [comp[i] for i in range(1, len(status)) if status[i] == OK and comp[i] is not None]
    later = [inv[i] for i in range(1, len(status)) if status[i] == INFO and inv[i] is not None]
    return bool(done and later) and min(done) < max(later)


def _entry(anomalies: dict, kind: str, model: str) -> dict:
    a = anomalies.get(kind)
    if a is None:
        spec = models.BY_NAME.get(kind)
        a = anomalies[kind] = {"count": 0, "status": models.status(kind, model),
                               "definition": spec.definition if spec else kind, "examples": []}
    return a
