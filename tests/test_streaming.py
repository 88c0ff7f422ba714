"""The lean runner keeps results unchanged: the streamed history equals one recorded
the old way (all in memory, written at the end), the bounded statistics agree with
exact ones, and the per-transaction generator repeats itself on a retry."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from txlab import history, stats
from txlab.history import ABORTED, COMMITTED, DECLINED, Attempt, History
from txlab.rng import TxRandom
from txlab.scenario import resolve
from txlab.testing import run

# ---------------------------------------------------------------- statistics


def _lognormal(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.lognormvariate(15, 0.8)) for _ in range(n)]  # ~3 ms, long tail


def test_histogram_quantiles_within_one_percent_of_exact():
    for values in (_lognormal(50_000, 1), [random.Random(2).randint(100, 10**9) for _ in range(20_000)],
                   list(range(1, 1001)), [7] * 10 + [10**10]):
        h = stats.Histogram()
        for v in values:
            h.record(v)
        exact = stats.percentiles_ms(values)
        approx = h.percentiles_ms()
        for name in ("p50", "p95", "p99"):
            assert math.isclose(approx[name], exact[name], rel_tol=0.01), (name, approx, exact)
        assert approx["max"] == exact["max"]  # exact, always
        assert h.count == len(values)


def test_histogram_is_bounded_and_merges():
    values = _lognormal(100_000, 3)
    whole, parts = stats.Histogram(), [stats.Histogram() for _ in range(4)]
    for i, v in enumerate(values):
        whole.record(v)
        parts[i % 4].record(v)
    merged = stats.Histogram()
    for p in parts:
        merged.merge(p)
    assert merged.counts == whole.counts and merged.max == whole.max
    # bounded by the range of the values (128 buckets per doubling), not their number
    assert len(whole.counts) < 128 * (max(values).bit_length() - 7)
    assert stats.Histogram().percentiles_ms() == {"p50": None, "p95": None, "p99": None,
                                                  "max": None}


def test_small_values_are_exact():
    h = stats.Histogram()
    for v in (0, 1, 2, 255):
        h.record(v)
    assert [h.quantile(p) for p in (25, 50, 75, 100)] == [0.0, 1.0, 2.0, 255.0]


# ---------------------------------------------------------------- the generator


def test_tx_random_repeats_on_reset_and_is_uniform():
    rng = TxRandom()
    rng.reset(0x9E3779B97F4A7C15)
    first = [rng.randint(1, 1000) for _ in range(20)] + [rng.random(), rng.getrandbits(100)]
    rng.reset(0x9E3779B97F4A7C15)
    again = [rng.randint(1, 1000) for _ in range(20)] + [rng.random(), rng.getrandbits(100)]
    assert first == again
    rng.reset(12345678901234567)
    assert [rng.randint(1, 1000) for _ in range(20)] != first[:20]
    rng = TxRandom(11)
    faces = Counter(rng.randint(1, 6) for _ in range(60_000))
    assert set(faces) == {1, 2, 3, 4, 5, 6}
    assert all(9_000 < n < 11_000 for n in faces.values())
    # the rest of random.Random's interface works on it
    items = list(range(10))
    rng.shuffle(items)
    assert sorted(items) == list(range(10))
    assert rng.choice("abc") in "abc" and len(rng.sample(range(100), 5)) == 5
    assert 1 <= rng.uniform(1, 2) <= 2 and 0 <= rng.random() < 1
    assert TxRandom("a seed").random() == TxRandom("a seed").random()


# ---------------------------------------------------------------- the streamed history


def _reference(scenario_name: str, strategy: str, seed: int, n: int, params: dict,
               pg_dsn: str, schema: str) -> History:
    """One worker, the old way: every attempt kept in a list and written at the end.

    Single-threaded, with the runner's seeds (worker 0's stream), on freshly set-up
    tables: the same transactions in the same order as a one-worker run."""
    import threading
    from random import Random

    from txlab import db
    from txlab.errors import Declined
    from txlab.runner import _setup
    from txlab.settings import RunSettings
    from txlab.tx import Tx

    scenario = resolve(scenario_name)
    settings = RunSettings(scenario=scenario_name, seed=seed, strategy=strategy, schema=schema,
                           params=tuple((k, str(v)) for k, v in params.items()))
    params = scenario.params(dict(settings.params))
    conn = db.connect(pg_dsn, "txlab-reference", search_path=schema)
    try:
        initial = _setup(conn, scenario, settings, params)
        cur = conn.cursor()
        draw = Random(f"txlab:{seed}:worker:0").getrandbits
        body = scenario.strategy(strategy).run
        attempts = []
        for txn in range(1, n + 1):
            tx = Tx(cur, "BEGIN ISOLATION LEVEL READ COMMITTED", TxRandom(), params, 0.0,
                    threading.Event())
            tx.rng.reset(draw(64))
            try:
                body(tx)
                cur.execute(tx.end_sql("COMMIT"))
                outcome, cause = COMMITTED, None
            except Declined as d:
                cur.execute("ROLLBACK")
                outcome, cause = DECLINED, d.reason
            attempts.append(Attempt(0, txn, 0, txn, txn, outcome, cause, None, None, tx.ops))
        db.drop_schema(conn, schema)
    finally:
        conn.close()
    return History({"isolation": "READ COMMITTED"}, initial, attempts)


def _deterministic(path) -> list[dict]:
    out = []
    for line in open(path, encoding="utf-8"):
        rec = json.loads(line)
        rec.pop("invoke_ns", None)
        rec.pop("complete_ns", None)
        out.append(rec)
    return out


@pytest.mark.parametrize("threads", ["", "1"], ids=["greenlets", "threads"])
def test_streamed_history_equals_the_old_in_memory_one(pg_dsn, schema, tmp_path, monkeypatch,
                                                       threads):
    # Both ways of running the workers (txlab.green, or TXLAB_WORKER_THREADS) record the same.
    monkeypatch.setenv("TXLAB_WORKER_THREADS", threads)
    seed, n, params = 41, 120, {"accounts": 4, "max_amount": 600}  # some transfers are declined
    result = run("bank-transfer", pg_dsn, strategy="naive", workers=1, transactions=n, seed=seed,
                 params=params)
    streamed = result.history
    assert streamed.path is not None and streamed.count == n
    reference = _reference("bank-transfer", "naive", seed, n, params, pg_dsn, schema)
    assert {a.outcome for a in reference.attempts} == {COMMITTED, DECLINED}
    history.write(reference, tmp_path / "reference.jsonl")
    got, want = _deterministic(streamed.path), _deterministic(tmp_path / "reference.jsonl")
    assert got[2:] == want[2:]  # every attempt: ids, workers, outcomes, operations
    assert got[1] == want[1]  # the initial state
    assert got[0]["format"] == "txlab-history/1" and got[0]["seed"] == seed
    # the counts kept while running are those of the history
    assert result.outcomes == stats.outcomes(reference.attempts)


def test_streamed_history_with_many_workers_is_ordered_numbered_and_counted(pg_dsn):
    result = run("bank-transfer", pg_dsn, strategy="naive", isolation="repeatable-read",
                 workers=6, transactions=300, seed=5, retries=2, params={"accounts": 3},
                 think_ms=1)
    h = result.history
    records = [json.loads(line) for line in open(h.path, encoding="utf-8")]
    txns = records[2:]
    assert [r["id"] for r in txns] == list(range(1, len(txns) + 1)) and h.count == len(txns)
    keys = [(r["invoke_ns"], r["worker"]) for r in txns]
    assert keys == sorted(keys)
    attempts = list(h.iter_attempts())
    assert attempts == h.attempts and len(attempts) == len(txns)
    out = stats.outcomes(attempts)
    assert out.aborted and out.retries  # the contention happened: retries were recorded
    assert result.outcomes == out
    exact = stats.percentiles_ms(stats.committed_latencies_ns(attempts))
    for name in ("p50", "p95", "p99"):
        assert math.isclose(result.run.latency_ms[name], exact[name], rel_tol=0.01)
    assert result.run.latency_ms["max"] == exact["max"]
    # the checker read the stream: it saw every attempt
    assert result.run.check is not None
    assert sum(1 for a in attempts if a.outcome == ABORTED) == sum(out.aborted.values())


def test_writer_orders_out_of_order_attempts_by_watermark(tmp_path):
    path = tmp_path / "h.jsonl"
    w = history.Writer(path, {"isolation": "SERIALIZABLE"}, [("w", "x", 1, 0)])

    def att(worker, invoke):
        return (worker, 1, 0, invoke, invoke + 5, COMMITTED, None, None, None, [("r", "x", 1, 0)])

    w.add([att(1, 30), att(0, 10)])
    w.flush(watermark=20)  # worker 1's attempt at 30 may still be preceded
    w.add([att(2, 20), att(0, 40)])
    w.flush(watermark=35)
    w.close()
    assert w.count == 4
    txns = [json.loads(line) for line in open(path)][2:]
    assert [(r["id"], r["invoke_ns"]) for r in txns] == [(1, 10), (2, 20), (3, 30), (4, 40)]


def test_no_check_and_no_history_records_nothing(pg_dsn, schema):
    from txlab import db, runner
    from txlab.settings import RunSettings

    settings = RunSettings(scenario="bank-transfer", seed=1, duration_s=None, transactions=50,
                           check=False, schema=schema)
    result = runner.run(settings, resolve("bank-transfer"), pg_dsn)
    assert result.history.path is None and result.history.count == 0
    assert result.history.attempts == []
    assert result.outcomes.committed + result.outcomes.declined == 50
    conn = db.connect(pg_dsn)
    db.drop_schema(conn, schema)
    conn.close()


def test_writer_orders_a_hand_over_larger_than_a_spool_block(tmp_path):
    """One flush spools several blocks; an attempt of a later block may be invoked
    before one of an earlier block (the workers' lists are concatenated)."""
    path = tmp_path / "h.jsonl"
    w = history.Writer(path, {"isolation": "SERIALIZABLE"}, [])
    n = history._Spool.BLOCK
    worker0 = [(0, i, 0, 2 * i + 1, 2 * i + 2, COMMITTED, None, None, None, []) for i in range(n)]
    worker1 = [(1, i, 0, 2 * i, 2 * i + 1, COMMITTED, None, None, None, []) for i in range(n)]
    w.add(worker0)
    w.add(worker1)
    w.flush(watermark=n)  # those invoked before n may be written; the rest wait
    w.add([(2, 0, 0, n, n + 1, ABORTED, "40001", "40001", "x", [])])
    w.close()
    txns = [json.loads(line) for line in open(path)][2:]
    keys = [(t["invoke_ns"], t["worker"]) for t in txns]
    assert keys == sorted(keys) and len(keys) == 2 * n + 1 == w.count
    assert [t["id"] for t in txns] == list(range(1, 2 * n + 2))


def test_writer_writes_any_value_as_json_dumps_does(tmp_path):
    """The spool gives values back as they were, or keeps the JSON text of those it
    cannot hold: each line is json.dumps of the record (default=str), as before."""
    import datetime
    import decimal
    from collections import namedtuple

    pair = namedtuple("pair", "a b")
    values = [0, -5, 2**80, 1.5, float("nan"), None, True, 'quote " and \\ and \n', "é",
              decimal.Decimal("1.20"), datetime.date(2024, 1, 2), pair(1, 2), b"\x00b",
              [1, [2, "x"]], {"k": 1, 2: "v"}, (3, 4), frozenset({1}), ""]
    attempts = []
    for i, v in enumerate(values):
        ops = [("w", f"k:{i}", 1, v), ("r", "k", 2, v), ("pr", "p", [["k", 1, v]])]
        attempts.append((i % 3, i, 0, 10 * i, 10 * i + 1, COMMITTED, None, None, None, ops))
        attempts.append((i % 3, i, 1, 10 * i + 2, 10 * i + 3, DECLINED, v, None, None, ops))
        attempts.append((i % 3, i, 2, 10 * i + 4, 10 * i + 5, ABORTED, "40001", "40001",
                         "could not serialize", []))
    path = tmp_path / "h.jsonl"
    w = history.Writer(path, {"isolation": "READ COMMITTED"}, [])
    w.add(attempts)
    w.close()

    def dumps(n, a):
        return json.dumps({"type": "txn", "id": n, "worker": a[0], "txn": a[1], "attempt": a[2],
                           "isolation": "READ COMMITTED", "invoke_ns": a[3], "complete_ns": a[4],
                           "outcome": a[5], "cause": a[6], "sqlstate": a[7], "error": a[8],
                           "ops": [list(op) for op in a[9]]}, default=str) + "\n"

    got = open(path, encoding="utf-8").readlines()[2:]
    assert got == [dumps(n, a) for n, a in enumerate(attempts, 1)]


def test_writer_spools_in_an_owned_folder_removed_at_close(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    w = history.Writer(tmp_path / "h.jsonl", {"isolation": "SERIALIZABLE"}, [])
    (folder,) = tmp_path.glob("txlab-history-*")
    assert (folder / "txlab-owner.json").exists() and (folder / "attempts.spool").exists()
    w.add([(0, 1, 0, 1, 2, COMMITTED, None, None, None, [])])
    w.flush(watermark=5)
    assert (folder / "attempts.spool").stat().st_size > 0  # on disk, not in a buffer
    w.close()
    assert not folder.exists() and len(open(tmp_path / "h.jsonl").readlines()) == 3


def test_a_history_too_large_for_memory_is_not_checked_and_the_report_says_why(
        pg_dsn, schema, monkeypatch):
    """A check that cannot fit would be killed with the report: skipped, and said so.
    Its neighbour: with the machine's real memory the same run is checked."""
    from txlab import db, report, runner
    from txlab.settings import RunSettings

    settings = RunSettings(scenario="bank-transfer", seed=1, duration_s=None, transactions=40,
                           check=True, schema=schema)
    checked = runner.run(settings, resolve("bank-transfer"), pg_dsn)
    assert checked.check is not None and checked.check_skipped is None
    from txlab import memory

    monkeypatch.setattr(memory, "available", lambda: 1000)  # a machine with 1 KB free
    small = runner.run(settings, resolve("bank-transfer"), pg_dsn)
    assert small.check is None
    assert small.check_skipped.startswith("too large for this machine's memory")
    assert "1000 bytes" not in small.check_skipped and "0 MB available" in small.check_skipped
    assert any("too large for this machine's memory" in n for n in report.notes(small))
    assert not any("anomaly check did not run" in n for n in report.notes(checked))
    conn = db.connect(pg_dsn)
    db.drop_schema(conn, schema)
    conn.close()


def test_a_runs_history_is_checked_in_parts_even_when_whole_it_would_not_fit(
        pg_dsn, schema, monkeypatch, tmp_path):
    """The run's check goes a part at a time (checker/segments.py), so a history too large
    to check whole is still checked; and the parts' verdict is the whole's."""
    from txlab import checker, db, memory, runner
    from txlab.checker import segments
    from txlab.settings import RunSettings

    monkeypatch.setattr(segments, "SEGMENT", 25)
    monkeypatch.setattr(memory, "available", lambda: 1000)  # a machine with 1 KB free
    path = tmp_path / "h.jsonl"
    settings = RunSettings(scenario="bank-transfer", seed=3, duration_s=None, transactions=300,
                           check=True, schema=schema, strategy="naive",
                           history_path=str(path), params=(("accounts", "50"),))
    r = runner.run(settings, resolve("bank-transfer"), pg_dsn)
    assert r.check_skipped is None and r.check is not None
    assert r.check.stats["parts"] > 1
    whole = checker.check(str(path), segment=0)
    assert (r.check.verdict, {k: a["count"] for k, a in r.check.anomalies.items()}) == \
        (whole.verdict, {k: a["count"] for k, a in whole.anomalies.items()})
    conn = db.connect(pg_dsn)
    db.drop_schema(conn, schema)
    conn.close()


def test_memory_shortfall_compares_the_file_with_what_is_available(tmp_path):
    from txlab import memory

    path = tmp_path / "h.jsonl"
    path.write_bytes(b"x" * 1000)
    assert memory.shortfall(path, free=4000) is None
    assert memory.shortfall(path, free=3999) is not None
    assert memory.shortfall(path, free=4499, per_byte=4.5) is not None
    assert memory.shortfall(tmp_path / "missing", free=1) is None
    assert memory.available() is None or memory.available() > 0


def test_check_warns_when_the_history_may_not_fit_and_still_checks(monkeypatch):
    """`txlab check FILE` was asked for explicitly: a warning, then the check as usual.
    Its neighbour: no warning with the machine's real memory."""
    from pathlib import Path

    from click.testing import CliRunner

    from txlab import memory
    from txlab.cli import cli

    path = str(Path(__file__).parent / "data" / "bank-transfer-naive-ser.jsonl")
    plain = CliRunner().invoke(cli, ["check", path])
    assert "warning" not in plain.stderr
    monkeypatch.setattr(memory, "available", lambda: 1000)
    warned = CliRunner().invoke(cli, ["check", path])
    assert "warning: this history may be too large" in " ".join(warned.stderr.split())
    import re

    def untimed(out: str) -> str:  # "checked in 0.01 s" may be "0.00 s" the second time
        return re.sub(r"checked in [\d.]+ s", "checked in T s", out)

    assert warned.exit_code == plain.exit_code
    assert untimed(warned.stdout) == untimed(plain.stdout)


def test_a_progress_stream_that_breaks_does_not_stop_the_run_and_nothing_outlives_a_failure(
        pg_dsn, schema):
    # `txlab run ... --progress-interval-s 0.5 2>&1 | head -1`: the progress line's write
    # raised BrokenPipeError in the load's watch, the run ended with its workers still
    # running, and the interpreter's shutdown under them crashed (exit 139 in 12 of 20).
    import threading

    from txlab import db, progress, runner
    from txlab.settings import RunSettings

    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def isatty(self):
            return False

    settings = RunSettings(scenario="bank-transfer", seed=1, duration_s=None, transactions=300,
                           think_ms=1, check=False, schema=schema, strategy="atomic")
    printer = progress.Printer(Gone(), 0.01, False)
    result = runner.run(settings, resolve("bank-transfer"), pg_dsn, progress=printer)
    assert result.outcomes.committed + result.outcomes.declined == 300  # ran to its end
    printer.close()  # says nothing, raises nothing

    def workers():
        return [t for t in threading.enumerate()
                if t.is_alive() and t.name.startswith("txlab-worker")]

    calls = []

    def failing(snap):  # any error in the watch (a bug): the workers stop before it goes on
        calls.append(snap)
        if len(calls) == 3:
            raise RuntimeError("a bug in the watch")

    settings = RunSettings(scenario="bank-transfer", seed=1, duration_s=30, think_ms=1,
                           check=False, schema=schema, strategy="atomic")
    with pytest.raises(RuntimeError, match="a bug in the watch"):
        runner.run(settings, resolve("bank-transfer"), pg_dsn, progress=failing)
    assert workers() == [], workers()
    conn = db.connect(pg_dsn)
    db.drop_schema(conn, schema)
    conn.close()


_KILLED_WHILE_WRITING = """
import os, signal, sys
from txlab import history
from txlab.history import COMMITTED
path = sys.argv[1]
w = history.Writer(path, {"isolation": "SERIALIZABLE"}, [("w", "x", 1, 0)])
for start in range(1, 40_001, 250):  # handed over as a run does, a tick at a time
    w.add([(i % 8, 1, 0, 10 * i, 10 * i + 5, COMMITTED, None, None, None, [("r", "x", 1, 0)])
           for i in range(start, start + 250)])
    w.flush(watermark=10 * (start + 250))
real, calls = history._Lines.encode, []
def encode(self, *args):
    calls.append(1)
    if len(calls) == 60:  # about 15,000 lines out: over a megabyte, past any buffer
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args)
history._Lines.encode = encode
w.close()
"""


def test_a_history_killed_while_its_lines_are_written_keeps_its_first_two_records(tmp_path):
    # docs/reliability.md: after SIGKILL a --history file keeps its run and init records
    # only. Killed while close() wrote the JSON lines, it kept some thousands of them,
    # which parsed and checked VALID as if the run had been that short (fault audit).
    path = tmp_path / "h.jsonl"
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _KILLED_WHILE_WRITING, str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr
    assert [json.loads(line)["type"] for line in open(path)] == ["run", "init"]
    # the neighbour: not killed, the whole history takes the file's place
    r = subprocess.run([sys.executable, "-c", _KILLED_WHILE_WRITING.replace("== 60", "== -1"),
                        str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in open(path)]
    assert [x["type"] for x in records[:2]] == ["run", "init"] and len(records) == 40_002
