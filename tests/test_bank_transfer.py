"""bank-transfer against the real server: every verdict has a test that triggers
it and a neighbour that must not."""

from __future__ import annotations

import json
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txlab import history


def report(result):
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    return json.loads(result.stdout)


def holds(rep):
    return {i["name"]: i["holds"] for i in rep["invariants"]}


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    workers=st.integers(2, 8),
    accounts=st.integers(2, 6),
    seed=st.integers(0, 2**31 - 1),
    strategy=st.sampled_from(["naive", "atomic", "for-update", "optimistic"]),
)
def test_serializable_with_retries_keeps_every_invariant(txlab, workers, accounts, seed, strategy):
    r = txlab("run", "bank-transfer", "-i", "serializable", "-s", strategy, "--retries", "30",
              "-w", str(workers), "-p", f"accounts={accounts}", "--seed", str(seed),
              "-n", "60", "--format", "json")
    rep = report(r)
    assert r.exit_code == 0, r.stdout
    assert all(holds(rep).values())
    assert rep["anomalies"] == []
    assert rep["outcomes"]["committed"] + rep["outcomes"]["declined"] + rep["outcomes"]["failed"] == 60


def test_atomic_at_read_committed_holds(txlab):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-p", "accounts=3", "--think-ms", "2",
              "-n", "200", "--format", "json")
    rep = report(r)
    assert r.exit_code == 0 and all(holds(rep).values())
    assert rep["outcomes"]["aborted"] == {}
    assert rep["anomalies"] == []


def test_sorted_for_update_at_read_committed_holds_without_deadlocks(txlab):
    r = txlab("run", "bank-transfer", "-s", "for-update", "-p", "accounts=3", "--think-ms", "2",
              "-n", "200", "--format", "json")
    rep = report(r)
    assert r.exit_code == 0 and all(holds(rep).values())
    assert "40P01" not in rep["outcomes"]["aborted"]


def test_naive_at_read_committed_loses_money(txlab):
    # Three accounts, eight workers, 20 ms between the read and the write: every
    # pair of overlapping transfers reads the same balances, so updates are lost.
    r = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=3", "-w", "8",
              "--think-ms", "20", "-n", "80", "--format", "json")
    rep = report(r)
    assert r.exit_code == 1
    assert rep["verdict"] == "VIOLATED"
    assert holds(rep)["total money conserved"] is False
    assert holds(rep)["transfer log agrees with balances"] is False
    lost = [a for a in rep["anomalies"] if a["kind"] == "lost update"]
    assert lost and lost[0]["count"] > 0 and lost[0]["status"] == "allowed"
    assert "read account:" in lost[0]["example"] and "wrote it" in lost[0]["example"]
    assert rep["check"]["model"] == "read-committed" and rep["check"]["forbidden"] == []


def test_two_accounts_lose_updates_but_conserve_money(txlab):
    # With two accounts every transfer rewrites both rows from one consistent read,
    # so the last writer's pair always sums correctly: only the log exposes the loss.
    r = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=2", "--think-ms", "20",
              "-n", "60", "--format", "json")
    rep = report(r)
    assert r.exit_code == 1
    assert holds(rep)["total money conserved"] is True
    assert holds(rep)["transfer log agrees with balances"] is False
    assert "lost update" in [a["kind"] for a in rep["anomalies"]]


def test_naive_in_table_format_says_violated(txlab):
    r = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=2", "--think-ms", "20",
              "-n", "40")
    assert r.exit_code == 1
    assert "VIOLATED" in r.stdout and "lost update" in r.stdout


def test_as_drawn_lock_order_deadlocks(txlab):
    r = txlab("run", "bank-transfer", "-s", "for-update", "-p", "lock_order=as-drawn",
              "-p", "accounts=2", "-w", "8", "--think-ms", "20", "-n", "24", "--format", "json")
    rep = report(r)
    assert rep["outcomes"]["aborted"].get("40P01", 0) > 0
    assert all(holds(rep).values())


def test_naive_at_repeatable_read_aborts_instead_of_losing_updates(txlab):
    r = txlab("run", "bank-transfer", "-s", "naive", "-i", "repeatable-read", "-p", "accounts=2",
              "--think-ms", "10", "-n", "60", "--format", "json")
    rep = report(r)
    assert r.exit_code == 0 and all(holds(rep).values())
    assert rep["outcomes"]["aborted"].get("40001-concurrent-update", 0) > 0
    assert rep["anomalies"] == []


def test_optimistic_at_read_committed_counts_version_conflicts(txlab):
    r = txlab("run", "bank-transfer", "-s", "optimistic", "-p", "accounts=2", "--think-ms", "10",
              "-n", "60", "--format", "json")
    rep = report(r)
    assert r.exit_code == 0 and all(holds(rep).values())
    assert rep["outcomes"]["aborted"].get("version-conflict", 0) > 0


def test_history_file_is_a_faithful_record(txlab, tmp_path):
    path = tmp_path / "h.jsonl"
    r = txlab("run", "bank-transfer", "-s", "naive", "-i", "rr", "-p", "accounts=3",
              "--retries", "3", "--think-ms", "5", "-n", "80", "--format", "json",
              "--history", str(path))
    rep = report(r)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["type"] == "run" and lines[0]["format"] == "txlab-history/1"
    assert lines[1]["type"] == "init" and len(lines[1]["ops"]) == 3
    txns = [rec for rec in lines if rec["type"] == "txn"]
    o = rep["outcomes"]
    # one record per attempt
    assert len(txns) == o["committed"] + o["declined"] + sum(o["aborted"].values()) + o["unknown"]
    assert sum(rec["outcome"] == "committed" for rec in txns) == o["committed"]
    assert sum(rec["attempt"] > 0 for rec in txns) == o["retries"] > 0
    assert [rec["id"] for rec in txns] == list(range(1, len(txns) + 1))
    # committed writes form a version chain per account: 2, 3, 4, ... after the initial 1
    versions = defaultdict(list)
    for rec in txns:
        if rec["outcome"] == "committed":
            for f, key, version, _ in rec["ops"]:
                if f == "w":
                    versions[key].append(version)
    assert versions
    for key, vs in versions.items():
        assert sorted(vs) == list(range(2, 2 + len(vs))), key
    # the reader round-trips it
    h = history.read(path)
    assert len(h.attempts) == len(txns) and h.meta["isolation"] == "REPEATABLE READ"


def test_lock_timeout_is_counted_under_55P03(txlab):
    # Rows held for 200 ms by each transaction, waiters give up after 20 ms.
    r = txlab("run", "bank-transfer", "-s", "for-update", "-p", "accounts=2", "--think-ms", "200",
              "--lock-timeout-ms", "20", "-w", "4", "-n", "12", "--format", "json")
    rep = report(r)
    assert rep["outcomes"]["aborted"].get("55P03", 0) > 0
    assert all(holds(rep).values())


def test_killed_backends_are_counted_and_workers_reconnect(pg_dsn, schema):
    """pg_terminate_backend on every worker mid-run: the attempts in flight are
    recorded as lost (cause connection-lost: `aborted`, or `unknown` when the kill
    landed during COMMIT, as the history format defines), the workers reconnect,
    and the run completes."""
    import threading
    import time

    import psycopg2

    from txlab.testing import run

    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    killed = []

    def killer():
        cur = conn.cursor()
        for _ in range(200):
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'txlab-worker-%%' "
                        "AND state LIKE 'idle in transaction%%'")
            killed.extend(r for r in cur.fetchall() if r[0])
            if killed:
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    try:
        result = run("bank-transfer", pg_dsn, strategy="for-update", workers=4, transactions=40,
                     think_ms=50, params={"accounts": 4}, schema=schema)
    finally:
        t.join()
        conn.close()
    assert killed
    lost = [a for a in result.history.attempts if a.cause == "connection-lost"]
    assert lost and all(a.outcome in ("aborted", "unknown") for a in lost)
    assert len(lost) == result.outcomes.aborted.get("connection-lost", 0) + result.outcomes.unknown
    # every worker that lost its connection went on with a new one
    for a in lost:
        assert any(b.worker == a.worker and b.invoke_ns > a.complete_ns
                   for b in result.history.attempts), a
    assert result.ok
    assert result.outcomes.committed + result.outcomes.declined + result.outcomes.failed \
        + result.outcomes.unknown == 40
