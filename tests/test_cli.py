"""The CLI contract: exit codes, JSON schema, messages, no passwords."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from txlab import db

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "txlab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "txlab, version" in out.stdout


def test_a_bare_command_group_prints_its_help_not_an_error():
    """`txlab` and `txlab server` alone: the help on stdout, exit 0 (no "Error:")."""
    for args in ([], ["server"]):
        out = subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Usage: txlab") and "Commands:" in out.stdout
        assert out.stderr == ""
    wrong = subprocess.run([sys.executable, "-m", "txlab", "runn"], capture_output=True,
                           text=True)
    assert wrong.returncode == 2 and "Error:" in wrong.stderr  # its neighbour: a usage error


def test_help_documents_exit_codes(txlab):
    r = txlab("run", "--help")
    assert r.exit_code == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert code in r.stdout
    assert "--think-ms" in r.stdout and "--retries" in r.stdout


def test_exit_0_json_schema(txlab):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "50", "--seed", "7", "--format", "json")
    assert r.exit_code == 0
    rep = json.loads(r.stdout)
    for key in ("scenario", "strategy", "isolation", "workers", "seed", "duration_s", "server",
                "interrupted", "outcomes", "throughput_tps", "latency_ms", "invariants", "anomalies",
                "declared", "story", "next"):
        assert key in rep, key
    assert set(rep["outcomes"]) >= {"committed", "declined", "retries", "aborted", "failed"}
    assert set(rep["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert rep["seed"] == 7 and rep["scenario"] == "bank-transfer" and rep["interrupted"] is False
    assert rep["server"].startswith("PostgreSQL ")
    inv = rep["invariants"][0]
    assert set(inv) == {"name", "holds", "expected", "actual", "detail", "story"}


def test_exit_1_on_violation(txlab):
    r = txlab("run", "bank-transfer", "-s", "naive", "-p", "accounts=2", "--think-ms", "20", "-n", "40")
    assert r.exit_code == 1


def test_table_report_has_every_section(txlab):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "30", "-i", "READ UNCOMMITTED")
    assert r.exit_code == 0
    for text in ("Performance", "Outcomes", "Invariants", "Anomalies", "p50", "seed",
                 "PostgreSQL", "READ UNCOMMITTED", "runs READ UNCOMMITTED exactly as READ COMMITTED",
                 "HOLDS: all 3 invariants held"):
        assert text in r.stdout, text


def test_markdown_report(txlab):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", "--format", "markdown")
    assert r.exit_code == 0 and r.stdout.startswith("# txlab run") and "| invariant" in r.stdout


def test_output_file(txlab, tmp_path):
    out = tmp_path / "report.json"
    r = txlab("run", "bank-transfer", "-n", "20", "-s", "atomic", "--format", "json", "-o", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(out.read_text())["outcomes"]["committed"] > 0


def test_exit_2_unknown_scenario_suggests(txlab):
    r = txlab("run", "bank-transfr")
    assert r.exit_code == 2
    assert "Did you mean 'bank-transfer'" in r.stderr and "Traceback" not in r.stderr


def test_exit_2_bad_values(txlab):
    cases = [
        (("run", "bank-transfer", "-i", "snapshot-serial"), "read-committed, repeatable-read"),
        (("run", "bank-transfer", "-s", "magic"), "naive, atomic, for-update, optimistic"),
        (("run", "bank-transfer", "-p", "accounts=1"), "at least 2"),
        (("run", "bank-transfer", "-p", "nope"), "expected key=value"),
        (("run", "bank-transfer", "-w", "0"), "--workers"),
        (("run", "bank-transfer", "-d", "1", "-n", "5"), "not both"),
        (("run", "bank-transfer", "--schema", "Bad-Name"), "invalid schema name"),
        (("run", "no/such/file.py",), "does not exist"),
    ]
    for args, text in cases:
        r = txlab(*args, use_schema="--schema" not in args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_exit_3_unreachable_database_masks_password(txlab):
    r = txlab("run", "bank-transfer", "-n", "5",
              dsn="postgresql://alice:Sup3rSecret@127.0.0.1:1/bankdb")
    assert r.exit_code == 3
    assert "host 127.0.0.1, port 1, database bankdb" in r.stderr
    assert "Sup3rSecret" not in r.stderr + r.stdout
    # the hint fits where the URL came from: no "start a local server" for --dsn
    assert "Check the URL given by --dsn" in r.stderr and "txlab server start" not in r.stderr


def test_password_never_printed(txlab, pg_dsn):
    params = db.parse_dsn(pg_dsn)
    host, port = params.get("host", ""), params.get("port", "5432")
    user, dbname = params.get("user", "postgres"), params.get("dbname", "postgres")
    # Trust authentication ignores the password, so the run succeeds with it in the URL.
    dsn = f"postgresql://{user}:TopS3cretPw@/{dbname}?host={host}&port={port}"
    if not host.startswith("/"):
        dsn = f"postgresql://{user}:TopS3cretPw@{host}:{port}/{dbname}"
    for fmt in ("table", "json", "markdown"):
        r = txlab("run", "bank-transfer", "-n", "10", "-s", "atomic", "--format", fmt, dsn=dsn)
        assert "TopS3cretPw" not in r.stdout + r.stderr, fmt


def test_foreign_schema_is_refused_and_untouched(txlab, pg_dsn):
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP SCHEMA IF EXISTS users_own CASCADE; CREATE SCHEMA users_own;"
                "CREATE TABLE users_own.accounts (id int); INSERT INTO users_own.accounts VALUES (42)")
    try:
        r = txlab("run", "bank-transfer", "-n", "5", "--schema", "users_own", use_schema=False)
        assert r.exit_code == 2 and "not created by txlab" in r.stderr
        r = txlab("clean", "--schema", "users_own", use_schema=False)
        assert r.exit_code == 2
        cur.execute("SELECT id FROM users_own.accounts")
        assert cur.fetchall() == [(42,)]
    finally:
        cur.execute("DROP SCHEMA users_own CASCADE")
        conn.close()


def test_clean_drops_only_txlabs_schema(txlab, pg_dsn, schema):
    assert txlab("run", "bank-transfer", "-s", "atomic", "-n", "5").exit_code == 0
    r = txlab("clean")
    assert r.exit_code == 0 and f"dropped schema {schema}" in r.stderr
    conn = psycopg2.connect(pg_dsn)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
    assert cur.fetchone()[0] == 0
    conn.close()


def test_no_progress_line_when_stderr_is_not_a_terminal(txlab):
    r = txlab("run", "bank-transfer", "-n", "20", "-s", "atomic")
    assert "\r" not in r.stderr and "tps" not in r.stderr


def test_ctrl_c_prints_partial_report_and_exits_130(pg_dsn, schema):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "txlab", "run", "bank-transfer", "-s", "for-update",
         "-p", "accounts=2", "--think-ms", "200", "-d", "120", "--dsn", pg_dsn, "--schema", schema],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    cur = conn.cursor()
    try:
        for _ in range(300):  # wait until the workers are inside transactions
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                        "'txlab-worker-%%' AND state LIKE 'idle in transaction%%'")
            if cur.fetchone()[0] > 0:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "INTERRUPTED" in out and "Invariants" in out
        # every worker connection is gone: nothing left in flight
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'txlab-worker-%%'")
        assert cur.fetchone()[0] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        conn.close()


def test_list_from_an_unrelated_directory(tmp_path):
    out = subprocess.run([sys.executable, "-m", "txlab", "list"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and "bank-transfer" in out.stdout


def test_plain_install_carries_the_scenarios(tmp_path):
    """A non-editable install (a built wheel) contains the scenarios and lists them."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    wheel = next(wheel_dir.glob("txlab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    assert (target / "txlab_scenarios" / "bank_transfer.py").is_file()
    # every engine subpackage made it into the wheel
    for init in (ROOT / "txlab").glob("*/__init__.py"):
        sub = init.parent.relative_to(ROOT)
        assert (target / sub / "__init__.py").is_file(), f"{sub} missing from the wheel"
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", "import txlab, sys; print(txlab.__file__); "
                          "from txlab.cli import main; sys.argv=['txlab','list']; main()"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert str(target) in out.stdout and "bank-transfer" in out.stdout
    demos = subprocess.run([sys.executable, "-c", "import sys; from txlab.cli import main; "
                            "sys.argv=['txlab','demo','--list']; main()"],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert demos.returncode == 0 and "g2-item" in demos.stdout, demos.stderr
