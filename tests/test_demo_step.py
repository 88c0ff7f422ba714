"""Step mode for real: a txlab subprocess on a pseudo-terminal, driven key by key."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner

from txlab.cli import cli

PROMPT = re.compile(rb"q: quit\]")
END = re.compile(rb"b: back to the last step\]")  # after the verdict
ANSI = re.compile(rb"\x1b\[[0-9;]*m")


class Pty:
    """txlab demo ... --step on a pseudo-terminal 80 columns wide."""

    def __init__(self, args, env=None):
        import fcntl
        import struct

        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
        self.saved = termios.tcgetattr(self.slave)
        full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
        full_env.update({"TERM": "xterm"}, **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "txlab", "demo", *args],
                                     stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     env=full_env, start_new_session=True)
        self.out = b""
        self.pos = 0  # output up to here has been looked at

    def _pull(self, wait: float = 0.1) -> bool:
        """Read what the terminal has within `wait` seconds; False once it is closed."""
        if not select.select([self.master], [], [], wait)[0]:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.out += chunk
        return bool(chunk)

    def read_until(self, pattern: re.Pattern, timeout: float = 30) -> bytes:
        """Output up to the next match of `pattern` after what was already consumed."""
        start = self.pos
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = pattern.search(self.out, start)
            if found:
                self.pos = found.end()
                return self.out[start:found.end()]
            if not self._pull():
                break
        raise AssertionError(f"no {pattern.pattern!r} in:\n{self.plain(self.out[start:])}")

    def key(self, k: str) -> str:
        """Press `k` (at a prompt); what was printed up to the next prompt."""
        os.write(self.master, k.encode())
        return self.plain(self.read_until(PROMPT))

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit code, collecting everything printed."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end and self._pull():
            pass
        code = self.proc.wait(timeout=5)
        while select.select([self.master], [], [], 0.1)[0] and self._pull(0):
            pass
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)

    @staticmethod
    def plain(data: bytes) -> str:
        return ANSI.sub(b"", data).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.fixture
def step(pg_dsn):
    ptys = []

    def start(*args, env=None):
        p = Pty([*args, "--step", "--dsn", pg_dsn], env)
        ptys.append(p)
        return p

    yield start
    for p in ptys:
        p.close()


def _demo_backends(dsn) -> int:
    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                    "'txlab-demo/%%' AND pid <> pg_backend_pid()")
        return cur.fetchone()[0]
    finally:
        conn.close()


def test_step_mode_runs_one_step_per_key_goes_back_and_shows_waits_and_state(step):
    t = step("p4", "-i", "read-committed")
    first = t.plain(t.read_until(PROMPT))
    assert "Step 1 of 6: s1a (s1) SELECT * FROM test WHERE id = 1;" in first
    t.key(" ")  # step 1
    t.key(" ")  # step 2
    t.key("\r")  # step 3
    back = t.key("b")  # back: replay 1-2, offer step 3 again
    assert "Back: replayed steps 1-2 from the start." in back
    assert "Step 3 of 6: s1b (s1) UPDATE test SET value = 70 WHERE id = 1;" in back
    t.key(" ")  # step 3 again
    blocked = t.key(" ")  # step 4: s2b blocks on s1's row lock
    assert "WAITING for s1" in blocked
    assert "WAITING: s2 (s2b) waits for s1" in blocked
    assert "Committed state" in blocked and "1|  100" in blocked  # s1's 70 is not committed yet
    committed = t.key(" ")  # step 5: s1 commits, s2b completes
    assert "… s2b completes (it was waiting)" in committed and "1|   70" in committed
    os.write(t.master, b" ")  # step 6, the last: the verdict, then the end prompt
    ending = t.plain(t.read_until(END))
    assert "ANOMALY: P4 (lost update)" in ending
    assert "[Enter/space/q: finish · b: back to the last step]" in ending
    again = t.key("b")  # the verdict is not the end of the discussion: back to step 6
    assert "Back: replayed steps 1-5 from the start." in again
    assert "Step 6 of 6: s2c (s2) COMMIT;" in again and "1|   70" in again
    os.write(t.master, b" ")  # step 6 again: the same verdict
    assert "ANOMALY: P4 (lost update)" in t.plain(t.read_until(END))
    os.write(t.master, b"\r")  # finish
    assert t.finish() == 0
    out = t.plain(t.out)
    assert out.count("ANOMALY: P4 (lost update)") == 2
    assert out.rstrip().endswith("b: back to the last step]")
    assert ANSI.search(t.out)  # a terminal: colour
    assert max(len(ln) for ln in out.splitlines()) <= 80, [ln for ln in out.splitlines() if len(ln) > 80]
    # the terminal is back as it was (line mode, echo)
    assert termios.tcgetattr(t.slave)[3] == t.saved[3]


def test_quit_while_a_step_waits_rolls_back_and_leaves_nothing_behind(step, pg_dsn):
    t = step("p4", "-i", "repeatable-read", env={"NO_COLOR": "1"})
    t.read_until(PROMPT)
    for _ in range(4):
        t.key(" ")  # up to s2b, which now waits for s1
    os.write(t.master, b"q")
    assert t.finish() == 0
    out = t.plain(t.out)
    assert "Stopped before step 5 of 6; the sessions were rolled back." in out
    assert not ANSI.search(t.out)  # NO_COLOR: not one escape, even on a terminal
    assert _demo_backends(pg_dsn) == 0
    assert termios.tcgetattr(t.slave)[3] == t.saved[3]


def test_sigterm_at_the_prompt_restores_the_terminal_and_cleans_up(step, pg_dsn):
    t = step("deadlock", "-i", "rc")
    t.read_until(PROMPT)
    t.key(" ")
    os.kill(t.proc.pid, signal.SIGTERM)
    assert t.finish() == 130
    assert termios.tcgetattr(t.slave)[3] == t.saved[3]
    assert _demo_backends(pg_dsn) == 0


def test_step_mode_refuses_without_a_terminal(pg_dsn):
    r = CliRunner().invoke(cli, ["demo", "p4", "--step", "--dsn", pg_dsn], input=" \n")
    assert r.exit_code == 2
    assert "--step reads single key presses and needs a terminal" in r.output
    r = CliRunner().invoke(cli, ["demo", "p4", "--step", "-i", "all", "--dsn", pg_dsn])
    assert r.exit_code == 2 and "one isolation level at a time" in r.output


def test_the_deadlock_demo_keeps_its_victim_at_a_teachers_pace(step):
    # A teacher pauses between steps: s1's deadlock check (it once had the short
    # timeout) then ran before the cycle existed, so s2 was found only after 10 s and
    # the victim was not the one the story named. Now s2, whose wait closes the cycle,
    # checks after 200 ms: the victim is s2 whatever the pace, and at once.
    t = step("deadlock", "-i", "rc")
    t.read_until(PROMPT)
    for _ in range(3):  # s1a, s2a, s1b (s1 now waits for s2)
        t.key(" ")
    time.sleep(0.6)  # longer than 200 ms: a pause in front of the class
    t.key(" ")  # s2b closes the cycle
    t.key(" ")  # s1c
    os.write(t.master, b" ")  # s2c, the last
    t.read_until(END)
    # s1's own check (10 s) would have made s1 the victim: the words below say who it was
    os.write(t.master, b"q")  # q at the end prompt finishes too
    assert t.finish() == 0
    out = " ".join(t.plain(t.out).split())
    assert "s2 waited for s1 at s2b, then was chosen as the deadlock victim (40P01)" in out
    assert "so s2 is always the victim" in out or "s2 is always the victim" in out


def test_the_end_of_a_permutation_offers_the_next_and_q_skips_the_rest(step, tmp_path):
    spec = tmp_path / "two.spec"
    spec.write_text("setup { CREATE TABLE t (v int); INSERT INTO t VALUES (1); }\n"
                    "teardown { DROP TABLE t; }\n"
                    "session s1\nstep r1 { SELECT v FROM t; }\n"
                    "session s2\nstep w2 { UPDATE t SET v = v + 1; }\n"
                    "permutation r1 w2\npermutation w2 r1\n")
    t = step(str(spec), "-i", "rc", env={"NO_COLOR": "1"})
    t.read_until(PROMPT)
    t.key(" ")  # r1
    os.write(t.master, b" ")  # w2, the last step of permutation 1 of 2
    ending = t.plain(t.read_until(PROMPT))
    assert "[Enter/space: next permutation · b: back to the last step · q: quit]" in ending
    second = t.key(" ")  # on to permutation 2
    assert "Permutation: w2 r1  (2 of 2)" in second and "Step 1 of 2: w2" in second
    t.key(" ")
    os.write(t.master, b" ")
    assert "[Enter/space/q: finish" in t.plain(t.read_until(END))
    os.write(t.master, b" ")
    assert t.finish() == 0
    # q at the end of permutation 1 ends there: permutation 2 never runs
    t = step(str(spec), "-i", "rc", env={"NO_COLOR": "1"})
    t.read_until(PROMPT)
    t.key(" ")
    os.write(t.master, b" ")
    t.read_until(re.compile(rb"next permutation"))
    os.write(t.master, b"q")
    assert t.finish() == 0
    assert "(2 of 2)" not in t.plain(t.out)


def test_keys_pressed_while_a_step_runs_do_not_answer_the_next_prompt(step):
    t = step("p4", "-i", "rc")
    t.read_until(PROMPT)
    os.write(t.master, b"  ")  # two presses at once: the second lands while step 1 runs
    t.read_until(PROMPT)
    time.sleep(0.5)
    # the second press was discarded: still at step 2, nothing more was run
    assert "Step 2 of 6" in t.plain(t.out[-400:]) and "Step 3 of 6" not in t.plain(t.out)
    os.write(t.master, b"q")
    assert t.finish() == 0


def test_a_deadlock_resolved_during_a_step_shows_within_that_step(step):
    # PostgreSQL ends the deadlock 200 ms after step 4 (s2b) closes the cycle. Step
    # mode said both sessions wait for each other until the next key press, then
    # showed the 40P01 under "Step 5 ... COMMIT"; a run without --step shows it in
    # step 4, before step 5 is sent. Now step 4's screen ends with it too.
    t = step("deadlock", "-i", "rc", env={"NO_COLOR": "1"})
    t.read_until(PROMPT)
    for _ in range(3):  # s1a, s2a, s1b (s1 waits for s2)
        t.key(" ")
    fourth = t.key(" ")  # s2b closes the cycle
    assert "WAITING: s2 (s2b) waits for s1" in fourth  # first the cycle, as it was
    words = " ".join(fourth.split())
    assert "The next step, s1c, is s1's, and s1 still waits at s1b" in words
    resolved = fourth[fourth.index("still waits at s1b"):]
    assert "… s1b completes (it was waiting)" in resolved
    assert "ERROR 40P01: deadlock detected" in resolved
    assert resolved.index("40P01") < resolved.index("Step 5 of 6: s1c (s1) COMMIT;")
    fifth = t.key(" ")  # s1c: only its COMMIT
    assert "40P01" not in fifth and "completes" not in fifth and "→ COMMIT" in fifth
    os.write(t.master, b" ")
    ending = " ".join(t.plain(t.read_until(END)).split())
    assert "s2 waited for s1 at s2b, then was chosen as the deadlock victim (40P01)" in ending
    back = t.key("b")  # back to step 6: the replay of 1-5 shows the resolution in step 4
    assert back.count("ERROR 40P01: deadlock detected") == 1
    os.write(t.master, b"q")
    assert t.finish() == 0


def test_settling_between_steps_keeps_the_isolation_testers_order(pg_dsn):
    # What step mode does between two steps is what the next step starts with: the
    # events, and so the transcript, are those of a run without pauses.
    from txlab.interleave import demo, transcript
    from txlab.interleave.driver import SpecRun
    from txlab.interleave.stepper import Stepper

    for name in ("deadlock", "lock-timeout", "p4"):
        golden = (Path(__file__).parent / "golden" / "demos" / f"{name}.read-committed.out")
        result, (perm,) = demo.prepare(name)
        with Stepper(result.spec, pg_dsn, perm, "READ COMMITTED", 30, "txlab_demo",
                     result.plan) as st:
            settled = []
            while st.done < st.total:
                st.step()
                settled.append(st.settle() is not None)
            _, run = st.finish()
        names = tuple(s.name for s in result.spec.sessions)
        assert transcript.render(SpecRun(names, [run])) == golden.read_text(), name
        assert settled == {"deadlock": [False, False, False, True, False, False],
                           "lock-timeout": [False, True, False, False],
                           "p4": [False] * 6}[name]
