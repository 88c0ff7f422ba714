"""Output files that cannot be written: -o, --html, check's --plots, demo --new.

Real write failures, no mock: /dev/full (every write fails with ENOSPC, as on a
full disk), or a txlab process run with RLIMIT_FSIZE (a write past the limit fails
with EFBIG, as a full disk fails with ENOSPC; tests/test_history_disk_full.py does
the same). What must hold: every file is written whole or left as it was (never
empty, never cut short, never a stray temporary file); a report that cannot be
written goes to standard output, and the command's other files are still written;
the message names the file that failed (never "the output", which is standard
output); the exit code is 3, as documented for every command.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

HISTORY = str(Path(__file__).parent / "data" / "bank-transfer-naive-rc.jsonl")


def _limited(*args: str, limit: int, cwd=None) -> subprocess.CompletedProcess:
    """`txlab ARGS` in a process whose files may not grow past `limit` bytes."""
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True,
                          text=True, env=env, preexec_fn=preexec, timeout=300, cwd=cwd)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_check_html_and_plots_are_written_when_the_report_file_cannot_be(txlab, tmp_path):
    # /dev/full takes the -o report: it goes to standard output, and the page and the
    # plots are written all the same (the page was skipped before).
    page, plots = tmp_path / "c.html", tmp_path / "plots"
    r = txlab("check", HISTORY, "-o", "/dev/full", "--html", str(page), "--plots", str(plots))
    assert r.exit_code == 3, r.stderr
    assert "cannot write the report to /dev/full: No space left on device" in r.stderr
    assert "120 transactions" in r.stdout  # the report, on standard output instead
    assert page.read_text().startswith("<!DOCTYPE html>") and "html page written" in r.stderr
    assert len(list(plots.glob("*.dot"))) > 0 and ".dot files written" in r.stderr


def test_run_html_is_written_when_the_report_file_cannot_be(txlab, tmp_path):
    page = tmp_path / "r.html"
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "20", "-o", "/dev/full",
              "--html", str(page))
    assert r.exit_code == 3, r.stderr
    assert "cannot write the report to /dev/full" in r.stderr and "Invariants" in r.stdout
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_files_that_cannot_be_written_are_left_as_they_were(tmp_path):
    # The report (10 KB) and the page do not fit under a 4 KB limit; the plots (under
    # 1 KB each) do. The old report and page must survive whole, with no stray file.
    report, page, plots = tmp_path / "r.txt", tmp_path / "c.html", tmp_path / "plots"
    report.write_text("the old report\n")
    page.write_text("the old page\n")
    done = _limited("check", HISTORY, "-o", str(report), "--html", str(page), "--plots",
                    str(plots), limit=4096)
    assert done.returncode == 3, done.stderr
    assert f"cannot write the report to {report}: File too large" in done.stderr
    assert f"cannot write the html page to {page}: File too large" in done.stderr
    assert "120 transactions" in done.stdout  # the report, on standard output instead
    assert report.read_text() == "the old report\n" and page.read_text() == "the old page\n"
    assert _leftovers(tmp_path) == []
    assert all(p.stat().st_size > 0 for p in plots.glob("*.dot")) and list(plots.glob("*.dot"))
    assert "Traceback" not in done.stderr


def test_a_new_report_file_that_cannot_be_written_is_not_left_empty(tmp_path):
    report = tmp_path / "r.txt"
    done = _limited("check", HISTORY, "-o", str(report), limit=4096)
    assert done.returncode == 3, done.stderr
    assert not report.exists() and _leftovers(tmp_path) == []


def test_plots_that_cannot_be_written_name_the_file_not_standard_output(tmp_path):
    plots = tmp_path / "plots"
    done = _limited("check", HISTORY, "--plots", str(plots), limit=300)
    assert done.returncode == 3, done.stderr
    assert f"cannot write the plots to {plots}/" in done.stderr and "File too large" in done.stderr
    assert "the output" not in done.stderr and "Traceback" not in done.stderr
    assert "120 transactions" in done.stdout  # standard output was fine, and says so by being whole
    assert all(p.stat().st_size > 0 for p in plots.iterdir())  # no empty .dot
    assert _leftovers(plots) == []


def test_a_report_written_over_keeps_its_files_mode(txlab, tmp_path):
    report = tmp_path / "r.txt"
    report.write_text("old\n")
    report.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(report)
    r = txlab("check", HISTORY, "-o", str(link))
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and "120 transactions" in report.read_text()
    assert report.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("limit", [100])
def test_demo_new_on_a_full_disk_is_exit_3_and_leaves_no_file(tmp_path, limit):
    spec = tmp_path / "my.spec"
    done = _limited("demo", "--new", str(spec), limit=limit)
    assert done.returncode == 3, done.stderr  # a full disk, not a usage error (it was 2)
    assert f"cannot write {spec}: File too large" in done.stderr
    assert not spec.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["run", "matrix", "check", "demo", "acid"])
def test_every_command_that_writes_files_documents_exit_3_for_one_that_cannot_be(txlab,
                                                                                 command):
    text = " ".join(txlab(command, "-h").stdout.split())
    assert "3 " in text and "could not be written (a full disk)" in text


def test_a_report_to_a_device_or_a_link_to_one_is_written_in_place(tmp_path):
    # /dev/stdout is a link to the pipe: there is no folder to write a file into
    done = subprocess.run([sys.executable, "-m", "txlab", "check", HISTORY, "-o", "/dev/stdout"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "120 transactions" in done.stdout


def test_the_html_and_plots_are_written_when_standard_output_cannot_be(tmp_path):
    # The report goes to standard output, which is /dev/full: that ends the command
    # (exit 3, "the output"), but only after the page and the plots were written.
    page, plots = tmp_path / "c.html", tmp_path / "plots"
    env = {k: v for k, v in os.environ.items() if k not in ("TXLAB_DSN", "DATABASE_URL")}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "txlab", "check", HISTORY, "--html",
                               str(page), "--plots", str(plots)], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "cannot write the output: No space left on device" in done.stderr
    assert "<html" in page.read_text().lower()
    assert list(plots.glob("*.dot")) and all(p.stat().st_size > 0 for p in plots.glob("*.dot"))
    assert "Traceback" not in done.stderr


def test_a_folder_that_takes_no_new_file_is_refused_before_the_run(txlab):
    # /proc says it is writable (to root) but takes no new file: found by creating one,
    # before the setup; it used to run the setup, then report HOLDS over nothing (exit 3).
    r = txlab("run", "bank-transfer", "-n", "5", "--history", "/proc/txlab-history.jsonl")
    assert r.exit_code == 2, r.stderr
    assert "--history /proc/txlab-history.jsonl: cannot create files in /proc" in r.stderr
    assert r.stdout == "" and "HOLDS" not in r.stderr


def test_the_probe_leaves_nothing_behind_in_a_writable_folder(txlab, tmp_path):
    r = txlab("run", "bank-transfer", "-s", "atomic", "-n", "5", "--history",
              str(tmp_path / "h.jsonl"))
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl"]
