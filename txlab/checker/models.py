"""The anomaly catalogue and the isolation-model table, as data.

Every anomaly has a one-line definition citing Adya (Adya, Liskov & O'Neil,
"Generalized Isolation Level Definitions", ICDE 2000) or Elle (Kingsbury &
Alvaro, VLDB 2020). Each model lists what it forbids; anything else found is
"allowed at this level" (an expected teaching result).
"""

from __future__ import annotations

from typing import NamedTuple

from txlab import levels


class AnomalyKind(NamedTuple):
    name: str
    family: str  # "version chain" | "non-cycle" | "cycle"
    definition: str


# Most severe first: the order used for searching and reporting.
ANOMALIES: tuple[AnomalyKind, ...] = (
    AnomalyKind("duplicate-versions", "version chain",
                "two committed writes installed the same version of a key (Elle: duplicate writes)"),
    AnomalyKind("cyclic-versions", "version chain",
                "the version order of a key contains a cycle (Elle: cyclic version order)"),
    AnomalyKind("incompatible-order", "version chain",
                "two reads of a list are not prefixes of one another (Elle: incompatible-order)"),
    AnomalyKind("duplicate-elements", "version chain",
                "a read of a list shows one appended element twice (Elle: duplicate-elements)"),
    AnomalyKind("missing-versions", "version chain",
                "a version was read or skipped that no transaction installed (a gap in the chain)"),
    AnomalyKind("garbage-read", "non-cycle",
                "a committed transaction read a version with a value that no transaction wrote "
                "(Elle: garbage read)"),
    AnomalyKind("G0", "cycle", "write cycle: a cycle of ww edges only (Adya G0)"),
    AnomalyKind("G1a", "non-cycle",
                "aborted read: a committed transaction read a version written by a failed one (Adya G1a)"),
    AnomalyKind("G1b", "non-cycle",
                "intermediate read: a committed transaction read a version its writer later "
                "overwrote in the same transaction (Adya G1b)"),
    AnomalyKind("dirty-update", "non-cycle",
                "a committed write follows a failed one in a key's version order (Elle: "
                "dirty update, a kind of aborted read)"),
    AnomalyKind("future-read", "non-cycle",
                "a transaction read a value that it writes itself only later (Elle: future-read, "
                "a trivial cycle of circular information flow)"),
    AnomalyKind("G1c", "cycle",
                "circular information flow: a cycle of ww and wr edges, at least one wr (Adya G1c)"),
    AnomalyKind("internal", "non-cycle",
                "a transaction's read disagrees with its own earlier write (or read) of the key (Elle)"),
    AnomalyKind("lost update", "non-cycle",
                "two committed transactions read the same version of a key and both wrote it (Adya P4)"),
    AnomalyKind("G-single", "cycle",
                "read skew: a cycle with exactly one rw edge (Adya G-single; lost update is a case)"),
    AnomalyKind("G-nonadjacent", "cycle",
                "a cycle with two or more rw edges, no two adjacent (Elle; forbidden by snapshot isolation)"),
    AnomalyKind("G2-item", "cycle",
                "write skew: a cycle with two or more item rw edges, some adjacent (Adya G2-item); "
                "a row a predicate read returned counts as read"),
)

BASE_CYCLES = ("G0", "G1c", "G-single", "G-nonadjacent", "G2-item")
SUFFIXES = {
    "process": "needs a process edge: the same worker ran one transaction after the other (Elle)",
    "realtime": "needs a realtime edge: one transaction completed before the other began (Elle)",
}
for _suffix, _why in SUFFIXES.items():
    ANOMALIES += tuple(
        AnomalyKind(f"{b}-{_suffix}", "cycle",
                    f"like {b}, but the cycle {_why}") for b in BASE_CYCLES
    )
BY_NAME = {a.name: a for a in ANOMALIES}

# What a count counts (check.py adds one per finding, a lost-update group of n
# adds n - 1; cycles.py adds one per strongly connected group of transactions
# that holds such a cycle): (singular, plural).
UNITS = {
    "duplicate-versions": ("duplicated version", "duplicated versions"),
    "cyclic-versions": ("key", "keys"),
    "incompatible-order": ("pair of reads", "pairs of reads"),
    "missing-versions": ("missing version", "missing versions"),
    "garbage-read": ("read", "reads"),
    "G1a": ("read", "reads"),
    "G1b": ("read", "reads"),
    "internal": ("read", "reads"),
    "lost update": ("overwritten update", "overwritten updates"),
    "duplicate-elements": ("read", "reads"),
    "future-read": ("read", "reads"),
    "dirty-update": ("append after a failed one", "appends after failed ones"),
}
CYCLE_UNIT = ("group with a cycle", "groups with a cycle")
OTHER_UNIT = ("finding", "findings")


def count_unit(kind: str, count: int = 2) -> str:
    """The unit of an anomaly's count, singular when count is 1: "overwritten updates"."""
    spec = BY_NAME.get(kind)
    one, many = UNITS.get(kind) or (CYCLE_UNIT if spec is None or spec.family == "cycle"
                                    else OTHER_UNIT)
    return one if count == 1 else many
ORDER = {a.name: i for i, a in enumerate(ANOMALIES)}

_CHAINS = {"duplicate-versions", "cyclic-versions", "duplicate-elements", "missing-versions"}
_EVERYWHERE = _CHAINS | {"garbage-read"}
# Elle: incompatible-order and dirty-update imply an aborted read, future-read a G1c.
_RC = _EVERYWHERE | {"G0", "G1a", "G1b", "G1c", "incompatible-order", "dirty-update",
                     "future-read"}
_SI = _RC | {"internal", "lost update", "G-single", "G-nonadjacent"}
_SER = _SI | {"G2-item"}
_STRICT = _SER | {f"{b}-{s}" for b in BASE_CYCLES for s in SUFFIXES}


class Model(NamedTuple):
    name: str
    summary: str
    forbids: frozenset


def _also(kinds: set, *suffixes: str) -> set:
    """Each kind and its variants with these suffixes: G0 -> G0, G0-process ..."""
    return set(kinds) | {f"{k}-{s}" for k in kinds for s in suffixes}


# Elle's strong models ask that the order also respect each session (strong-session:
# process edges) or real time (strong: realtime edges; a process's order is real-time
# order too). As in Elle (elle.consistency-model), each forbids its base model's cycles
# through those edges: PL-1 G0, PL-2 G1 (G0, G1c), SI G-nonadjacent (and G-single, which
# implies it), serializable G2 (every rw cycle).
_PL1_CYCLES = {"G0"}
_PL2_CYCLES = _PL1_CYCLES | {"G1c"}
_SI_CYCLES = _PL2_CYCLES | {"G-single", "G-nonadjacent"}

# Weakest first. A broken version chain or a garbage read is forbidden everywhere:
# the database or the harness lost track of what it wrote.
MODELS: dict[str, Model] = {m.name: m for m in (
    Model("read-uncommitted", "Adya PL-1: no write cycles", frozenset(_EVERYWHERE | {"G0"})),
    Model("strong-session-read-uncommitted", "read-uncommitted, and no write cycle through "
          "a session's own order (Elle)", frozenset(_EVERYWHERE | _also(_PL1_CYCLES, "process"))),
    Model("strong-read-uncommitted", "read-uncommitted, and no write cycle through real "
          "time (Elle)", frozenset(_EVERYWHERE | _also(_PL1_CYCLES, "process", "realtime"))),
    Model("read-committed", "Adya PL-2: no dirty reads or writes", frozenset(_RC)),
    Model("strong-session-read-committed", "read-committed, and no G0/G1c cycle through a "
          "session's own order (Elle)", frozenset(_RC | _also(_PL2_CYCLES, "process"))),
    Model("strong-read-committed", "read-committed, and no G0/G1c cycle through real time "
          "(Elle)", frozenset(_RC | _also(_PL2_CYCLES, "process", "realtime"))),
    Model("snapshot-isolation", "Adya PL-SI / Elle: read a snapshot, first committer wins",
          frozenset(_SI)),
    Model("strong-session-snapshot-isolation", "snapshot isolation, and each session reads "
          "its own earlier writes (Elle)", frozenset(_SI | _also(_SI_CYCLES, "process"))),
    Model("strong-snapshot-isolation", "snapshot isolation, and every snapshot includes "
          "what completed before (Elle)", frozenset(_SI | _also(_SI_CYCLES, "process",
                                                                   "realtime"))),
    Model("serializable", "Adya PL-3: equivalent to some serial order", frozenset(_SER)),
    Model("strong-session-serializable", "serializable, and the order respects each "
          "session's own order (Elle)", frozenset(_SER | _also(set(BASE_CYCLES), "process"))),
    Model("strict-serializable", "serializable, and the order respects real time and sessions",
          frozenset(_STRICT)),
)}

# What each PostgreSQL level actually provides (READ UNCOMMITTED behaves as
# READ COMMITTED; REPEATABLE READ is snapshot isolation, so write skew is allowed).
POSTGRES_LEVELS = {
    "read-uncommitted": "read-committed",
    "read-committed": "read-committed",
    "repeatable-read": "snapshot-isolation",
    "serializable": "serializable",
}
# Other names of the models (Elle's too); a level's spelling (txlab.levels: rc,
# serialisable, READ_COMMITTED ...) names the model of the same name, and si or
# snapshot names snapshot-isolation, as they name REPEATABLE READ for -i.
_ALIASES = {"strong-serializable": "strict-serializable", "pl-1": "read-uncommitted",
            "pl-2": "read-committed", "pl-si": "snapshot-isolation", "pl-3": "serializable",
            "conflict-serializable": "serializable", "pl-ss": "strict-serializable",
            "strong-session-pl-1": "strong-session-read-uncommitted",
            "strong-session-pl-2": "strong-session-read-committed",
            "strong-pl-1": "strong-read-uncommitted", "strong-pl-2": "strong-read-committed",
            "strong-session-si": "strong-session-snapshot-isolation",
            "strong-si": "strong-snapshot-isolation", "si": "snapshot-isolation",
            "snapshot": "snapshot-isolation"}


def model_for_isolation(level: str) -> str:
    """`READ COMMITTED`, `read_committed`, `rc` ... -> the model PostgreSQL provides there."""
    key = levels.level_key(level)
    if key is None:
        raise ValueError(f"unknown isolation level {level!r}; choose one of: "
                         f"{', '.join(POSTGRES_LEVELS)} ({levels.SPELLINGS})")
    return POSTGRES_LEVELS[key]


def level_sql(level: str) -> str:
    """`rc`, `read_committed`, `READ COMMITTED` ... -> `READ COMMITTED` (as given if unknown)."""
    key = levels.level_key(level)
    return key.replace("-", " ").upper() if key else level


def resolve_model(name: str) -> str:
    """A model's name, or an alias (Elle's spelling too, `:strong-serializable`), in the
    spellings -i takes (`serialisable`, `READ_COMMITTED`, `rc`)."""
    text = name.strip().lstrip(":")
    names = {levels.squash(m): m for m in MODELS}
    names |= {levels.squash(a): m for a, m in _ALIASES.items()}
    level = levels.level_key(text)
    if levels.squash(text) in names:
        return names[levels.squash(text)]
    if level in MODELS:  # rc, ser, s: the level's model has its name
        return level
    if level == "repeatable-read":
        raise ValueError(f"{name!r} is an isolation level, not a model: `-i {level}` judges the "
                         "history by the model PostgreSQL gives it (snapshot-isolation); "
                         "or give -m snapshot-isolation")
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)} (any case; "
                     "words joined by -, _, a space or nothing; serialisable)")


def edges_needed(model: str) -> tuple[bool, bool]:
    """(process, realtime): the edges a model's forbidden -process / -realtime kinds need."""
    forbids = MODELS[model].forbids
    return (any(k.endswith("-process") for k in forbids),
            any(k.endswith("-realtime") for k in forbids))


def status(anomaly: str, model: str) -> str:
    return "forbidden" if anomaly in MODELS[model].forbids else "allowed"


def ruled_out(found: set[str]) -> list[str]:
    """The models that forbid at least one anomaly found."""
    return [m.name for m in MODELS.values() if m.forbids & found]


def ruled_out_text(names: list[str]) -> str:
    """ruled_out's list for people: its weakest models, since every model stronger than
    a ruled-out one (forbidding all it forbids) is ruled out too."""
    sets = {n: MODELS[n].forbids for n in names if n in MODELS}
    weakest = [n for n in names if not any(o != n and sets.get(o, ()) < sets.get(n, ())
                                           for o in sets)]
    rest = len(names) - len(weakest)
    return ", ".join(weakest) + (f", and {rest} stronger model{'s' if rest > 1 else ''}"
                                 if rest else "")
