"""The output pipe closed early (`txlab ... | head`): exit 141, and nothing said.

A real txlab writes its report into a real pipe whose reader takes a few bytes and
leaves, as `head` does. The pipe is made one page small (F_SETPIPE_SZ through
Popen's pipesize), so the report cannot fit in it: the reader is always gone
while txlab still writes. With PYTHONUNBUFFERED (or -u), Python's standard output
drops the rest of a write the pipe takes only part of, silently (CPython
gh-85393): txlab exited 0 there, as if the whole report had been read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HISTORY = Path(__file__).parent / "data" / "bank-transfer-naive-rc.jsonl"
PAGE = 4096  # the smallest pipe Linux makes


def _closed_early(*args: str, unbuffered: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "txlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, pipesize=PAGE)
    try:
        head = proc.stdout.read(100)  # `head -c 100`: a few bytes, then the reader leaves
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, head, err)


@pytest.mark.parametrize("unbuffered", [True, False], ids=["PYTHONUNBUFFERED", "buffered"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_report_piped_into_head_exits_141(fmt, unbuffered):
    args = ("check", str(HISTORY), "--max-examples", "1000", "--format", fmt)
    whole = subprocess.run([sys.executable, "-m", "txlab", *args], capture_output=True,
                           timeout=60)
    assert whole.returncode == 0 and len(whole.stdout) > 4 * PAGE  # it cannot fit the pipe
    r = _closed_early(*args, unbuffered=unbuffered)
    assert r.stdout == whole.stdout[:100]
    assert r.returncode == 141, r.stderr
    assert r.stderr == b""  # the reader left on purpose: nothing to say


@pytest.mark.parametrize("args", [(), ("--version",), ("run", "--help"), ("explain", "40001")],
                         ids=["help", "version", "run-help", "explain"])
def test_output_into_a_pipe_already_closed_exits_141(args):
    # The reader is gone before txlab starts: its first write fails, wherever it is
    # (the help click prints, the version, a command's output).
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run([sys.executable, "-m", "txlab", *args], stdout=write,
                           stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write)
    assert r.returncode == 141 and r.stderr == b"", r.stderr.decode()
