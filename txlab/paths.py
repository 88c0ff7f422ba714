"""Output files are checked before any work starts, so a bad path loses nothing."""

from __future__ import annotations

import os
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
