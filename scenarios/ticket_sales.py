"""ticket-sales: buyers take numbered seats of events with a capacity; is anything oversold?

Each transaction is one buyer asking for 1 to max_seats seats of one event. The
box office gives the lowest-numbered free seats. A request is declined (a
business rule, not a failure) when the event has too few seats left, or when it
would take the buyer past per_buyer_limit tickets for that event.

The check ("how many are sold? which seats are free? how many does this buyer
hold?") is a predicate read over the tickets table, and the sale inserts new
rows: two buyers who both see the last seats free both insert them. That is a
predicate write skew (G2): no row is updated twice, so nothing conflicts.

Invariants: never more tickets than an event's capacity; no seat sold twice;
no buyer over the per-buyer limit.

Strategies, and what to expect at each isolation level:

  naive        SELECT the event and its tickets, decide in Python, INSERT the
               tickets. READ COMMITTED and REPEATABLE READ: oversold events,
               seats sold twice, buyers over the limit. SERIALIZABLE: one of two
               overlapping buyers gets 40001 (read/write dependencies); the
               invariants hold (use --retries).
  for-update   SELECT the event row FOR UPDATE, then the same checks and INSERT.
               READ COMMITTED: buyers of one event queue on its row lock and the
               checks after the wait take a fresh snapshot: safe. REPEATABLE
               READ: NOT safe. The snapshot was taken when the locking SELECT
               began, before the wait; the event row is only locked, never
               updated, so no 40001 fires and the checks read a snapshot that
               misses the tickets the lock holder committed. SERIALIZABLE: safe
               (40001).
  counter      no reads: UPDATE events SET sold = sold + n (a counter with
               CHECK (sold <= capacity)) hands out seats sold-n+1 .. sold, and an
               upsert of the buyer's own counter (CHECK (held <= limit)) guards
               the limit. A CHECK violation (23514) means sold out or over the
               limit and is reported as declined. READ COMMITTED: the updates
               queue on the row lock and re-read the latest counter: safe.
               REPEATABLE READ and SERIALIZABLE: the waiter gets 40001
               (concurrent update): safe.
  unique-seat  the same checks as naive, then INSERT into tickets_guarded, which
               has UNIQUE (event_id, seat) with seats 1..capacity, and UNIQUE
               (event_id, buyer, buyer_slot) with slots 1..limit. Two buyers who
               race for the same seat (or one buyer racing itself past the
               limit) collide on a unique key: one gets 23505 (unique
               violation; 40001 at SERIALIZABLE). Safe at every level. (The
               other strategies write to the unconstrained `tickets` table so
               that the constraints cannot hide their bugs; the invariants check
               both tables.)

Knobs: one or two events with few seats and several buyers give the most
contention; --think-ms widens the window between the checks and the insert.
"""

import psycopg2.errors

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
INSERT = "INSERT INTO {} (event_id, seat, buyer, buyer_slot) VALUES (%s, %s, %s, %s) RETURNING id"


def _draw(tx: Tx) -> tuple[int, int, int]:
    """An event, a buyer, and how many seats they want."""
    p = tx.params
    return (tx.rng.randint(1, p["events"]), tx.rng.randint(1, p["buyers"]),
            tx.rng.randint(1, p["max_seats"]))


def _choose(tx: Tx, table: str, event: int, capacity: int, buyer: int, n: int):
    """Read the event's tickets (a predicate read) and pick seats and buyer slots, or decline."""
    rows = tx.query(
        f"SELECT id, seat, buyer, version FROM {table} WHERE event_id = %s ORDER BY id", (event,)
    )
    tx.predicate_read(
        f"{table} WHERE event_id = {event}",
        [(f"ticket:{t}", version, [event, seat, b]) for t, seat, b, version in rows],
    )
    if len(rows) + n > capacity:
        tx.decline("sold out")
    held = sum(1 for _, _, b, _ in rows if b == buyer)
    if held + n > tx.params["per_buyer_limit"]:
        tx.decline("buyer limit")
    taken = {seat for _, seat, _, _ in rows}
    seats = [s for s in range(1, capacity + 1) if s not in taken][:n]
    return seats, list(range(held + 1, held + n + 1))


def _sell(tx: Tx, table: str, event: int, buyer: int, seats: list[int], slots: list[int]) -> None:
    for seat, slot in zip(seats, slots, strict=True):
        (ticket,) = tx.one(INSERT.format(table), (event, seat, buyer, slot))
        tx.write(f"ticket:{ticket}", 1, [event, seat, buyer])


def _event(tx: Tx, event: int, lock: str = "") -> int:
    capacity, sold, version = tx.one(
        f"SELECT capacity, sold, version FROM events WHERE id = %s{lock}", (event,))
    tx.read(f"event:{event}", version, [capacity, sold])  # the row's value: [capacity, sold]
    return capacity


def naive(tx: Tx) -> None:
    event, buyer, n = _draw(tx)
    capacity = _event(tx, event)
    seats, slots = _choose(tx, "tickets", event, capacity, buyer, n)
    tx.think()
    _sell(tx, "tickets", event, buyer, seats, slots)


def for_update(tx: Tx) -> None:
    event, buyer, n = _draw(tx)
    capacity = _event(tx, event, " FOR UPDATE")
    seats, slots = _choose(tx, "tickets", event, capacity, buyer, n)
    tx.think()
    _sell(tx, "tickets", event, buyer, seats, slots)


def unique_seat(tx: Tx) -> None:
    event, buyer, n = _draw(tx)
    capacity = _event(tx, event)
    seats, slots = _choose(tx, "tickets_guarded", event, capacity, buyer, n)
    tx.think()
    _sell(tx, "tickets_guarded", event, buyer, seats, slots)  # 23505 if someone raced us


def counter(tx: Tx) -> None:
    event, buyer, n = _draw(tx)
    tx.think()
    try:
        capacity, sold, version = tx.one(
            "UPDATE events SET sold = sold + %s, version = version + 1 WHERE id = %s"
            " RETURNING capacity, sold, version",
            (n, event),
        )
    except psycopg2.errors.CheckViolation:
        tx.decline("sold out")
    tx.write(f"event:{event}", version, [capacity, sold])
    try:
        held, version = tx.one(
            "INSERT INTO holdings AS h (event_id, buyer, held) VALUES (%s, %s, %s)"
            " ON CONFLICT (event_id, buyer)"
            " DO UPDATE SET held = h.held + excluded.held, version = h.version + 1"
            " RETURNING held, version",
            (event, buyer, n),
        )
    except psycopg2.errors.CheckViolation:
        tx.decline("buyer limit")
    tx.write(f"holding:{event}:{buyer}", version, held)
    _sell(tx, "tickets", event, buyer, list(range(sold - n + 1, sold + 1)),
          list(range(held - n + 1, held + 1)))


def setup(s: Setup) -> None:
    p = s.params
    capacity, limit = int(p["capacity"]), int(p["per_buyer_limit"])
    s.execute(
        "CREATE TABLE events (id int PRIMARY KEY, capacity int NOT NULL,"
        " sold int NOT NULL DEFAULT 0 CHECK (sold BETWEEN 0 AND capacity),"
        " version int NOT NULL DEFAULT 1)"
    )
    s.execute(
        "CREATE TABLE tickets (id bigserial PRIMARY KEY, event_id int NOT NULL REFERENCES events,"
        " seat int NOT NULL, buyer int NOT NULL, buyer_slot int NOT NULL,"
        " version int NOT NULL DEFAULT 1)"
    )
    s.execute("CREATE INDEX ON tickets (event_id)")
    s.execute(
        "CREATE TABLE tickets_guarded (LIKE tickets INCLUDING DEFAULTS,"
        " PRIMARY KEY (id), FOREIGN KEY (event_id) REFERENCES events,"
        f" CHECK (seat BETWEEN 1 AND {capacity}), UNIQUE (event_id, seat),"
        f" CHECK (buyer_slot BETWEEN 1 AND {limit}), UNIQUE (event_id, buyer, buyer_slot))"
    )
    s.execute(
        "CREATE TABLE holdings (event_id int REFERENCES events, buyer int,"
        f" held int NOT NULL CHECK (held BETWEEN 0 AND {limit}),"
        " version int NOT NULL DEFAULT 1, PRIMARY KEY (event_id, buyer))"
    )
    s.execute(
        "CREATE VIEW all_tickets AS SELECT event_id, seat, buyer FROM tickets"
        " UNION ALL SELECT event_id, seat, buyer FROM tickets_guarded"
    )
    s.execute(
        "INSERT INTO events (id, capacity) SELECT g, %s FROM generate_series(1, %s) g",
        (capacity, p["events"]),
    )
    for event in range(1, p["events"] + 1):
        s.initial(f"event:{event}", 1, [capacity, 0])


def within_capacity(db: Check) -> Verdict:
    rows = db.query(
        "SELECT e.id, e.capacity, count(*) FROM events e JOIN all_tickets t ON t.event_id = e.id"
        " GROUP BY e.id, e.capacity HAVING count(*) > e.capacity ORDER BY e.id"
    )
    detail = listed(f"event {e}: {sold} tickets for {cap} seats" for e, cap, sold in rows)
    said = "1 event was" if len(rows) == 1 else f"{len(rows)} events were"
    each = listed((f"event {e} has {sold} tickets for {cap} seats" for e, cap, sold in rows),
                  sep=", ")
    return Verdict(not rows, "0 events oversold", f"{len(rows)} events oversold", detail,
                   f"{said} oversold: {each}")


def seats_unique(db: Check) -> Verdict:
    rows = db.query(
        "SELECT event_id, seat, count(*) FROM all_tickets GROUP BY event_id, seat"
        " HAVING count(*) > 1 ORDER BY event_id, seat"
    )
    detail = listed(f"event {e} seat {s}: sold {c} times" for e, s, c in rows)
    return Verdict(not rows, "0 seats sold twice", f"{len(rows)} seats sold twice", detail,
                   f"{len(rows)} seats were sold twice")


def buyer_limit(db: Check) -> Verdict:
    limit = db.params["per_buyer_limit"]
    rows = db.query(
        "SELECT event_id, buyer, count(*) FROM all_tickets GROUP BY event_id, buyer"
        " HAVING count(*) > %s ORDER BY event_id, buyer",
        (limit,),
    )
    detail = listed(f"event {e} buyer {b}: {c} tickets" for e, b, c in rows)
    return Verdict(not rows, f"no buyer over {limit} per event", f"{len(rows)} buyers over the limit", detail)


SCENARIO = Scenario(
    name="ticket-sales",
    summary="Buyers take numbered seats of events with a capacity; is anything oversold?",
    teaches="predicate write skew (G2), phantom",
    description=__doc__,
    knobs=(
        Knob("events", 2, "number of events (few = more contention)", min=1, limit=10_000),
        Knob("capacity", 20, "seats per event", min=1),
        Knob("buyers", 10, "distinct buyers", min=1, limit=100_000),
        Knob("max_seats", 2, "most seats one request asks for", min=1, limit=1000),
        Knob("per_buyer_limit", 4, "most tickets one buyer may hold per event", min=1,
             limit=1000),
    ),
    setup=setup,
    strategies=(
        Strategy("naive", naive,
                 "count the sold tickets and free seats with a SELECT, then INSERT",
                 safe_at=("serializable",),
                 risk="two buyers can count the same free seats and both insert a ticket, so "
                      "the event is oversold (write skew through a predicate read)"),
        Strategy("for-update", for_update,
                 "SELECT the event row FOR UPDATE, then count and INSERT (unsafe at repeatable read)",
                 safe_at=("read-uncommitted", "read-committed", "serializable"),
                 risk="at REPEATABLE READ the second buyer waits for the event's lock, then still "
                      "counts from its older snapshot and sells a seat that is gone"),
        Strategy("counter", counter,
                 "atomic UPDATE of a sold counter with CHECK (sold <= capacity); seats from the counter",
                 safe_at=ALL_LEVELS),
        Strategy("unique-seat", unique_seat,
                 "count, then INSERT into a table whose UNIQUE (event, seat) catches double booking",
                 safe_at=ALL_LEVELS),
    ),
    invariants=(
        Invariant("never more tickets than capacity", within_capacity),
        Invariant("no seat sold twice", seats_unique),
        Invariant("per-buyer limit respected", buyer_limit),
    ),
)
