"""Output files are checked before any work starts, so a bad path loses nothing; and
written whole (`write_whole`), so a write that fails (a full disk) loses nothing
either: no half-written or empty file, the old one left as it was."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from txlab.errors import UsageError


def check_writable(path: str, option: str) -> None:
    """A UsageError unless `path` can be written (created, or overwritten) as a file."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if path.endswith(("/", os.sep)) and not p.is_dir():  # Path() drops the slash: no file "dir"
        raise UsageError(f"{option} {path}: ends in a slash, so it names a folder; give a file "
                         "name")
    if p.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if not parent.exists():
        raise UsageError(f"{option} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is not a folder")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise UsageError(f"{option} {path}: the file is not writable")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create files in {parent}")
    else:
        _probe(parent, path, option)


def _probe(parent: Path, path: str, option: str) -> None:
    """Create and remove an empty file in `parent`: a folder that says it is writable
    may still take no new file (/proc, a FUSE mount), which is a usage error found
    now, not after the setup. A full disk is not refused here (an empty file may
    still fit; writing it is a runtime error, exit 3)."""
    probe = parent / f".txlab-probe-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno in FULL:
            return
        raise UsageError(f"{option} {path}: cannot create files in {parent} "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs: dict[str, str | None], reads: str | None = None) -> None:
    """Check every output file ({option: path}; None for not given) and refuse one file
    given for two outputs (one would overwrite the other), or for the input file `reads`
    (a report written over the history it checks)."""
    given = [(option, path) for option, path in outputs.items() if path]
    for option, path in given:
        check_writable(path, option)
        if reads and _same(path, reads):
            raise UsageError(f"{option} {path} is the file being read; give another name")
    for i, (option, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if _same(path, other_path):
                raise UsageError(f"{option} and {other} name the same file ({path}); "
                                 "each needs its own")


def regular_or_new(path: str | os.PathLike) -> bool:
    """`path` names a regular file (through links), or nothing yet: a file that can be
    read back as written, unlike /dev/null, /dev/stdout or a FIFO."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # not there yet (else check_writable has said what is wrong with it)
        return True


# ---------------------------------------------------------------- writing a file whole

# A write that failed for want of room or a working disk, not for a bad path: a
# runtime error (exit 3), never a usage error.
FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def write_whole(path: str | os.PathLike, text: str, *, replace: bool = True) -> None:
    """Write `text` to `path` all or nothing: into a temporary file in the same folder,
    which then takes the file's place (os.replace, atomic). A failure (a full disk)
    leaves no half-written or empty file, and a file that was there stays as it was.
    The file keeps its mode (a new one gets the umask's), and a symbolic link stays
    a link (its target is replaced). `replace=False`: never overwrite a file
    (FileExistsError), the new one appears whole or not at all.

    What cannot be replaced is written in place, as before: a device, a FIFO
    (`-o /dev/null`, `-o /dev/stdout`), or a file in a folder where no file can be
    created (a writable file in a read-only folder). An OSError always names the
    file (`filename`), never a temporary one."""
    try:
        st = os.stat(path)  # through links: /dev/stdout is a link to a pipe, say
    except FileNotFoundError:
        st = None
    if st is not None and not replace:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        _in_place(path, text)
        return
    target = os.path.realpath(path)
    try:
        fd, tmp = open_beside(path, st)
    except OSError as exc:
        if replace and st is not None and exc.errno in NO_NEW_FILE:
            _in_place(path, text)  # the file may be written, not its folder
            return
        raise _naming(exc, path) from None
    try:
        try:
            f = os.fdopen(fd, "w", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise
        with f:
            f.write(text)
            f.flush()
            os.fsync(fd)  # a full disk may only say so here (NFS, quotas)
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # FileExistsError if a file appeared meanwhile
            os.unlink(tmp)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise


# A folder that takes no new file (a writable file in a read-only folder): written in place.
NO_NEW_FILE = (errno.EACCES, errno.EPERM, errno.EROFS)


def open_beside(path: str | os.PathLike, st: os.stat_result | None) -> tuple[int, str]:
    """A new, empty file beside `path`'s target (through links), to take its place with
    os.replace once whole: (its descriptor, its path). With `st` (the file's own stat) it
    gets that file's mode, and its owner when root writes it. An OSError as os.open
    raises it (NO_NEW_FILE: the folder takes no new file)."""
    target = os.path.realpath(path)
    tmp = os.path.join(os.path.dirname(target) or ".",
                       f".{os.path.basename(target)}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if st is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if os.geteuid() == 0:  # root overwriting someone's file: it stays theirs
                with contextlib.suppress(OSError):
                    os.fchown(fd, st.st_uid, st.st_gid)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


def _in_place(path: str | os.PathLike, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise _naming(exc, path) from None


def _naming(exc: OSError, path: str | os.PathLike) -> OSError:
    """`exc`, saying it is about `path` (a failed write names no file; a failed
    rename names the temporary one)."""
    exc.filename = os.fspath(path)
    exc.filename2 = None
    return exc
