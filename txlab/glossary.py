"""`txlab explain TERM`: every term a txlab report prints, as data.

An entry says what the term is, why it happens, what to do about it, and the
commands that show it. SQLSTATEs, anomaly classes, isolation levels, models and
report jargon are written here; strategies are read from the scenarios
themselves (their help text and the levels they declare safe), so they never
drift from the code. `entries()` builds the list when asked (nothing at import
time); `lookup(term)` finds one entry or raises UsageError with the closest
matches. The renderers (text, JSON) are in `txlab.glossary_view`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from difflib import get_close_matches

from txlab.errors import UsageError

KINDS = ("SQLSTATE", "anomaly", "isolation level", "model", "strategy", "report term")


@dataclass(frozen=True)
class Entry:
    term: str  # as reports print it: "40001", "lost update", "READ COMMITTED", "naive"
    kind: str  # one of KINDS
    title: str  # one line
    what: str  # what it is
    why: str = ""  # why it happens
    fix: str = ""  # what to do about it
    show: tuple[str, ...] = ()  # commands that show it
    aliases: tuple[str, ...] = ()
    see: tuple[str, ...] = ()  # related terms
    uses: tuple[str, ...] = field(default=(), compare=False)  # strategies: per scenario

    def to_dict(self) -> dict:
        return {"term": self.term, "kind": self.kind, "title": self.title, "what": self.what,
                "why": self.why, "fix": self.fix, "show": list(self.show),
                "aliases": list(self.aliases), "see": list(self.see), "uses": list(self.uses)}


def _e(term, kind, title, what, why="", fix="", show=(), aliases=(), see=()):
    return Entry(term, kind, title, " ".join(what.split()), " ".join(why.split()),
                 " ".join(fix.split()), tuple(show), tuple(aliases), tuple(see))


RETRY_FIX = ("Retry the whole transaction from its BEGIN (`--retries N` in txlab; in an "
             "application, a loop around the transaction that catches SQLSTATE 40001 and "
             "40P01). The error is the database keeping its promise, not a bug.")

# ---------------------------------------------------------------- SQLSTATEs and abort causes

SQLSTATES = (
    _e("40001", "SQLSTATE", "serialization failure (two kinds)",
       """PostgreSQL aborted the transaction because letting it finish could break the
       isolation level's promise. txlab reports the two kinds apart, by message:
       40001-concurrent-update ("could not serialize access due to concurrent update")
       at REPEATABLE READ and SERIALIZABLE when the transaction writes or locks a row
       that another transaction changed and committed after this one's snapshot; and
       40001-rw-dependencies ("... due to read/write dependencies among transactions")
       at SERIALIZABLE only, when serializable snapshot isolation (SSI) sees a
       dangerous pattern of reads and writes that could form a cycle.""",
       """The level refuses to let two transactions act on data the other changed
       unseen: the first updater wins, and at SERIALIZABLE, the transaction that would
       close a read/write cycle is aborted. Under contention (few rows, many workers,
       think time) most attempts can end this way.""",
       RETRY_FIX + " Fewer conflicts: shorter transactions, smaller hot sets, or "
       "statements that do the arithmetic in SQL (`-s atomic`).",
       ("txlab demo p4 -i repeatable-read", "txlab demo g2-item -i serializable",
        "txlab run bank-transfer -i serializable --retries 10"),
       ("serialization failure", "serialization_failure"),
       ("40001-concurrent-update", "40001-rw-dependencies", "retries", "SERIALIZABLE")),
    _e("40001-concurrent-update", "SQLSTATE",
       "serialization failure: concurrent update (first updater wins)",
       """SQLSTATE 40001 with "could not serialize access due to concurrent update" (or
       "concurrent delete"). At REPEATABLE READ and SERIALIZABLE a transaction
       updated, deleted or locked (FOR UPDATE) a row that another transaction changed
       and committed after this transaction's snapshot was taken.""",
       """Snapshot isolation's first-updater-wins rule: the transaction read an old
       version, so writing on top of the new one would lose the other's update (P4). It
       waits while the other transaction is open, then aborts if that one commits.
       READ COMMITTED instead re-reads the new row and carries on.""",
       RETRY_FIX,
       ("txlab demo p4 -i repeatable-read",
        "txlab run bank-transfer -i repeatable-read --retries 10"),
       ("40001-cu", "concurrent update", "first updater wins", "first-updater-wins"),
       ("40001", "lost update", "REPEATABLE READ")),
    _e("40001-rw-dependencies", "SQLSTATE",
       "serialization failure: read/write dependencies (SSI)",
       """SQLSTATE 40001 with "could not serialize access due to read/write dependencies
       among transactions". Only at SERIALIZABLE: serializable snapshot isolation
       tracks which transaction read what another wrote (rw antidependencies) and
       aborts one when two consecutive rw edges meet in a transaction that could close
       a cycle. It can fire on a SELECT, a write, or COMMIT.""",
       """Two transactions each read something the other then changed (write skew, G2),
       so no serial order explains both results. SSI is conservative: it may also abort
       when no real cycle exists (a false positive), e.g. after a sequential scan of a
       small table locked the whole relation.""",
       RETRY_FIX + " False positives drop with indexes on the columns you filter by.",
       ("txlab demo g2-item -i serializable", "txlab demo ssi-false-positive",
        "txlab run on-call -i serializable --retries 10"),
       ("40001-rw", "rw dependencies", "read/write dependencies", "ssi abort"),
       ("40001", "G2-item", "SERIALIZABLE", "rw edge")),
    _e("40P01", "SQLSTATE", "deadlock detected",
       """Two or more transactions each wait for a lock the other holds. After
       deadlock_timeout (1 s by default) PostgreSQL checks for a cycle of waits, picks
       a victim and aborts it with 40P01; the others go on.""",
       """Rows (or tables) locked in different orders by different transactions: T1
       locks A then wants B while T2 locks B then wants A. Happens at every isolation
       level; it is about locks, not snapshots.""",
       """Lock in one global order (e.g. by primary key: `-s for-update`, or
       `--param lock_order=sorted`), keep transactions short, and retry on 40P01 (it is
       retryable: `--retries N`).""",
       ("txlab demo deadlock",
        "txlab run limited-stock-cart -s for-update-unsorted --retries 5",
        "txlab run bank-transfer -s for-update -p lock_order=as-drawn"),
       ("deadlock", "deadlock_detected", "deadlock detected"),
       ("retries", "55P03")),
    _e("55P03", "SQLSTATE", "lock not available (NOWAIT or lock_timeout)",
       """A statement asked for a row or table lock that another transaction holds, and
       would not (FOR UPDATE NOWAIT) or could no longer (lock_timeout) wait for it.""",
       """Another transaction holds the lock for longer than you allowed: a slow or idle
       transaction, or heavy contention on a few rows.""",
       """Decide what waiting should mean: wait (no NOWAIT, a longer
       `--lock-timeout-ms`), skip the locked rows (SKIP LOCKED for queues), or fail fast
       and retry later. Keep transactions that hold locks short.""",
       ("txlab demo nowait", "txlab demo lock-timeout", "txlab demo skip-locked"),
       ("lock not available", "lock_not_available", "lock timeout", "nowait",
        "lock_timeout"),
       ("40P01", "57014")),
    _e("57014", "SQLSTATE", "query canceled (statement timeout)",
       """The statement ran longer than statement_timeout (txlab's
       `--statement-timeout-ms`, 30 s by default) or was canceled, and the transaction
       was aborted.""",
       """Usually a statement waiting a long time for a lock, or a slow query. txlab's
       demos also cancel a step that exceeds `--step-timeout-s` so they never hang.""",
       """Find what it waited for (pg_stat_activity, pg_blocking_pids); shorten the
       transactions that hold the locks; raise the timeout only if the work is really
       that slow.""",
       ("txlab run bank-transfer -s for-update --think-ms 50 --statement-timeout-ms 20",),
       ("statement timeout", "query_canceled", "statement_timeout", "canceled"),
       ("55P03",)),
    _e("25P02", "SQLSTATE", "in failed SQL transaction",
       """A statement was sent after an earlier statement of the same transaction failed:
       "current transaction is aborted, commands ignored until end of transaction
       block". Even COMMIT does not commit then: the server answers ROLLBACK.""",
       """An error inside a transaction aborts the whole transaction; everything after
       it is refused until ROLLBACK.""",
       """Handle the first error: roll back (or roll back to a SAVEPOINT) and retry or
       report it. Never assume COMMIT succeeded: check its outcome.""",
       ("txlab acid atomicity",),
       ("in failed transaction", "in_failed_sql_transaction", "current transaction is aborted"),
       ("atomicity",)),
    _e("23505", "SQLSTATE", "unique violation",
       """An INSERT or UPDATE would give two rows the same value of a UNIQUE column or
       primary key, so the statement and its transaction fail.""",
       """Two transactions checked that a value was free and both inserted it (a
       phantom: the check could not see the other's uncommitted row). The constraint is
       the last line of defence and catches it at every isolation level.""",
       """Keep the UNIQUE constraint; treat 23505 as "taken" (tell the user, or retry
       with another value), or use INSERT ... ON CONFLICT.""",
       ("txlab run ticket-sales -s unique-seat", "txlab acid consistency"),
       ("unique violation", "unique_violation", "duplicate key", "UNIQUE"),
       ("phantom", "23P01")),
    _e("23P01", "SQLSTATE", "exclusion violation",
       """An INSERT or UPDATE conflicts with an existing row under an EXCLUDE constraint,
       e.g. two bookings of one room whose time ranges overlap.""",
       """Two transactions checked that a range was free and both booked it (a phantom
       or predicate write skew); the exclusion constraint refuses the second at every
       isolation level.""",
       """Declare the rule as an exclusion constraint (btree_gist, `EXCLUDE USING gist
       (room WITH =, during WITH &&)`) and treat 23P01 as "no longer free".""",
       ("txlab run room-booking -s exclusion",),
       ("exclusion violation", "exclusion_violation"),
       ("phantom", "23505")),
    _e("23514", "SQLSTATE", "check violation",
       """A row would break a CHECK constraint (e.g. balance >= 0), so the statement and
       its transaction fail.""",
       """The transaction's result is invalid by a rule the schema declares; concurrent
       transactions that each checked in the application can still reach it.""",
       """Declare the rule as a CHECK; treat 23514 as a refused business operation.""",
       ("txlab acid consistency", "txlab run ticket-sales -s counter"),
       ("check violation", "check_violation", "CHECK", "check constraint"), ("23505",)),
    _e("23503", "SQLSTATE", "foreign key violation",
       """A row references a row that does not exist (or a referenced row is deleted
       while still referenced).""",
       """A reference to something missing, or deleted concurrently.""",
       """Keep the FOREIGN KEY; create the referenced row first, in the same
       transaction.""",
       ("txlab acid consistency",), ("foreign key violation", "foreign_key_violation",
                                     "FOREIGN KEY")),
    _e("23502", "SQLSTATE", "not-null violation",
       """A NOT NULL column would get NULL.""",
       """The statement left out a required value.""", """Supply the value, or a DEFAULT.""",
       ("txlab acid consistency",), ("not-null violation", "not_null_violation")),
    _e("version-conflict", "SQLSTATE", "optimistic version conflict (txlab's own cause)",
       """Not a PostgreSQL error: an optimistic strategy wrote `... WHERE version = the
       version it read`, and no row matched, because another transaction changed the
       row in between. txlab rolls back and counts it as a retryable abort.""",
       """Optimistic concurrency control detects the conflict at write time instead of
       locking at read time.""",
       """Retry (`--retries N`); optimistic locking pays off when conflicts are rare.""",
       ("txlab run bank-transfer -s optimistic -p accounts=3 --retries 5",
        "txlab run limited-stock-cart -s orm-optimistic --retries 5"),
       ("version conflict", "staledataerror", "optimistic locking"),
       ("retries", "optimistic")),
    _e("connection-lost", "SQLSTATE", "connection lost (txlab's own cause)",
       """The server did not answer: the connection broke (server crash, restart,
       network). If it broke during COMMIT the outcome is unknown: the transaction
       may or may not have committed.""",
       """The server or the network went away.""",
       """Check the server; in applications, make transactions idempotent so that an
       unknown outcome can be resolved by reading back.""",
       ("txlab acid durability",), ("connection lost", "unknown outcome"), ("unknown",)),
    _e("interrupted", "SQLSTATE", "rolled back at interrupt (txlab's own cause)",
       """The run was stopped (Ctrl-C or a signal) while the transaction was in flight;
       txlab rolled it back and printed the partial report.""",
       fix="Nothing to fix; run again without interrupting for a full report.",
       aliases=("rolled back at interrupt",)),
)

# ---------------------------------------------------------------- anomaly classes

_SEE_CHECK = "txlab check HISTORY (a file from `txlab run --history`)"

ANOMALIES = (
    _e("G0", "anomaly", "dirty write (write cycle)",
       """A cycle of write-write (ww) dependencies: T1 overwrote T2's write and T2
       overwrote T1's, so the final state mixes both (Adya G0).""",
       """Possible only if a transaction may overwrite uncommitted data; PostgreSQL never
       allows it (a second writer waits for the row lock).""",
       """Nothing at any PostgreSQL level: if txlab reports it, the database or the
       harness is broken (it is forbidden everywhere).""",
       ("txlab demo g0 -i all",), ("dirty write", "write cycle", "P0"), ("ww edge",)),
    _e("G1a", "anomaly", "aborted read",
       """A committed transaction read a value written by a transaction that later
       aborted (Adya G1a; a form of dirty read).""",
       """Would need reads of uncommitted data; PostgreSQL never shows it, not even at
       READ UNCOMMITTED.""",
       """Nothing: forbidden at every PostgreSQL level; a report of it means a bug.""",
       ("txlab demo g1a -i all",), ("aborted read", "dirty read", "P1"), ("G1b",)),
    _e("G1b", "anomaly", "intermediate read",
       """A committed transaction read a value that its writer later overwrote within
       the same transaction: a state that never existed after any commit (Adya G1b).""",
       """Would need reads of uncommitted data; PostgreSQL never shows it.""",
       """Nothing: forbidden at every PostgreSQL level.""",
       ("txlab demo g1b -i all",), ("intermediate read",), ("G1a",)),
    _e("G1c", "anomaly", "circular information flow",
       """A cycle of ww and wr (write-read) dependencies with at least one wr edge: each
       transaction saw the other's effects (Adya G1c).""",
       """Would need each transaction to see the other's writes; forbidden by READ
       COMMITTED.""",
       """Nothing at PostgreSQL levels: a report of it means a bug.""",
       ("txlab demo g1c -i all",), ("circular information flow",), ("wr edge",)),
    _e("lost update", "anomaly", "lost update (P4)",
       """Two committed transactions read the same version of a row and both wrote it:
       the second write overwrote the first without seeing it, so the first update is
       lost (Adya P4). txlab counts the overwritten updates: in a group of k
       transactions that all read one version and wrote it, k - 1 updates were lost.
       A transaction that read an older version and overwrote later ones it never
       saw is not in this count (its cycle is a G-single): how much was lost in all
       is what the invariants measure (money conserved, stock).""",
       """Read-modify-write in the application (SELECT, compute in Python, UPDATE with
       the computed value) at READ COMMITTED: nothing stops the second writer from
       writing a value computed from the old version.""",
       """Do the arithmetic in SQL (`SET balance = balance - 10`, `-s atomic`), lock the
       rows first (`SELECT ... FOR UPDATE`, `-s for-update`), check a version column
       (`-s optimistic`), or run at REPEATABLE READ or SERIALIZABLE and retry 40001.""",
       ("txlab demo p4 -i all", "txlab run bank-transfer -s naive -i read-committed"),
       ("P4", "lost-update", "lost updates", "overwritten updates"),
       ("40001-concurrent-update", "G-single")),
    _e("G-single", "anomaly", "read skew (single anti-dependency cycle)",
       """A cycle with exactly one rw (read-write anti-dependency) edge: a transaction
       saw part of another's effects but not the rest, e.g. one account before a
       transfer and the other after it (Adya G-single). A lost update is one case;
       reading one row twice and getting two values (a non-repeatable read, ANSI P2)
       is the simplest. PostgreSQL shows them only at READ COMMITTED.""",
       """At READ COMMITTED each statement takes a fresh snapshot, so two reads in one
       transaction can straddle another transaction's commit.""",
       """Read everything from one snapshot: REPEATABLE READ or SERIALIZABLE, or read the
       rows in one statement, or lock them first.""",
       ("txlab demo g-single -i all", "txlab run bank-transfer -s naive"),
       ("read skew", "g single", "gsingle", "non-repeatable read", "nonrepeatable read",
        "non-repeatable reads", "fuzzy read", "P2"), ("rw edge", "lost update")),
    _e("G-nonadjacent", "anomaly", "a cycle with non-adjacent rw edges",
       """A dependency cycle with two or more rw (anti-dependency) edges, no two of them
       next to each other (Elle's G-nonadjacent). Snapshot isolation forbids it; READ
       COMMITTED allows it.""",
       """Like read skew, several transactions each saw the others only partly; typical
       at READ COMMITTED with many concurrent read-modify-write transactions.""",
       """REPEATABLE READ or SERIALIZABLE (both forbid it), or the fixes for lost
       updates and read skew.""",
       ("txlab run bank-transfer -s naive -i read-committed",),
       ("g nonadjacent", "nonadjacent"), ("G-single", "G2-item", "rw edge")),
    _e("G2-item", "anomaly", "write skew (item anti-dependency cycle)",
       """A cycle with two or more adjacent rw (anti-dependency) edges over rows: each
       transaction read rows the other then changed, and both committed (Adya
       G2-item). Classic case: two doctors each see the other on call and both go
       off call.""",
       """Snapshot isolation (PostgreSQL's REPEATABLE READ) only stops two writers of
       the same row; transactions that read the same rows but write different ones both
       commit.""",
       """SERIALIZABLE (retry 40001), or lock what you read (`SELECT ... FOR UPDATE`,
       `-s lock-doctors`), or materialise the conflict into one row both must write
       (`-s materialize`).""",
       ("txlab demo g2-item -i all", "txlab run on-call -s naive -i repeatable-read"),
       ("write skew", "write-skew", "g2 item", "serialization anomaly",
        "serialization anomalies"), ("G2", "40001-rw-dependencies", "read-only anomaly")),
    _e("G2", "anomaly", "anti-dependency cycle over a predicate (phantom write skew)",
       """Like G2-item, but at least one rw edge comes from a predicate read (a WHERE
       or a count) that a concurrent insert would have changed (Adya G2). txlab's
       history checker cannot see rows a predicate did not return, so runs report the
       broken invariant without this class; the demos show it.""",
       """Two transactions count or search, find room, and both insert: neither saw the
       other's new row.""",
       """SERIALIZABLE (its predicate locks see it), a constraint (UNIQUE, EXCLUDE), or a
       row both must lock or update first (`-s counter`, `-s lock-room`).""",
       ("txlab demo g2 -i all", "txlab run ticket-sales -s naive",
        "txlab run room-booking -s naive"),
       ("predicate write skew", "phantom write skew"), ("phantom", "G2-item")),
    _e("phantom", "anomaly", "phantom read (P3)",
       """A row that a transaction's search (WHERE ...) would match appears or disappears
       because of another transaction that committed after the search ran: the same
       search, run again in the same transaction, returns a different set of rows
       (ANSI P3, Adya's predicate-many-preceders). In PostgreSQL only READ COMMITTED
       shows it: REPEATABLE READ and SERIALIZABLE read every statement from one
       snapshot, so the search comes back the same. The harder case is a decision
       taken on the search ("is the room free?") while another transaction inserts
       the row that would have changed it: that is write skew over a predicate (G2),
       which REPEATABLE READ allows too.""",
       """At READ COMMITTED each statement takes a fresh snapshot; and a read cannot
       lock rows that do not exist yet.""",
       """REPEATABLE READ or SERIALIZABLE for phantom reads. For decisions on a search
       (G2): SERIALIZABLE (its predicate locks see it), a constraint that covers the
       rule (UNIQUE, EXCLUDE), or locking a parent row that every writer must lock.""",
       ("txlab demo pmp -i all", "txlab demo g2 -i all", "txlab run room-booking -s naive"),
       ("phantoms", "phantom read", "phantom reads", "P3", "PMP", "predicate-many-preceders"),
       ("G2",)),
    _e("read-only anomaly", "anomaly", "read-only transaction anomaly (Fekete et al.)",
       """Two writing transactions that are serializable on their own become
       unserializable because a third, read-only, transaction saw a state between them
       that no serial order produces: a report shows a deposit, yet a later charge
       was computed as if the deposit had not happened (Fekete, O'Neil and O'Neil; a
       G2 cycle through the reader).""",
       """Snapshot isolation (PostgreSQL's REPEATABLE READ) lets the reader take its
       snapshot between the writers' commits; READ COMMITTED too.""",
       """SERIALIZABLE: one of the transactions gets 40001 (retry it); or run the report
       as SERIALIZABLE READ ONLY DEFERRABLE, which waits for a snapshot that is safe.""",
       ("txlab demo read-only-anomaly -i all", "txlab demo g2-three -i all"),
       ("read only anomaly", "read-only-anomaly", "read-only transaction anomaly"),
       ("G2-item", "G2", "40001-rw-dependencies")),
    _e("OTV", "anomaly", "observed transaction vanishes",
       """A transaction sees some of another transaction's writes and later, after a
       third committed, no longer sees them (Hermitage's OTV).""",
       """Would need reads of writes that are not final; PostgreSQL forbids it at every
       level: the second writer waits for the first one's row lock (and at REPEATABLE
       READ and SERIALIZABLE then aborts with 40001), so no reader sees a write that
       later vanishes.""",
       """Nothing: forbidden at every PostgreSQL level; a report of it means a bug.""",
       ("txlab demo otv -i all",), ("observed transaction vanishes",)),
    _e("internal", "anomaly", "internal inconsistency",
       """A transaction's read disagrees with its own earlier write (or read) of the same
       row (Elle's internal).""",
       """A transaction should always see its own writes, and at snapshot levels read
       the same value twice.""",
       """At REPEATABLE READ or above it is forbidden: report it as a bug. At READ
       COMMITTED a second read may see a newer commit.""",
       (_SEE_CHECK,)),
    _e("garbage-read", "anomaly", "garbage read",
       """A committed transaction read a value that no transaction ever wrote (Elle).""",
       """The database (or the code that records the history) returned or recorded
       something invented.""",
       """Forbidden everywhere: a bug to report, in the database or in the scenario's
       tx.read()/tx.write() calls.""",
       (_SEE_CHECK,)),
    _e("duplicate-versions", "anomaly", "duplicate versions",
       """Two committed writes installed the same version of one row (Elle: duplicate
       writes).""",
       """A version column not incremented by each write, or two writers that both
       succeeded on one version: a broken version chain.""",
       """Forbidden everywhere: check the scenario's version column (`version =
       version + 1` in every UPDATE).""",
       (_SEE_CHECK,)),
    _e("cyclic-versions", "anomaly", "cyclic version order",
       """The order of a row's versions contains a cycle (Elle).""",
       """The recorded versions contradict each other.""",
       """Forbidden everywhere: a bug in the database or in how versions are
       recorded.""",
       (_SEE_CHECK,)),
    _e("incompatible-order", "anomaly", "incompatible order",
       """Two reads of a list are not prefixes of one another (Elle, list-append
       histories).""",
       """The list was read in two orders that no single history of appends explains.""",
       """Forbidden from READ COMMITTED up (Elle counts it as an aborted read): a bug.""",
       (_SEE_CHECK,)),
    _e("duplicate-elements", "anomaly", "duplicate elements",
       """A read of a list shows one appended element twice (Elle, list-append
       histories).""",
       """Each value is appended once, so the database repeated or reordered an
       append.""",
       """Forbidden everywhere: a bug in the database or in how reads are recorded.""",
       (_SEE_CHECK,)),
    _e("dirty-update", "anomaly", "dirty update",
       """In a list's order, a committed append follows a failed one (Elle, list-append
       histories).""",
       """A transaction built on a write that was rolled back: an aborted read, made
       with a write.""",
       """Forbidden from READ COMMITTED up: report it as a bug.""",
       (_SEE_CHECK,)),
    _e("future-read", "anomaly", "future read",
       """A transaction read a value that it writes itself only later (Elle).""",
       """Values are written once, so the read saw a write from its own future: a
       trivial cycle of circular information flow (G1c).""",
       """Forbidden from READ COMMITTED up: a bug in the database or in how the history
       was recorded.""",
       (_SEE_CHECK,)),
    _e("missing-versions", "anomaly", "missing versions",
       """A version was read or skipped that no transaction installed: a gap in a row's
       version chain.""",
       """Writes happened that the history did not record, e.g. outside txlab.""",
       """Forbidden everywhere: record every write (tx.write) or keep other clients
       off the schema.""",
       (_SEE_CHECK,)),
)

_VARIANT_WHY = {
    "process": ("the cycle needs a process edge: one worker ran the transactions one after "
                "the other, so the order of its own transactions is part of the cycle"),
    "realtime": ("the cycle needs a realtime edge: one transaction finished before the "
                 "other began, so real time is part of the cycle"),
}


def _variants() -> tuple[Entry, ...]:
    from txlab.checker import models

    base = {e.term: e for e in ANOMALIES}
    out = []
    for a in models.ANOMALIES:
        name, _, suffix = a.name.rpartition("-")
        if suffix in _VARIANT_WHY and name in base:
            b = base[name]
            out.append(_e(
                a.name, "anomaly", f"{b.title}, counting {suffix} order",
                f"Like {name} ({b.title}), but {_VARIANT_WHY[suffix]} (Elle). Only looked "
                "for with the strict-serializable model (`txlab check -m strict-serializable`), "
                f"Elle's strong{'-session' if suffix == 'process' else ''} models, or "
                f"`--{suffix}`.",
                "Strict serializability also demands that the serial order respect real time "
                "and each session's own order; plain serializability does not.",
                b.fix, (f"{_SEE_CHECK} -m strict-serializable",), (), (name, "strict-serializable")))
    return tuple(out)


# ---------------------------------------------------------------- isolation levels and models

LEVELS = (
    _e("READ UNCOMMITTED", "isolation level", "READ UNCOMMITTED (runs as READ COMMITTED)",
       """The weakest SQL level. PostgreSQL runs it exactly as READ COMMITTED: it never
       shows uncommitted data.""",
       why="""The SQL standard allows dirty reads here; PostgreSQL's multiversion design
       never needs them, so it gives READ COMMITTED instead, with all of READ
       COMMITTED's anomalies (lost update, read skew, write skew).""",
       fix="Use READ COMMITTED and say so; the name promises nothing extra here.",
       show=("txlab run bank-transfer -i read-uncommitted",),
       aliases=("read-uncommitted", "read uncommitted", "ru"), see=("READ COMMITTED",)),
    _e("READ COMMITTED", "isolation level", "READ COMMITTED (PostgreSQL's default)",
       """Each statement sees the data committed before it began: a fresh snapshot per
       statement. No dirty reads or writes (Adya PL-2); a blocked UPDATE re-checks the
       newest row version and carries on.""",
       """Allows lost updates (P4), read skew (G-single), write skew (G2-item) and
       phantoms: anything that reads, decides in the application, then writes.""",
       """Fine for single statements that do their own arithmetic; for read-decide-write
       transactions, lock (`FOR UPDATE`), use constraints, or a stronger level.""",
       ("txlab run bank-transfer -i read-committed", "txlab demo p4 -i read-committed",
        "txlab matrix bank-transfer"),
       ("read-committed", "read committed", "rc"), ("lost update", "G-single")),
    _e("REPEATABLE READ", "isolation level", "REPEATABLE READ (snapshot isolation)",
       """The whole transaction reads one snapshot, taken at its first statement. Two
       transactions may not both update one row: the second gets 40001 (first updater
       wins). In PostgreSQL this is snapshot isolation.""",
       """Stops lost updates and read skew; still allows write skew (G2-item) and
       predicate write skew (G2), because transactions that write different rows never
       conflict.""",
       """Retry 40001 (`--retries N`). For rules spanning several rows, use
       SERIALIZABLE, locks, or a materialised conflict.""",
       ("txlab run bank-transfer -i repeatable-read --retries 10",
        "txlab demo g2-item -i repeatable-read"),
       ("repeatable-read", "repeatable read", "rr", "snapshot"),
       ("snapshot-isolation", "40001-concurrent-update", "G2-item")),
    _e("SERIALIZABLE", "isolation level", "SERIALIZABLE (serializable snapshot isolation)",
       """Every committed result equals some one-at-a-time order of the transactions.
       PostgreSQL builds it on REPEATABLE READ's snapshots and tracks read/write
       dependencies (SSI), aborting a transaction with 40001 when a cycle could form.""",
       """Forbids every anomaly the checker names, including write skew and phantoms.
       The price: more 40001 aborts under contention (and occasional false
       positives).""",
       """Always retry 40001 (`--retries N`); keep transactions short; index the columns
       you filter by to avoid false positives.""",
       ("txlab run bank-transfer -i serializable --retries 10",
        "txlab demo g2-item -i serializable"),
       ("serializable", "ser", "ssi", "serialisable"),
       ("40001-rw-dependencies", "serializable (model)")),
)

MODELS = (
    _e("read-committed (model)", "model", "the read-committed model (Adya PL-2)",
       """What txlab's checker judges READ COMMITTED and READ UNCOMMITTED histories
       against: no dirty writes or reads (G0, G1a, G1b, G1c forbidden).""",
       show=("txlab check HISTORY -m read-committed",), aliases=("pl-2",),
       see=("model", "READ COMMITTED")),
    _e("snapshot-isolation", "model", "the snapshot-isolation model (PL-SI)",
       """What the checker judges REPEATABLE READ histories against: read committed, plus
       no lost updates, read skew or G-nonadjacent cycles; write skew is allowed.""",
       show=("txlab check HISTORY -m snapshot-isolation",), aliases=("si", "pl-si"),
       see=("model", "REPEATABLE READ")),
    _e("serializable (model)", "model", "the serializable model (Adya PL-3)",
       """What the checker judges SERIALIZABLE histories against: every cycle anomaly is
       forbidden, write skew (G2-item) included.""",
       show=("txlab check HISTORY -m serializable",), aliases=("pl-3",),
       see=("model", "SERIALIZABLE")),
    _e("strict-serializable", "model", "the strict-serializable model",
       """Serializable, and the serial order must respect real time and each worker's
       own order: finds the -process and -realtime cycle variants.""",
       show=("txlab check HISTORY -m strict-serializable",),
       aliases=("strict serializable", "linearizable", "strong-serializable"), see=("model",)),
    _e("strong-session models", "model", "Elle's strong-session and strong models",
       """Elle's models that add an order to a weaker one. strong-session-X (X =
       read-uncommitted, read-committed, snapshot-isolation, serializable): X, and the
       order respects each session's (worker's) own order, so the -process cycles of
       what X forbids are forbidden. strong-X (read-uncommitted, read-committed,
       snapshot-isolation): the same through real time, so the -realtime cycles too.
       The checker adds process (and realtime) edges for them.""",
       show=("txlab check HISTORY -m strong-session-snapshot-isolation",),
       aliases=("strong-session-snapshot-isolation", "strong-session-serializable",
                "strong-snapshot-isolation", "strong-session-read-committed",
                "strong-read-committed", "strong-session-read-uncommitted",
                "strong-read-uncommitted", "strong session"),
       see=("model", "strict-serializable")),
    _e("read-uncommitted (model)", "model", "the read-uncommitted model (Adya PL-1)",
       """The weakest model the checker knows: only write cycles (G0) and broken version
       chains are forbidden.""",
       show=("txlab check HISTORY -m read-uncommitted",), aliases=("pl-1",), see=("model",)),
)

# ---------------------------------------------------------------- the words reports print

JARGON = (
    _e("naive", "report term", "a strategy written the obvious way",
       """The strategy most people write first: read with plain SELECTs, decide in the
       application, write the result. Every scenario has one, to show what goes wrong
       at each level.""",
       """It is correct alone, but concurrent copies of it read the same state and act
       on it: lost updates, write skew, phantoms at the weaker levels.""",
       """Compare it with the scenario's other strategies (`txlab describe SCENARIO`) or
       run it at SERIALIZABLE with retries.""",
       ("txlab run bank-transfer -s naive -i read-committed",
        "txlab matrix bank-transfer -s naive")),
    _e("strategy", "report term", "a way of writing the transaction",
       """One implementation of the scenario's transaction (`-s NAME`); each declares the
       isolation levels at which it keeps every invariant (`txlab describe`).""",
       show=("txlab list", "txlab describe bank-transfer")),
    _e("invariant", "report term", "a rule the final state must satisfy",
       """A property checked on the final database state after the run, such as "total
       money conserved". HOLDS: it is true; VIOLATED: concurrent transactions broke
       it (exit code 1).""",
       fix="""Look at the anomalies the checker found and the strategy's fix: `txlab
       explain` on each anomaly class names one.""",
       show=("txlab describe bank-transfer",),
       aliases=("invariants", "holds", "violated", "verdict"), see=("anomaly",)),
    _e("anomaly", "report term", "a pattern of interference the checker names",
       """A shape in the history (who read or overwrote whose versions) that a serial
       execution could not produce, named after Adya or Elle: lost update, G-single,
       G2-item ... Each is "allowed" or "FORBIDDEN" at the run's isolation level. A
       report counts it in its own unit (overwritten updates, reads, groups with a
       cycle), or else in findings. In `txlab demo`, the verdict ANOMALY says the
       demo's witness held: the anomaly happened in this run.""",
       show=("txlab explain lost update", "txlab check HISTORY"),
       aliases=("anomalies", "finding", "findings"), see=("allowed", "model", "invariant")),
    _e("allowed", "report term", "allowed / FORBIDDEN at this level",
       """Whether the isolation level's model permits the anomaly. "allowed": expected
       at this level, a teaching result, not a bug. "FORBIDDEN": the level promises it
       cannot happen, so finding it means a database or harness bug (exit code 1).
       `txlab check -i LEVEL` judges a history by another level's model: then an
       anomaly is a bug only if the level the run used forbids it too.""",
       show=("txlab run bank-transfer -s naive -i read-committed",),
       aliases=("forbidden", "forbidden anomaly"), see=("model",)),
    _e("model", "report term", "the isolation model the history is judged against",
       """The checker judges a history against a formal model (read-committed,
       snapshot-isolation, serializable ...), chosen from the run's isolation level:
       READ COMMITTED -> read-committed, REPEATABLE READ -> snapshot-isolation,
       SERIALIZABLE -> serializable (an Elle history, which names no level: Elle's
       default, strict-serializable). The model lists which anomalies are forbidden.""",
       show=("txlab check HISTORY -m serializable",),
       see=("valid", "snapshot-isolation", "strict-serializable", "strong-session models")),
    _e("valid", "report term", "the checker's verdict: valid / invalid / unknown",
       """valid: no anomaly that the model forbids was found (allowed ones may be
       there). invalid: a forbidden one was found. unknown: a cycle search ran out of
       time, so a forbidden cycle may have been missed; or the history gave no
       dependency between its transactions at all (none committed, one alone, or
       transactions that never touched the same rows), so there was no graph to look
       for cycles in: Elle's "empty transaction graph", which Elle calls unknown too.""",
       fix="""For a timed-out search, raise `txlab check --time-limit-s`. For an empty
       graph, record a longer run, or one whose transactions share rows.""",
       show=("txlab check HISTORY",),
       aliases=("invalid", "verdict valid", "empty transaction graph", "empty graph",
                "empty-transaction-graph"), see=("model",)),
    _e("rw edge", "report term", "a read-write anti-dependency",
       """T1 -rw-> T2: T1 read a version of a row and T2 installed the next version, so
       T1 must come before T2 in any serial order. Cycles of dependencies are
       anomalies; rw edges are the ones snapshot isolation does not prevent.""",
       show=("txlab check HISTORY",),
       aliases=("rw", "anti-dependency", "antidependency", "rw-edge"),
       see=("ww edge", "wr edge", "G-single", "G2-item")),
    _e("ww edge", "report term", "a write-write dependency",
       """T1 -ww-> T2: T2 installed the version right after T1's version of a row.""",
       aliases=("ww", "write dependency"), see=("rw edge", "wr edge")),
    _e("wr edge", "report term", "a write-read dependency",
       """T1 -wr-> T2: T2 read the version T1 installed.""",
       aliases=("wr", "read dependency"), see=("rw edge", "ww edge")),
    _e("cycle", "report term", "a dependency cycle",
       """Transactions T1 < T2 < ... < T1 by their dependencies: no serial order fits. A
       count of cycles is the number of groups of transactions (strongly connected
       parts of the dependency graph) that contain one, not of every cycle.""",
       aliases=("cycles", "cyclic groups", "groups", "group with a cycle",
                "groups with a cycle"), see=("rw edge", "G-single")),
    _e("declined", "report term", "declined by a business rule",
       """The transaction refused itself (e.g. insufficient funds) and rolled back. Not a
       failure: the rule worked. Declined transactions are not retried.""",
       aliases=("declined by business rule",), see=("aborted",)),
    _e("aborted", "report term", "rolled back by the database",
       """The database ended the transaction with an error; the report groups aborts by
       SQLSTATE (40001, 40P01, ...). "(retryable)" marks causes that `--retries`
       retries.""",
       show=("txlab explain 40001",), aliases=("abort", "rolled back", "retryable"),
       see=("retries", "declined")),
    _e("retries", "report term", "retries and failed after all retries",
       """`--retries N`: a transaction aborted by a retryable cause (40001, 40P01, a
       version conflict) is run again from the start, up to N times. "retries" counts
       those extra attempts; "failed after all retries" counts transactions that
       still did not commit.""",
       fix="""Raise --retries when most attempts abort with 40001; at SERIALIZABLE, retries
       are part of the contract.""",
       show=("txlab run bank-transfer -i serializable --retries 10",),
       aliases=("retry", "--retries", "failed", "failed after all retries"),
       see=("40001", "40P01")),
    _e("committed", "report term", "committed transactions",
       """Transactions whose COMMIT succeeded (after any retries).""",
       aliases=("commit",), see=("aborted", "declined")),
    _e("think time", "report term", "pause inside each transaction",
       """`--think-ms`: how long each transaction pauses between its reads and its
       writes. Longer think time widens the window in which concurrent transactions
       interfere: anomalies and aborts become more likely.""",
       aliases=("think", "think-ms", "--think-ms")),
    _e("throughput", "report term", "committed transactions per second",
       """Committed transactions divided by the run's duration. Latency p50/p95/p99:
       half, 95 %, 99 % of committed transactions took at most that long, retries
       included.""",
       aliases=("latency", "p50", "p95", "p99", "tps", "commits/s")),
    _e("seed", "report term", "the random seed",
       """Every run prints its seed; `--seed N` repeats the same random choices (the
       thread interleaving still varies).""",
       aliases=("--seed",)),
    _e("UNEXPECTED", "report term", "violated where the strategy promised safety",
       """In `txlab matrix`: the strategy declares this level safe, yet an invariant was
       violated. A bug in the scenario, the strategy or the database. In `txlab demo`:
       the outcome differs from the spec's (or the catalog's) `expect` line for this
       level (exit code 1); in `txlab acid`: an outcome differs from PostgreSQL's
       verified behaviour.""",
       aliases=("unexpected", "surprise", "declared safe"), show=("txlab matrix",),
       see=("expect",)),
    _e("knob", "report term", "a scenario parameter",
       """A scenario's setting, given as `-p NAME=VALUE` (`--param`), e.g.
       `-p accounts=3`. Fewer rows means more contention.""",
       aliases=("knobs", "param", "params", "--param"), show=("txlab describe bank-transfer",)),
    _e("isolation level", "report term", "how much concurrent transactions may see of each other",
       """The SQL standard's four levels, weakest first: READ UNCOMMITTED, READ
       COMMITTED, REPEATABLE READ, SERIALIZABLE (short forms in tables: RU, RC, RR,
       SER). `-i LEVEL` picks one for `txlab run`, `demo` and `matrix`; the checker
       judges a run's history by its level's model.""",
       show=("txlab matrix bank-transfer", "txlab demo p4 -i all"),
       aliases=("level", "levels", "isolation levels", "--isolation", "-i"),
       see=("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", "model")),
    _e("SQLSTATE", "report term", "PostgreSQL's five-character error code",
       """Every PostgreSQL error carries one (40001, 40P01, 23505 ...); txlab groups
       aborts by it, never by the message text, and `txlab explain CODE` explains each.
       A cause txlab names itself (version-conflict, connection-lost, interrupted)
       stands in its place where the server sent no code.""",
       show=("txlab explain 40001",), aliases=("sqlstates", "error code"),
       see=("aborted", "40001", "40P01")),
    _e("PREVENTED", "report term", "a demo's anomaly did not occur: the database stopped it",
       """A `txlab demo` verdict, for a demo with a witness: the anomaly did not occur,
       and the database did something to stop it: a session waited for another's lock
       and then saw its change ("prevented (wait)" in tables), or was aborted (the
       table names the SQLSTATE: "prevented (40001)").""",
       fix="""Compare the level that shows ANOMALY: the waiting or the abort is the price
       the stronger level pays. An abort (40001, 40P01) must be retried by the
       application.""",
       show=("txlab demo p4 -i all",), aliases=("prevented (wait)",),
       see=("witness", "NO ANOMALY", "40001")),
    _e("NO ANOMALY", "report term", "a demo's anomaly did not occur, with nothing to stop",
       """A `txlab demo` verdict, for a demo with a witness: the anomaly did not occur and
       no session waited or aborted: at this level the steps do not interfere (for
       example, PostgreSQL never lets a session read another's uncommitted row, so G1a
       cannot happen at any level).""",
       show=("txlab demo g1a -i all",), aliases=("no anomalies",),
       see=("witness", "PREVENTED")),
    _e("WAITED", "report term", "a session waited for another's lock",
       """A `txlab demo` verdict for a demo with no witness (it reports what happened,
       not an anomaly): a session waited for a row lock another session held, and went
       on once that one committed or rolled back; nothing failed. In timelines,
       "WAITING for s1" marks the step that is blocked; "HELD BACK by its (*) marker"
       is a step the permutation held back, not a lock wait.""",
       aliases=("waiting", "waited", "held back", "lock wait"),
       see=("PREVENTED", "55P03")),
    _e("DONE", "report term", "a demo ran without waits or errors, not all committed",
       """A `txlab demo` verdict for a demo with no witness: no step waited or failed,
       but not every session committed (one rolled back, or its steps left its
       transaction open). When every session committed the verdict is COMMITTED.""",
       see=("committed", "WAITED")),
    _e("expect", "report term", "what a demo is expected to show at each level",
       """A demo spec's `# txlab: expect LEVEL = anomaly|wait|abort|ok` lines (the
       built-in demos have them from the catalog). A run whose outcome differs says
       UNEXPECTED and exits 1. CANNOT TELL: the spec expects an anomaly but has no
       witness line, so whether this run showed it cannot be read off the run (not
       counted as a failure). NOT COMPARED: --permutation ran a schedule the spec does
       not list, and its expect lines are about the spec's own permutations.""",
       fix="""For CANNOT TELL, add a `# txlab: witness` line that proves the anomaly (a
       value a session read, or a check query); see docs/demos.md.""",
       show=("txlab demo p4 -i all", "txlab demo --show p4"),
       aliases=("expected", "CANNOT TELL", "NOT COMPARED", "expect line"),
       see=("witness", "UNEXPECTED")),
    _e("NOT CHECKED", "report term", "invariants that could not be checked",
       """A run's verdict when no invariant was found violated but some could not be
       checked: the run was interrupted before its checks, the server was lost, or
       another txlab took the schema. The report lists them; INCOMPLETE is the same
       verdict in the JSON report. Nothing was shown to hold.""",
       fix="Run again to its end, on a server that stays up.",
       aliases=("INCOMPLETE", "invariants not checked", "unchecked"),
       see=("invariant", "SERVER LOST", "SCHEMA TAKEN")),
    _e("SERVER LOST", "report term", "the server went away mid-run and stayed away",
       """`txlab run`: the server stopped answering and did not come back within the
       reconnect time; the report covers the run until then and the history has every
       attempt recorded. `txlab matrix`: the combinations that finished are shown, the
       one running is left out, and the matrix is partial. (A restart that the run
       survives changes nothing.)""",
       fix="""Find out why the server went away (`txlab server status`, its log), then
       run again.""",
       show=("txlab server status",), aliases=("server lost", "lost server"),
       see=("connection-lost", "outcome unknown", "STOPPED")),
    _e("STOPPED", "report term", "a matrix cut short by a failed run",
       """`txlab matrix`: one combination's run failed for a reason other than a lost
       server or an interrupt (the error is printed); the matrix stops there, shows
       the combinations that finished and leaves that one out.""",
       fix="Read the error, fix its cause, and run that combination with `txlab run`.",
       see=("SERVER LOST", "interrupted")),
    _e("SCHEMA TAKEN", "report term", "another txlab took the run's schema mid-run",
       """`txlab run`: this run's hold on its schema was lost (its connection died) and
       another txlab took the schema meanwhile, so the final state is no longer this
       run's alone: the run stops, and nothing is judged. The history keeps every
       attempt recorded.""",
       fix="""Give concurrent runs on one server their own schemas (`--schema NAME`).""",
       aliases=("schema in use",), see=("NOT CHECKED",)),
    _e("HISTORY NOT WRITTEN", "report term", "the --history file could not be written",
       """`txlab run --history FILE`: writing the history failed (a full disk, a
       refused path); the load stopped there and the anomaly check, which reads the
       history back, did not run. The report says why.""",
       fix="Free space or choose another path, and run again.",
       see=("history",)),
    _e("ACID", "report term", "atomicity, consistency, isolation, durability",
       """The four promises of a transaction, each shown by `txlab acid PART` with the
       verdict HELD (the promise held) or VIOLATED. Atomicity: all or nothing.
       Consistency: constraints (CHECK, FOREIGN KEY, UNIQUE) refuse an invalid result.
       Isolation: concurrent transactions do not see each other's work, as far as the
       isolation level promises. Durability: a committed transaction survives a
       crash.""",
       show=("txlab acid atomicity", "txlab acid consistency"),
       aliases=("atomicity", "consistency", "durability", "held"),
       see=("isolation level", "25P02", "23514")),
    _e("history", "report term", "every attempt of every transaction",
       """`txlab run --history FILE` writes what each transaction read and wrote, with
       row versions, as JSON lines; `txlab check FILE` finds the anomalies in it.""",
       show=("txlab run bank-transfer --history run.jsonl", "txlab check run.jsonl")),
    _e("SSI", "report term", "serializable snapshot isolation",
       """How PostgreSQL implements SERIALIZABLE: snapshot isolation plus tracking of
       read/write dependencies, aborting (40001) where a cycle could form.""",
       aliases=("serializable snapshot isolation", "predicate lock", "predicate locks"),
       see=("SERIALIZABLE", "40001-rw-dependencies")),
    _e("micro-op", "report term", "one read or write in a transaction's example",
       """How examples and histories write what a transaction did, one micro-op each:
       `r alice v3 = 70` read version 3 of row alice, value 70; `w alice v4 = 40`
       installed version 4 with value 40; `pr `doctors WHERE shift_id = 6 AND on_call`
       -> [doctor:11 v1, ...]` is a predicate read: the query, and each row it returned
       with its version. Every write bumps a row's `version` column (the insert that
       made the row installs v1), so the versions of a row form a chain that orders
       its writes without guessing. A key is the row a micro-op names (alice).""",
       aliases=("micro-ops", "r", "w", "pr", "predicate read", "read", "reads", "write",
                "version", "row version", "v1", "key", "keys"),
       see=("history", "cycle")),
    _e("outcome unknown", "report term", "a COMMIT whose answer was lost",
       """The connection broke after COMMIT was sent and before its answer came: the
       transaction may or may not have committed. Reports count these apart from
       committed and aborted ones; the checker treats each as possibly committed and
       decides from what later transactions read. (The checker's verdict UNKNOWN is
       another thing: `txlab explain valid`.)""",
       fix="""In applications: make transactions idempotent, or read back, so that an unknown
       outcome can be resolved.""",
       aliases=("unknown", "unknown outcome", "outcome-unknown", "indeterminate", "info"),
       see=("connection-lost", "valid")),
    _e("preemption", "report term", "a switch to another session mid-call",
       """In `txlab.testing.interleave`: a schedule preempts a session when it runs
       another session's statement while the first is still inside its call (between
       its statements, not at its end). Races need at least one; interleave tries
       schedules with fewer preemptions first, so the failure it reports is the
       simplest it found.""",
       aliases=("preemptions", "schedule", "schedules", "interleaving")),
    _e("witness", "report term", "what a demo looks for to call an anomaly",
       """A demo spec's `# txlab: witness` line says what proves its anomaly happened (a
       value a session read, the final state, a check query). When the witness holds
       the verdict is ANOMALY; when it does not, PREVENTED or NO ANOMALY. A spec with
       no witness only reports what happened.""",
       aliases=("witnesses",), show=("txlab demo --show p4",)),
    _e("Adya", "report term", "Adya's anomaly classes (G0, G1a-c, G-single, G2)",
       """Atul Adya's thesis (MIT, 1999) defines isolation levels by the dependency
       cycles a history may contain: G0 (write cycles), G1a-c (aborted, intermediate
       reads, circular information flow), G-single and G2 (anti-dependency cycles).
       txlab's checker names anomalies in these terms.""",
       aliases=("Adya's classes", "G-classes"), see=("G0", "G1a", "G-single", "G2-item")),
    _e("Elle", "report term", "Jepsen's transaction checker",
       """Elle (Kingsbury and Alvaro, 2020) finds Adya's anomalies in a history by
       inferring the dependency graph from what transactions read and wrote. txlab's
       checker works the same way and reads Elle's history formats (JSON, EDN).""",
       aliases=("Jepsen",), show=("txlab check HISTORY",), see=("Adya", "history")),
    _e("Hermitage", "report term", "the test suite of isolation anomalies by database",
       """Martin Kleppmann's Hermitage tests which anomalies each database's isolation
       levels allow, with two or three sessions step by step. `txlab demo --all`
       reproduces its table for the PostgreSQL you are connected to.""",
       show=("txlab demo --all",)),
    _e("false positive", "report term", "an abort with nothing to prevent",
       """SERIALIZABLE sometimes aborts a transaction although no anomaly would have
       occurred: SSI is conservative (coarse predicate locks, summarised
       dependencies).""",
       fix="Retry; add indexes so the predicate locks are finer.",
       show=("txlab demo ssi-false-positive",), see=("40001-rw-dependencies",)),
)


# ---------------------------------------------------------------- strategies, from the scenarios


def _strategies() -> tuple[Entry, ...]:
    from txlab import scenario
    from txlab.db import LEVELS as DB_LEVELS

    found = scenario.discover(())
    by_name: dict[str, list] = {}
    for s in sorted(found.values(), key=lambda s: s.name):
        for st in s.strategies:
            by_name.setdefault(st.name, []).append((s, st))
    out = []
    for name, uses in by_name.items():
        lines = []
        for s, st in uses:
            safe = [DB_LEVELS[k].sql for k in DB_LEVELS if k in st.safe_at]
            unsafe = [DB_LEVELS[k].sql for k in DB_LEVELS if k not in st.safe_at]
            keeps = ("keeps every invariant at every level" if not unsafe else
                     f"keeps every invariant at {', '.join(safe)}; may violate at "
                     f"{', '.join(unsafe)}" if safe else "may violate at every level")
            lines.append(f"{s.name}: {st.help} ({keeps})")
        first = uses[0][0].name
        out.append(Entry(
            name, "strategy", f"strategy of {', '.join(s.name for s, _ in uses)}",
            "A built-in strategy (`-s " + name + "`); what it does in each scenario, and the "
            "levels at which the scenario declares it safe (`txlab matrix` measures it):",
            show=(f"txlab run {first} -s {name}", f"txlab matrix {first} -s {name}"),
            uses=tuple(lines)))
    return tuple(out)


# ---------------------------------------------------------------- lookup


def key(text: str) -> str:
    """The spelling-free form of a term: case, -, _ and spaces do not matter."""
    return re.sub(r"[\s_\-]+", " ", text.strip().lower().lstrip("-"))


def _unit_aliases(written: list[Entry]) -> list[Entry]:
    """A report counts an anomaly in its unit ("3 overwritten updates"): a unit only
    one anomaly class uses is an alias of that class, read from the checker's table
    (the shared ones, reads, groups with a cycle, findings, are written above)."""
    from txlab.checker import models

    users: dict[str, list[str]] = {}
    for kind, pair in models.UNITS.items():
        for unit in pair:
            users.setdefault(unit, []).append(kind)
    own = {kind: tuple(u for u in pair if len(users[u]) == 1)
           for kind, pair in models.UNITS.items()}
    return [replace(e, aliases=tuple(dict.fromkeys(e.aliases + own[e.term])))
            if own.get(e.term) else e for e in written]


def entries() -> list[Entry]:
    """Every entry; a strategy named like a written entry ("naive") is merged into it."""
    written = _unit_aliases([*SQLSTATES, *ANOMALIES, *_variants(), *LEVELS, *MODELS, *JARGON])
    by_term = {key(e.term): i for i, e in enumerate(written)}
    for st in _strategies():
        i = by_term.get(key(st.term))
        if i is None:
            written.append(st)
        else:
            e = written[i]
            written[i] = replace(e, uses=st.uses, show=tuple(dict.fromkeys(e.show + st.show)))
    return written


def index(found: list[Entry] | None = None) -> dict[str, Entry]:
    """Every spelling (term and aliases, any case, - _ and space alike) -> its entry;
    a term is never shadowed by another entry's alias."""
    found = found or entries()
    out: dict[str, Entry] = {key(e.term): e for e in reversed(found)}  # a term beats an alias
    for e in found:
        for name in e.aliases:
            out.setdefault(key(name), e)
    return out


def lookup(term: str) -> Entry:
    found = entries()
    idx = index(found)
    k = key(term)
    if k in idx:
        return idx[k]
    model = re.sub(r"\s*\(?model\)?$", "", k) + " (model)"
    if k.endswith("model") and model in idx:
        return idx[model]
    if re.fullmatch(r"[0-9a-z]{5}", k):
        import psycopg2.errorcodes

        try:
            name = psycopg2.errorcodes.lookup(k.upper())
        except KeyError:
            name = None
        if name:
            return _e(k.upper(), "SQLSTATE", name.lower().replace("_", " "),
                      f"PostgreSQL's SQLSTATE {k.upper()} ({name}). txlab has no lesson "
                      "about it: see Appendix A of the PostgreSQL manual, \"PostgreSQL Error "
                      "Codes\".")
    raise UsageError(unknown_message(term, idx))


def unknown_message(term: str, idx: dict[str, Entry]) -> str:
    k = key(term)
    names = {n: e.term for n, e in idx.items()}
    close = get_close_matches(k, list(names), n=6, cutoff=0.6)
    close += [n for n in names if k and k in n and n not in close]
    terms = list(dict.fromkeys(names[n] for n in close))[:5]
    hint = f" Closest: {', '.join(terms)}." if terms else ""
    return f"no explanation for {term!r}.{hint} `txlab explain` lists every term."
