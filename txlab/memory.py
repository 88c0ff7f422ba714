"""Will a history's whole check fit in this machine's memory?

A whole check holds the history as its graph: its peak RSS is about 3.5 times the
size of a txlab history file (1M bank-transfer transactions: a 300 MB file, a 1.05 GB
check) and about 4 times an Elle JSON or EDN file's. (A long txlab history is checked
in parts instead, in bounded memory: checker/segments.py.)
"""

from __future__ import annotations

from pathlib import Path

BYTES_PER_FILE_BYTE = 4  # txlab's history, with a margin
ELLE_BYTES_PER_FILE_BYTE = 4.5  # Jepsen's JSON and EDN, with a margin


def available() -> int | None:
    """Bytes the kernel says can be had without swapping (MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def shortfall(path: Path, free: int | None = None,
              per_byte: float = BYTES_PER_FILE_BYTE) -> str | None:
    """Why the history at `path` cannot be checked in this machine's memory, or None.

    A check that does not fit swaps for hours or is killed by the kernel, taking a
    run's report with it."""
    free = available() if free is None else free
    try:
        size = Path(path).stat().st_size
    except OSError:
        return None
    need = int(size * per_byte)
    if free is None or need <= free:
        return None
    return (f"too large for this machine's memory: checking a {_size(size)} history needs "
            f"about {_size(need)}, {_size(free)} available")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
