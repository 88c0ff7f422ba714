"""room-booking: book a room for a time range if nothing overlaps; do bookings collide?

Each transaction asks for one room for a range of half-hour slots on one day. It
looks for an existing booking of that room that overlaps the range (a predicate
read); if there is one the request is declined (a business rule, not a failure),
otherwise it inserts the booking.

The anomaly is a phantom: the check reads rows matching a predicate, and the
conflicting row is one that does not exist yet. Two transactions both find no
overlap and both insert: a predicate write skew (G2). Locking the rows that were
read cannot help, because there are none.

Invariant: no two bookings of the same room overlap.

Strategies, and what to expect at each isolation level:

  naive      SELECT overlapping bookings, decide in Python, INSERT. READ
             COMMITTED and REPEATABLE READ: overlapping bookings (two inserts of
             new rows never conflict). SERIALIZABLE: SSI's predicate locks see
             the rw dependencies and one transaction gets 40001 (read/write
             dependencies); the invariant holds (use --retries). This is the
             "serializable" fix: the naive code, run at --isolation serializable.
  lock-room  SELECT the room row FOR UPDATE first, then check and INSERT. READ
             COMMITTED: bookings of one room queue on the room lock, and the
             check after the wait takes a fresh snapshot: safe. REPEATABLE READ:
             NOT safe. The snapshot was taken when the locking SELECT began,
             before the wait; the room row was only locked, never updated, so
             no 40001 fires, and the check then reads the old snapshot and misses
             the booking the lock holder committed. SERIALIZABLE: safe (40001).
  exclusion  check as naive, then INSERT into bookings_guarded, which carries
             EXCLUDE USING gist (room_id WITH =, during WITH &&) (btree_gist).
             The database refuses an overlapping insert with 23P01 (exclusion
             violation), whatever the isolation level: the race the check missed
             shows up as an abort, never as a double booking. Safe everywhere.
             Two overlapping inserts at the same instant can each find the
             other's uncommitted row and wait for it: one gets 40P01 (deadlock
             detected) after deadlock_timeout (1 s) instead of 23P01.
             (The other strategies write to the unconstrained `bookings` table,
             so that the constraint cannot hide their bugs; the invariant checks
             both tables.)

btree_gist is created in txlab's schema (and dropped with it) when the database
does not have it yet. If it is installed in another schema (or not available),
txlab does not depend on it: the constraint compares rooms as one-point ranges,
EXCLUDE USING gist (int4range(room_id, room_id, '[]') WITH &&, during WITH &&),
which behaves the same.

Knobs: few rooms, few slots and long bookings give the most collisions;
--think-ms widens the window between the check and the insert.
"""

from txlab.scenario import (
    Check,
    Invariant,
    Knob,
    Scenario,
    Setup,
    Strategy,
    Tx,
    Verdict,
    listed,
)

ALL_LEVELS = ("read-uncommitted", "read-committed", "repeatable-read", "serializable")
DAY = "2026-01-05"  # the bookings' day; slot 0 is 08:00


def _draw(tx: Tx) -> tuple[int, int, int]:
    """A room and a range of slots [start, end)."""
    length = tx.rng.randint(1, min(tx.params["max_slots"], tx.params["slots"]))
    start = tx.rng.randint(0, tx.params["slots"] - length)
    return tx.rng.randint(1, tx.params["rooms"]), start, start + length


def _range_sql() -> str:
    """SQL for tsrange(slot start, slot end) from two slot numbers."""
    at = f"timestamp '{DAY} 08:00' + interval '30 minutes' * %s"
    return f"tsrange({at}, {at})"


def _overlapping(tx: Tx, table: str, room: int, start: int, end: int) -> list[tuple]:
    """Predicate read: the bookings of `room` that overlap [start, end)."""
    rows = tx.query(
        f"SELECT id, during::text, version FROM {table}"
        f" WHERE room_id = %s AND during && {_range_sql()} ORDER BY id",
        (room, start, end),
    )
    tx.predicate_read(
        f"{table} WHERE room_id = {room} AND during && slots [{start}, {end})",
        [(f"booking:{b}", version, during) for b, during, version in rows],
    )
    return rows


def _book(tx: Tx, table: str, room: int, start: int, end: int) -> None:
    booking, during = tx.one(
        f"INSERT INTO {table} (room_id, during) VALUES (%s, {_range_sql()}) RETURNING id, during::text",
        (room, start, end),
    )
    tx.write(f"booking:{booking}", 1, during)


def naive(tx: Tx) -> None:
    room, start, end = _draw(tx)
    if _overlapping(tx, "bookings", room, start, end):
        tx.decline("room taken")
    tx.think()
    _book(tx, "bookings", room, start, end)


def lock_room(tx: Tx) -> None:
    room, start, end = _draw(tx)
    (version,) = tx.one("SELECT version FROM rooms WHERE id = %s FOR UPDATE", (room,))
    tx.read(f"room:{room}", version, None)
    if _overlapping(tx, "bookings", room, start, end):
        tx.decline("room taken")
    tx.think()
    _book(tx, "bookings", room, start, end)


def exclusion(tx: Tx) -> None:
    room, start, end = _draw(tx)
    if _overlapping(tx, "bookings_guarded", room, start, end):
        tx.decline("room taken")
    tx.think()
    _book(tx, "bookings_guarded", room, start, end)  # 23P01 if a concurrent booking won


def setup(s: Setup) -> None:
    s.execute("CREATE TABLE rooms (id int PRIMARY KEY, version int NOT NULL DEFAULT 1)")
    s.execute(
        "CREATE TABLE bookings (id bigserial PRIMARY KEY, room_id int NOT NULL REFERENCES rooms,"
        " during tsrange NOT NULL CHECK (NOT isempty(during)), version int NOT NULL DEFAULT 1)"
    )
    s.execute("CREATE INDEX ON bookings (room_id)")
    # `room_id WITH =` needs btree_gist (a GiST operator class for int). Install it
    # in txlab's schema (current_schema(): the schema is dropped with it) when the
    # database does not have it. If it is installed elsewhere, or not available,
    # never depend on anything outside the schema: compare rooms as one-point
    # ranges instead, which core PostgreSQL indexes with GiST.
    s.execute(
        """DO $$
           DECLARE guard text := 'int4range(room_id, room_id, ''[]'') WITH &&, during WITH &&';
           BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist')
                AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist') THEN
               EXECUTE format('CREATE EXTENSION btree_gist SCHEMA %I', current_schema());
             END IF;
             IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'
                          AND extnamespace = to_regnamespace(current_schema())) THEN
               guard := 'room_id WITH =, during WITH &&';
             END IF;
             EXECUTE 'CREATE TABLE bookings_guarded (LIKE bookings INCLUDING DEFAULTS'
                     ' INCLUDING CONSTRAINTS, PRIMARY KEY (id), FOREIGN KEY (room_id)'
                     ' REFERENCES rooms, EXCLUDE USING gist (' || guard || '))';
           END $$"""
    )
    rooms = s.params["rooms"]
    s.execute("INSERT INTO rooms (id) SELECT g FROM generate_series(1, %s) g", (rooms,))
    for room in range(1, rooms + 1):
        s.initial(f"room:{room}", 1, None)


def no_overlap(db: Check) -> Verdict:
    rows = db.query(
        """WITH b AS (SELECT id, room_id, during FROM bookings
                      UNION ALL SELECT id, room_id, during FROM bookings_guarded)
           SELECT x.room_id, x.id, x.during::text, y.id, y.during::text
             FROM b x JOIN b y ON x.room_id = y.room_id AND x.id < y.id AND x.during && y.during
            ORDER BY x.room_id, x.id, y.id"""
    )
    detail = listed((f"room {r}: booking {a} {da} overlaps {b} {db_}"
                     for r, a, da, b, db_ in rows), limit=3)
    return Verdict(not rows, "0 overlapping pairs", f"{len(rows)} overlapping pairs", detail,
                   f"rooms were double-booked: {len(rows)} pairs of bookings overlap")


SCENARIO = Scenario(
    name="room-booking",
    summary="Book a room for a time range if nothing overlaps; do bookings collide?",
    teaches="phantom, predicate write skew (G2)",
    description=__doc__,
    knobs=(
        Knob("rooms", 2, "number of rooms (few = more contention)", min=1, limit=10_000),
        Knob("slots", 16, "half-hour slots in the day (from 08:00)", min=1, max=48),
        Knob("max_slots", 4, "longest booking, in slots", min=1, limit=48),
    ),
    setup=setup,
    strategies=(
        Strategy("naive", naive,
                 "SELECT overlapping bookings, decide in Python, INSERT (at serializable: safe)",
                 safe_at=("serializable",),
                 risk="two bookings can both find the room free and both insert: the check "
                      "reads rows that do not exist yet (a phantom), so no row lock helps"),
        Strategy("lock-room", lock_room,
                 "SELECT the room row FOR UPDATE, then check and INSERT (unsafe at repeatable read)",
                 safe_at=("read-uncommitted", "read-committed", "serializable"),
                 risk="at REPEATABLE READ the second booking waits for the room's lock, then "
                      "still checks its older snapshot and misses the booking just made"),
        Strategy("exclusion", exclusion,
                 "check, then INSERT into a table with an exclusion constraint (23P01 on overlap)",
                 safe_at=ALL_LEVELS),
    ),
    invariants=(Invariant("no overlapping bookings of a room", no_overlap),),
)
