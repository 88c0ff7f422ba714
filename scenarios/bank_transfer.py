"""bank-transfer: move money between accounts; does the money stay conserved?

Every transaction moves a random amount between two distinct random accounts and
logs the transfer in the same transaction. No overdrafts: a transfer larger than
the source balance is declined (a business rule, not a failure).
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


def _key(account: int) -> str:
    return f"account:{account}"


def _draw(tx: Tx) -> tuple[int, int, int]:
    n = tx.params["accounts"]
    randint = tx.rng.randint
    src = randint(1, n)
    dst = randint(1, n - 1)
    if dst >= src:
        dst += 1
    return src, dst, randint(1, tx.params["max_amount"])


LOG = "INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s)"
SET_BALANCE = "UPDATE accounts SET balance = %s, version = version + 1 WHERE id = %s RETURNING version"


def _write_both(tx: Tx, src: int, dst: int, amount: int, balances: dict[int, int]) -> None:
    """Write the balances computed in Python from what was read (in id order: no deadlocks)."""
    new = {src: balances[src] - amount, dst: balances[dst] + amount}
    for account, value in sorted(new.items()):
        (version,) = tx.one(SET_BALANCE, (value, account))
        tx.write(_key(account), version, value)
    tx.execute_later(LOG, (src, dst, amount))  # sent with the COMMIT


def naive(tx: Tx) -> None:
    src, dst, amount = _draw(tx)
    rows = tx.query("SELECT id, balance, version FROM accounts WHERE id IN (%s, %s)", (src, dst))
    balances = {}
    for account, balance, version in rows:
        tx.read(_key(account), version, balance)
        balances[account] = balance
    tx.think()
    if balances[src] < amount:
        tx.decline("insufficient funds")
    _write_both(tx, src, dst, amount, balances)


def atomic(tx: Tx) -> None:
    src, dst, amount = _draw(tx)
    tx.think()
    # One UPDATE per row, in id order so that two transfers never deadlock; the
    # debit carries the funds check, so no separate read is needed.
    for account in (src, dst) if src < dst else (dst, src):
        if account == src:
            row = tx.one(
                "UPDATE accounts SET balance = balance - %s, version = version + 1"
                " WHERE id = %s AND balance >= %s RETURNING version, balance",
                (amount, src, amount),
            )
            if row is None:
                tx.decline("insufficient funds")
        else:
            row = tx.one(
                "UPDATE accounts SET balance = balance + %s, version = version + 1"
                " WHERE id = %s RETURNING version, balance",
                (amount, dst),
            )
        tx.write(_key(account), row[0], row[1])
    tx.execute_later(LOG, (src, dst, amount))  # sent with the COMMIT


def for_update(tx: Tx) -> None:
    src, dst, amount = _draw(tx)
    order = sorted((src, dst)) if tx.params["lock_order"] == "sorted" else (src, dst)
    balances = {}
    for account in order:
        balance, version = tx.one(
            "SELECT balance, version FROM accounts WHERE id = %s FOR UPDATE", (account,)
        )
        tx.read(_key(account), version, balance)
        balances[account] = balance
    tx.think()
    if balances[src] < amount:
        tx.decline("insufficient funds")
    _write_both(tx, src, dst, amount, balances)


def optimistic(tx: Tx) -> None:
    src, dst, amount = _draw(tx)
    rows = tx.query("SELECT id, balance, version FROM accounts WHERE id IN (%s, %s)", (src, dst))
    seen = {}
    for account, balance, version in rows:
        tx.read(_key(account), version, balance)
        seen[account] = (balance, version)
    tx.think()
    if seen[src][0] < amount:
        tx.decline("insufficient funds")
    for account, delta in sorted(((src, -amount), (dst, amount))):
        balance, version = seen[account]
        row = tx.one(
            "UPDATE accounts SET balance = %s, version = version + 1"
            " WHERE id = %s AND version = %s RETURNING version",
            (balance + delta, account, version),
        )
        if row is None:
            tx.conflict(f"account {account} changed since it was read at v{version}")
        tx.write(_key(account), row[0], balance + delta)
    tx.execute_later(LOG, (src, dst, amount))  # sent with the COMMIT


def setup(s: Setup) -> None:
    s.execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL,"
        " version int NOT NULL DEFAULT 1)"
    )
    s.execute(
        "CREATE TABLE transfers (id bigserial PRIMARY KEY,"
        " src int NOT NULL REFERENCES accounts, dst int NOT NULL REFERENCES accounts,"
        " amount bigint NOT NULL CHECK (amount > 0))"
    )
    n, initial = s.params["accounts"], s.params["initial_balance"]
    s.execute(
        "INSERT INTO accounts (id, balance, version) SELECT g, %s, 1 FROM generate_series(1, %s) g",
        (initial, n),
    )
    for account in range(1, n + 1):
        s.initial(_key(account), 1, initial)


def money_conserved(db: Check) -> Verdict:
    expected = db.params["accounts"] * db.params["initial_balance"]
    actual = int(db.scalar("SELECT coalesce(sum(balance), 0) FROM accounts"))
    diff = actual - expected
    detail = "" if diff == 0 else f"{abs(diff)} {'created from nothing' if diff > 0 else 'vanished'}"
    if diff < 0:
        story = f"{-diff:,} of the {expected:,} in the accounts vanished"
    else:
        story = f"{diff:,} appeared from nothing: the accounts hold {actual:,} instead of {expected:,}"
    return Verdict(actual == expected, expected, actual, detail, story)


def no_negative_balance(db: Check) -> Verdict:
    rows = db.query("SELECT id, balance FROM accounts WHERE balance < 0 ORDER BY id")
    detail = listed((f"account {i}: {b}" for i, b in rows), sep=", ")
    return Verdict(not rows, "0 accounts below 0", f"{len(rows)} accounts below 0", detail,
                   f"{len(rows)} accounts went below zero, which the funds check forbids")


def log_agrees(db: Check) -> Verdict:
    rows = db.query(
        """SELECT a.id, a.balance, %s + coalesce(i.total, 0) - coalesce(o.total, 0) AS logged
             FROM accounts a
             LEFT JOIN (SELECT dst, sum(amount) total FROM transfers GROUP BY dst) i ON i.dst = a.id
             LEFT JOIN (SELECT src, sum(amount) total FROM transfers GROUP BY src) o ON o.src = a.id
            WHERE a.balance <> %s + coalesce(i.total, 0) - coalesce(o.total, 0)
            ORDER BY a.id""",
        (db.params["initial_balance"], db.params["initial_balance"]),
    )
    detail = listed((f"account {i}: balance {b}, log says {g}" for i, b, g in rows), limit=3)
    return Verdict(
        not rows, "every balance = initial + logged in - logged out",
        f"{len(rows)} accounts disagree", detail,
        f"{len(rows)} of the {db.params['accounts']} balances disagree with the transfer log",
    )


SCENARIO = Scenario(
    name="bank-transfer",
    summary="Concurrent transfers between a few accounts; is money conserved?",
    teaches="lost update (P4), deadlock",
    description=__doc__,
    knobs=(
        Knob("accounts", 10, "number of accounts (few = more contention)", min=2,
             limit=100_000),
        Knob("initial_balance", 1000, "balance of every account at the start", min=0,
             limit=10**12),
        Knob("max_amount", 100, "largest amount one transfer moves", min=1, limit=10**12),
        Knob("lock_order", "sorted", "for-update: lock rows sorted by id, or as drawn (deadlocks)",
             choices=("sorted", "as-drawn"), strategies=("for-update",)),
    ),
    setup=setup,
    strategies=(
        Strategy("naive", naive,
                 "read both balances with plain SELECTs, decide in Python, write the computed values",
                 safe_at=("repeatable-read", "serializable"),
                 risk="two transfers can read the same balance and both write back a value "
                      "computed from it, so one of the two changes is lost (a lost update)"),
        Strategy("atomic", atomic,
                 "single UPDATEs that do the arithmetic and the funds check in SQL",
                 safe_at=("read-uncommitted", "read-committed", "repeatable-read", "serializable")),
        Strategy("for-update", for_update,
                 "SELECT ... FOR UPDATE both rows, then write (--param lock_order=as-drawn deadlocks)",
                 safe_at=("read-uncommitted", "read-committed", "repeatable-read", "serializable")),
        Strategy("optimistic", optimistic,
                 "read with the version, write WHERE version matches, abort as a conflict if not",
                 safe_at=("read-uncommitted", "read-committed", "repeatable-read", "serializable")),
    ),
    invariants=(
        Invariant("total money conserved", money_conserved),
        Invariant("no negative balance", no_negative_balance),
        Invariant("transfer log agrees with balances", log_agrees),
    ),
)
