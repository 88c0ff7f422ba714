"""The spellings of an isolation level, shared by the engine (txlab.db, `-i` of run,
demo and matrix) and the pure checker (`txlab check -i/-m`), so that both accept
the same words: any case; words joined by -, _, a space or nothing
(`read-committed`, `READ_COMMITTED`, `read committed`, `readcommitted`); the
British `serialisable`; and the short forms below."""

from __future__ import annotations

import re

KEYS = ("read-uncommitted", "read-committed", "repeatable-read", "serializable")
ALIASES = {
    "ru": "read-uncommitted",
    "rc": "read-committed",
    "rr": "repeatable-read",
    "si": "repeatable-read",
    "snapshot": "repeatable-read",
    "s": "serializable",
    "ser": "serializable",
    "sr": "serializable",
}
SPELLINGS = ("any case, words joined by -, _, a space or nothing, serialisable; short forms "
             "ru/rc/rr/ser; si or snapshot is repeatable-read")


def squash(text: str) -> str:
    """A name without case, separators or British spelling: `Read_Committed`, `read
    committed` and `readcommitted` are one; so are `serialisable` and `serializable`."""
    return re.sub(r"[\s_\-]+", "", text.strip().lower()).replace("serialis", "serializ")


def level_key(text: str) -> str | None:
    """The level a spelling names (`read-committed` ...), or None."""
    names = {squash(k): k for k in KEYS} | {squash(a): k for a, k in ALIASES.items()}
    return names.get(squash(text))
