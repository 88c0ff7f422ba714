"""What the benches share: the database to measure on, and the CPU their children used."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def median_interval(values: list[float], level: float = 0.9, draws: int = 2000
                    ) -> tuple[float, float]:
    """A bootstrap interval for the median of `values` (rounds resampled with
    replacement, a fixed seed): how far the median itself could move on this machine.
    A target inside it is neither met nor missed by these rounds."""
    import random
    import statistics

    rng = random.Random(0)
    n = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(draws))
    cut = int(draws * (1 - level) / 2)
    return medians[cut], medians[draws - 1 - cut]


def children_cpu() -> float:
    """User + system seconds used so far by this process's finished children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def database(dsn: str | None, prefix: str):
    """`dsn`, else a temporary embedded server started now and stopped at the end."""
    if dsn:
        yield dsn
        return
    from txlab import server

    print("starting a temporary embedded server", flush=True)
    with server.temporary(prefix) as (url, _):
        yield url


def txlab_report(args: list[str], src: str | None = None) -> dict:
    """`txlab run bank-transfer --strategy atomic --think-ms 0 --format json ARGS`: its
    JSON report, plus the CPU it used (`cpu_s`). With `src`, txlab is imported from
    that source tree (run from there, with PYTHONPATH=src)."""
    cmd = [sys.executable, "-m", "txlab", "run", "bank-transfer", "--strategy", "atomic",
           "--think-ms", "0", "--format", "json", *args]  # no pause: the other side has none
    env = dict(os.environ, PYTHONPATH=source_path(src)) if src else None
    cpu = children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)
    cpu = children_cpu() - cpu
    if done.returncode not in (0, 1):
        sys.exit(f"txlab failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    report = json.loads(done.stdout)
    if report["verdict"] != "HOLDS":
        print(f"  warning: txlab reports a violated invariant: {report['invariants']}")
    report["cpu_s"] = cpu
    return report


def source_path(src: str) -> str:
    """PYTHONPATH for txlab from the source tree `src`, scenarios included: they are
    the package txlab_scenarios, which the tree holds as scenarios/ (without this,
    this checkout's editable install would lend its own)."""
    link = Path(tempfile.gettempdir()) / f"txlab-bench-src-{os.getpid()}" / "txlab_scenarios"
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(Path(src).resolve() / "scenarios")
        atexit.register(shutil.rmtree, link.parent, True)
    return f"{src}{os.pathsep}{link.parent}"
