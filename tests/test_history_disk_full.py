"""The history's disk fills up (or a file-size limit is hit) during a run.

A real write failure, no mock: the txlab process runs with RLIMIT_FSIZE, so a
write past the limit fails with EFBIG, as a full disk fails with ENOSPC. The run
must keep its report (invariants checked, outcomes counted), stop the load if the
failure came during it, never check a history it could not write (a history cut
short would make the checker's verdict a guess), leave the history file with its
`run` and `init` records only (never a torn line), say so, and exit with 3.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

LIMIT = 64 * 1024  # bytes any one file of the txlab process may reach


def _run(pg_dsn: str, schema: str, history, transactions: int, limit: int) -> tuple:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "txlab", "run", "bank-transfer", "-s", "atomic", "--think-ms",
         "0", "-w", "2", "-n", str(transactions), "--dsn", pg_dsn, "--schema", schema,
         "--history", str(history), "--format", "json"],
        capture_output=True, text=True, env=env, preexec_fn=limited, timeout=300)
    return done.returncode, json.loads(done.stdout), done.stderr


def _records(history) -> list[dict]:
    return [json.loads(line) for line in history.read_text().splitlines()]


@pytest.mark.parametrize("when, transactions", [("writing the JSON lines", 300),
                                                 ("during the load", 20_000)])
def test_a_history_that_cannot_be_written_keeps_the_report(pg_dsn, schema, tmp_path, when,
                                                           transactions):
    # 300 attempts fit the spool (binary) but not their JSON lines (about 300 bytes each);
    # 20,000 do not fit the spool either, which fills during the load.
    history = tmp_path / "h.jsonl"
    code, report, err = _run(pg_dsn, schema, history, transactions, LIMIT)
    assert code == 3, err
    assert "the history could not be written" in err and "File too large" in err
    assert "Traceback" not in err and "attempts written" not in err
    assert report["history_error"].startswith("the history could not be written")
    assert report["check"] is None and report["check_skipped"] == "the history could not be written"
    assert [i["holds"] for i in report["invariants"]] == [True, True, True]  # checked all the same
    assert any(n.startswith("HISTORY NOT WRITTEN") for n in report["notes"])
    assert [r["type"] for r in _records(history)] == ["run", "init"]  # no torn line, no part
    ended = report["outcomes"]["committed"] + report["outcomes"]["declined"]
    if when == "during the load":
        assert ended < transactions and "the load was stopped there" in report["history_error"]
    else:
        assert ended == transactions and "the load was stopped" not in report["history_error"]


def test_a_history_within_the_limit_is_written_whole(pg_dsn, schema, tmp_path):
    # The neighbour: the same run as the first case, with room for its history.
    history = tmp_path / "h.jsonl"
    code, report, err = _run(pg_dsn, schema, history, 300, 64 * LIMIT)
    assert code == 0, err
    assert report["history_error"] is None and report["check"] is not None
    assert len(_records(history)) == 2 + 300 + report["outcomes"]["retries"]


def test_a_report_file_that_cannot_be_written_goes_to_standard_output(txlab):
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", "--output", "/dev/full")
    assert r.exit_code == 3
    assert "cannot write the report to /dev/full: No space left on device" in r.output
    assert "Invariants" in r.output  # the report itself, on standard output instead


def test_an_html_page_that_cannot_be_written_leaves_the_report(txlab):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", "--html", "/dev/full")
    assert r.exit_code == 3
    assert "cannot write the html page to /dev/full: No space left on device" in r.output
    assert "Invariants" in r.output  # printed before the page was tried


def test_a_full_standard_output_is_named_as_such():
    # `txlab list > /dev/full`: standard output cannot be written (ENOSPC).
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "txlab", "list"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr == "txlab: error: cannot write the output: No space left on device\n"


def test_a_disk_full_before_the_load_keeps_the_report_and_exits_3(pg_dsn, schema, tmp_path):
    # 200 bytes: not even the history's run and init records fit. It used to be a usage
    # error (exit 2), with no report and an empty history file left behind.
    history = tmp_path / "h.jsonl"
    code, report, err = _run(pg_dsn, schema, history, 300, 200)
    assert code == 3, err
    assert "the history could not be written" in err and "File too large" in err
    assert "so no transaction was run" in report["history_error"]
    assert report["outcomes"]["committed"] == 0 and report["check"] is None
    assert [i["holds"] for i in report["invariants"]] == [True, True, True]  # checked
    assert not history.exists() and "no history file was left" in report["history_error"]
    assert "Traceback" not in err and "usage" not in err.lower()


def test_a_history_on_dev_full_is_exit_3_with_the_report(txlab):
    # --no-check: with the check on, a device is refused before the run (the check reads
    # the history back); without it, /dev/full is a disk that is full from the first write
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", "--history", "/dev/full",
              "--no-check")
    assert r.exit_code == 3, r.stderr
    assert "the history could not be written (/dev/full): No space left on device" in r.stderr
    assert "Invariants" in r.stdout and "HISTORY NOT WRITTEN" in r.stdout


def test_a_run_in_which_no_transaction_ran_claims_nothing_was_tested(txlab):
    # naive at READ COMMITTED is declared unsafe there: with transactions run and the
    # invariants held, the story calls the run lucky. With none run (the history could
    # not take its first records) there is no luck to speak of, and HOLDS says why.
    r = txlab("run", "bank-transfer", "-s", "naive", "-i", "rc", "-n", "20",
              "--history", "/dev/full", "--no-check")
    assert r.exit_code == 3, r.stderr
    out = " ".join(r.stdout.split())
    assert "No transaction ran, so nothing was tested: all 3 invariants held on the initial" in out
    assert "HOLDS: all 3 invariants held (no transaction ran: nothing was tested)" in out
    assert "lucky" not in out and "over 0 committed" not in out


def test_a_run_whose_transactions_ran_still_says_how_many_and_lucky(txlab):
    r = txlab("run", "bank-transfer", "-s", "naive", "-i", "rc", "-n", "20", "-w", "1")
    assert r.exit_code == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "All 3 invariants held over 20 committed transactions" in out or "declined" in out
    assert "lucky" in out and "nothing was tested" not in out


def test_a_history_to_a_device_or_pipe_is_refused_before_the_run_when_checked(pg_dsn, schema,
                                                                                 tmp_path):
    # The check reads the history back from its file: /dev/null gave an empty file at the
    # end of the whole run, and the report was lost to "internal error: ... empty file"
    # (exit 3); a FIFO hung in the check. Refused before any work now (exit 2); with
    # --no-check such a file is fine, and the report comes as always.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    base = [sys.executable, "-m", "txlab", "run", "bank-transfer", "-s", "atomic", "-n", "20",
            "--dsn", pg_dsn,
            "--schema", schema, "--format", "json"]
    for target in ("/dev/null", str(fifo)):
        r = subprocess.run([*base, "--history", target], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stderr)
        assert f"--history {target} is not a regular file" in " ".join(r.stderr.split())
        assert "internal error" not in r.stderr
    r = subprocess.run([*base, "--history", "/dev/null", "--no-check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["verdict"] == "HOLDS", r.stderr
