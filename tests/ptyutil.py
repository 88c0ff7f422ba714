"""Run a real txlab in a pseudo-terminal (for colour, width and prompts)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile


def on_pty(args, env_extra=None, columns=80, stdin_data=None, timeout=120, stdout=None):
    """Run txlab with stdin, stdout and stderr on a pseudo-terminal `columns` wide
    (stdout: an open file instead, for `txlab ... > file` with stderr still the terminal)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "COLUMNS", "TXLAB_DSN", "DATABASE_URL")}
    # never the user's ~/.cache/txlab: a fresh TXLAB_HOME unless the test gives one
    home = tempfile.mkdtemp(prefix="txpty")
    env.update({"TERM": "xterm-256color", "TXLAB_HOME": home, **(env_extra or {})})
    proc = subprocess.Popen([sys.executable, "-m", "txlab", *args], stdin=slave,
                            stdout=slave if stdout is None else stdout,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    if stdin_data is not None:
        os.write(master, stdin_data)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError(f"txlab {args} produced nothing for {timeout} s: {out!r}")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        proc.wait(timeout=timeout)
        shutil.rmtree(home, ignore_errors=True)
    return proc.returncode, out.decode("utf-8", "replace").replace("\r\n", "\n")
