"""Temporary folders owned by a live txlab, and the removal of those whose owner died.

A txlab killed with SIGKILL (or by the OOM killer) cannot clean up after itself.
So each temporary folder txlab makes (a temporary server's, a run's history
spool) holds an owner file: pid, process start time, boot id, pid namespace and
a random token; the owner keeps a shared flock on it while it lives. A later
txlab removes the folders whose owner is gone by every one of those measures,
and only folders of its own kind (`prefix`), written by this user.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

OWNER_FILE = "txlab-owner.json"
SERVER, HISTORY = "server", "history"  # what an owned folder holds (older owner files: a server)


def proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    fields = proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None  # field 22 of stat


def claim(folder: Path, kind: str) -> tuple[int, str]:
    """Write `folder`'s owner file and hold a shared flock on it while this process
    lives (or until the descriptor is closed); returns (the descriptor, the token).
    `kind` says what the folder holds (SERVER, HISTORY): each is reaped by its own."""
    token = secrets.token_hex(8)
    me = os.getpid()
    record = {"pid": me, "start": start_ticks(me), "boot": boot_id(),
              "pidns": pid_namespace(), "token": token, "created": time.time(), "kind": kind}
    fd = os.open(folder / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    os.write(fd, json.dumps(record).encode())
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.set_inheritable(fd, False)
    return fd, token


def _alive(record: dict) -> bool:
    """Whether the process that wrote an owner file may still live (True when unsure)."""
    if record.get("boot") != boot_id():
        return not record.get("boot") or not boot_id()  # rebooted since: gone
    if record.get("pidns") != pid_namespace():
        return True  # another pid namespace: its pids mean nothing here
    pid, start = record.get("pid"), record.get("start")
    if not isinstance(pid, int) or not isinstance(start, int):
        return True
    return start_ticks(pid) == start


def orphan(folder: Path, kind: str) -> dict | None:
    """The owner record of a folder of `kind` whose owner is gone, or None (no owner
    file of this user's, another kind, or its owner may live)."""
    owner = folder / OWNER_FILE
    try:
        fd = os.open(owner, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the owner holds LOCK_SH
        except OSError:
            return None
        try:
            record = json.loads(os.read(fd, 4096).decode())
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(record, dict) or record.get("kind", SERVER) != kind or _alive(record):
            return None
        return record
    finally:
        os.close(fd)  # releases the flock: the owner is gone, no one else takes LOCK_SH


def reap(parent: Path, prefix: str, kind: str,
         release: Callable[[Path, dict], bool] | None = None) -> list[Path]:
    """Remove the folders `prefix*` of `kind` in `parent` whose owner is gone; returns them.

    `release(folder, record)` runs first (a temporary server is stopped there)
    and may say no (False): the folder is then left alone."""
    reaped = []
    try:
        candidates = sorted(parent.glob(prefix + "*"))
    except OSError:
        return reaped
    for folder in candidates:
        if folder.is_symlink() or not folder.is_dir():
            continue
        record = orphan(folder, kind)
        if record is None or (release is not None and not release(folder, record)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


class Folder:
    """A fresh temporary folder `prefix*` that this process owns (`path`), holding
    `kind`; `remove()` deletes it.

    Folders of the same prefix and kind left by a txlab that was killed are removed
    first (`reaped` lists them)."""

    def __init__(self, prefix: str, kind: str, parent: Path | None = None):
        parent = parent or Path(tempfile.gettempdir())
        self.reaped = reap(parent, prefix, kind)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            self._fd: int | None
            self._fd, self.token = claim(self.path, kind)
        except OSError:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
