"""on-call: doctors ask to go off call; does every shift keep a doctor? (write skew)

The hospital rule: every shift must keep at least one doctor on call. Each
transaction is one doctor of one shift asking to go off call: it reads who is on
call in that shift (a predicate read), and if the doctor is on call and at least
one other doctor remains, it takes the doctor off call. Otherwise the request is
declined (a business rule, not a failure). Doctors never come back on call during
a run, so a shift left empty stays visibly empty.

The classic write skew (G2-item): two doctors of the same shift ask at the same
time, each transaction sees the other doctor still on call, and each updates a
different row, so nothing conflicts and both commit: the shift has nobody.

Invariant: every shift has at least one doctor on call.

Strategies, and what to expect at each isolation level:

  naive        SELECT the shift's on-call doctors, decide in Python, UPDATE one
               row. READ COMMITTED and REPEATABLE READ: write skew, shifts end up
               with nobody on call (the two transactions write different rows,
               so neither blocks nor fails). SERIALIZABLE: SSI sees the rw
               dependencies, one transaction gets 40001 (read/write
               dependencies); the invariant holds (use --retries).
  lock-doctors SELECT ... FOR UPDATE every doctor row of the shift before
               deciding. READ COMMITTED: the second transaction waits, then
               reads the re-checked rows and declines; safe. REPEATABLE READ and
               SERIALIZABLE: the waiter gets 40001 (concurrent update); safe.
  materialize  first UPDATE the shift's own row (a materialised conflict: every
               transaction on the shift writes one common row), then read and
               decide. READ COMMITTED: the second waits on the shift row; its
               later SELECT takes a fresh snapshot and sees the first's change;
               safe. REPEATABLE READ and SERIALIZABLE: the waiter gets 40001
               (concurrent update); safe.

Knobs: few shifts with two doctors each give the most write skew; --think-ms
widens the window between the read and the write.
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


def _draw(tx: Tx) -> tuple[int, int]:
    """A shift and one of its doctors (doctor ids are numbered shift by shift)."""
    per_shift = tx.params["doctors_per_shift"]
    shift = tx.rng.randint(1, tx.params["shifts"])
    doctor = (shift - 1) * per_shift + tx.rng.randint(1, per_shift)
    return shift, doctor


def _on_call(tx: Tx, shift: int) -> list[int]:
    """Predicate read: the doctors on call in `shift` (recorded with their versions)."""
    rows = tx.query(
        "SELECT id, version FROM doctors WHERE shift_id = %s AND on_call ORDER BY id", (shift,)
    )
    tx.predicate_read(
        f"doctors WHERE shift_id = {shift} AND on_call",
        [(f"doctor:{d}", version, True) for d, version in rows],
    )
    return [d for d, _ in rows]


def _go_off_call(tx: Tx, doctor: int, on_call: list[int]) -> None:
    if doctor not in on_call:
        tx.decline("already off call")
    if len(on_call) < 2:
        tx.decline("last doctor on call")
    (version,) = tx.one(
        "UPDATE doctors SET on_call = false, version = version + 1 WHERE id = %s RETURNING version",
        (doctor,),
    )
    tx.write(f"doctor:{doctor}", version, False)


def naive(tx: Tx) -> None:
    shift, doctor = _draw(tx)
    on_call = _on_call(tx, shift)
    tx.think()
    _go_off_call(tx, doctor, on_call)


def lock_doctors(tx: Tx) -> None:
    shift, doctor = _draw(tx)
    rows = tx.query(
        "SELECT id, on_call, version FROM doctors WHERE shift_id = %s ORDER BY id FOR UPDATE",
        (shift,),
    )
    tx.predicate_read(
        f"doctors WHERE shift_id = {shift} FOR UPDATE",
        [(f"doctor:{d}", version, on) for d, on, version in rows],
    )
    tx.think()
    _go_off_call(tx, doctor, [d for d, on, _ in rows if on])


def materialize(tx: Tx) -> None:
    shift, doctor = _draw(tx)
    (version,) = tx.one(
        "UPDATE shifts SET version = version + 1 WHERE id = %s RETURNING version", (shift,)
    )
    tx.write(f"shift:{shift}", version, None)
    on_call = _on_call(tx, shift)
    tx.think()
    _go_off_call(tx, doctor, on_call)


def setup(s: Setup) -> None:
    s.execute("CREATE TABLE shifts (id int PRIMARY KEY, version int NOT NULL DEFAULT 1)")
    s.execute(
        "CREATE TABLE doctors (id int PRIMARY KEY, shift_id int NOT NULL REFERENCES shifts,"
        " on_call boolean NOT NULL, version int NOT NULL DEFAULT 1)"
    )
    s.execute("CREATE INDEX ON doctors (shift_id)")
    shifts, per_shift = s.params["shifts"], s.params["doctors_per_shift"]
    s.execute("INSERT INTO shifts (id) SELECT g FROM generate_series(1, %s) g", (shifts,))
    s.execute(
        "INSERT INTO doctors (id, shift_id, on_call)"
        " SELECT g, (g - 1) / %s + 1, true FROM generate_series(1, %s) g",
        (per_shift, shifts * per_shift),
    )
    for shift in range(1, shifts + 1):
        s.initial(f"shift:{shift}", 1, None)
    for doctor in range(1, shifts * per_shift + 1):
        s.initial(f"doctor:{doctor}", 1, True)


def shift_covered(db: Check) -> Verdict:
    rows = db.query(
        "SELECT s.id FROM shifts s"
        " WHERE NOT EXISTS (SELECT 1 FROM doctors d WHERE d.shift_id = s.id AND d.on_call)"
        " ORDER BY s.id"
    )
    detail = "" if not rows else "nobody on call in shift " + listed((str(r[0]) for r in rows), limit=10, sep=", ")
    return Verdict(
        not rows, "every shift has a doctor on call",
        f"{len(rows)} shift{'' if len(rows) == 1 else 's'} with nobody", detail,
        f"{len(rows)} shift{' was' if len(rows) == 1 else 's were'} left with nobody on call",
    )


SCENARIO = Scenario(
    name="on-call",
    summary="Doctors go off call if another remains; does every shift keep one?",
    teaches="write skew (G2-item)",
    description=__doc__,
    knobs=(
        Knob("shifts", 10, "number of shifts (each a separate chance of write skew)", min=1,
             limit=10_000),
        Knob("doctors_per_shift", 2, "doctors on call in each shift at the start", min=1,
             limit=100),
    ),
    setup=setup,
    strategies=(
        Strategy("naive", naive,
                 "SELECT the shift's on-call doctors, decide in Python, UPDATE one doctor",
                 safe_at=("serializable",),
                 risk="two doctors can each see the other still on call and both go off call, "
                      "each changing only their own row (write skew)"),
        Strategy("lock-doctors", lock_doctors,
                 "SELECT ... FOR UPDATE all the shift's doctor rows, then decide and UPDATE",
                 safe_at=ALL_LEVELS),
        Strategy("materialize", materialize,
                 "UPDATE the shift row first (materialised conflict), then read, decide, UPDATE",
                 safe_at=ALL_LEVELS),
    ),
    invariants=(Invariant("every shift keeps a doctor on call", shift_covered),),
)
