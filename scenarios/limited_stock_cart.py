"""limited-stock-cart: checkouts of 1-5 products with limited stock; is anything oversold?

Each transaction is one checkout: a cart of 1 to max_lines distinct random
products, each with a quantity of 1 to max_qty. It creates an order with one
order line per product and takes each quantity off the product's stock, all in
one transaction. If any product has too little stock the whole checkout is
declined (a business rule, not a failure) and nothing of it remains.

Invariants: stock never negative; for every product, initial stock = remaining
stock + quantity sold in order lines; no partial orders (every order has all of
its lines).

Strategies, and what to expect at each isolation level:

  naive                SELECT the stock, check it in Python, then UPDATE
                       stock = stock - qty. READ COMMITTED: two checkouts both
                       see enough stock and both decrement: stock goes negative
                       (oversold). REPEATABLE READ and SERIALIZABLE: the second
                       writer gets 40001 (concurrent update): safe.
  guarded              no read: UPDATE ... SET stock = stock - qty WHERE id = ? AND
                       stock >= qty, line by line in id order; a line that
                       updates no row declines the checkout, which rolls back
                       the order and its earlier lines. READ COMMITTED: the
                       second UPDATE waits and re-checks the guard on the new
                       row: safe. REPEATABLE READ and SERIALIZABLE: 40001
                       (concurrent update): safe.
  for-update           SELECT ... FOR UPDATE each product row in id order (the
                       --think-ms pause falls after the first lock), check in
                       Python, write. Safe at every level (REPEATABLE READ and
                       SERIALIZABLE answer a lock on a changed row with 40001).
  for-update-unsorted  the same, but locking in the cart's own random order: two
                       carts that lock the same products in opposite orders
                       deadlock; after deadlock_timeout (1 s) one gets 40P01.
                       The invariants hold; throughput suffers.
  orm-optimistic       SQLAlchemy 2 ORM models; Product maps `version` as its
                       version_id_col, so the flush writes UPDATE ... WHERE id = ?
                       AND version = ? and raises StaleDataError when another
                       checkout changed the product since it was read: reported
                       as a version conflict (retryable: use --retries). The
                       Session runs on the worker's own connection inside
                       txlab's transaction. READ COMMITTED: safe (conflicts).
                       REPEATABLE READ and SERIALIZABLE: the UPDATE gets 40001
                       (concurrent update) before the version check can: safe.

Knobs: few products with little stock give the most contention; --think-ms
widens the window between the check and the write.
"""

import functools
from types import SimpleNamespace

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


def _draw(tx: Tx) -> list[tuple[int, int]]:
    """The cart: (product, qty) pairs, distinct products in the order the buyer picked them."""
    p = tx.params
    count = tx.rng.randint(1, min(p["max_lines"], p["products"]))
    products = tx.rng.sample(range(1, p["products"] + 1), count)
    return [(product, tx.rng.randint(1, p["max_qty"])) for product in products]


def _order(tx: Tx, cart: list) -> int:
    (order,) = tx.one("INSERT INTO orders (line_count) VALUES (%s) RETURNING id", (len(cart),))
    tx.write(f"order:{order}", 1, len(cart))
    return order


def _line(tx: Tx, order: int, product: int, qty: int) -> None:
    tx.execute(
        "INSERT INTO order_lines (order_id, product_id, qty) VALUES (%s, %s, %s)",
        (order, product, qty),
    )
    tx.write(f"line:{order}:{product}", 1, qty)


def naive(tx: Tx) -> None:
    cart = _draw(tx)
    rows = tx.query(
        "SELECT id, stock, version FROM products WHERE id = ANY(%s) ORDER BY id",
        ([p for p, _ in cart],),
    )
    stock = {}
    for product, level, version in rows:
        tx.read(f"product:{product}", version, level)
        stock[product] = level
    if any(stock[p] < qty for p, qty in cart):
        tx.decline("out of stock")
    tx.think()
    order = _order(tx, cart)
    for product, qty in sorted(cart):  # id order: naive oversells, but does not deadlock
        level, version = tx.one(
            "UPDATE products SET stock = stock - %s, version = version + 1 WHERE id = %s"
            " RETURNING stock, version",
            (qty, product),
        )
        tx.write(f"product:{product}", version, level)
        _line(tx, order, product, qty)


def guarded(tx: Tx) -> None:
    cart = _draw(tx)
    tx.think()
    order = _order(tx, cart)
    for product, qty in sorted(cart):
        row = tx.one(
            "UPDATE products SET stock = stock - %s, version = version + 1"
            " WHERE id = %s AND stock >= %s RETURNING stock, version",
            (qty, product, qty),
        )
        if row is None:
            tx.decline("out of stock")  # rolls back the order and its earlier lines
        tx.write(f"product:{product}", row[1], row[0])
        _line(tx, order, product, qty)


def _lock_and_buy(tx: Tx, cart: list, order_of_locks: list) -> None:
    stock = {}
    for i, (product, _) in enumerate(order_of_locks):
        level, version = tx.one(
            "SELECT stock, version FROM products WHERE id = %s FOR UPDATE", (product,)
        )
        tx.read(f"product:{product}", version, level)
        stock[product] = level
        if i == 0:
            tx.think()  # the pause falls between the first lock and the others
    if any(stock[p] < qty for p, qty in cart):
        tx.decline("out of stock")
    order = _order(tx, cart)
    for product, qty in sorted(cart):
        (version,) = tx.one(
            "UPDATE products SET stock = %s, version = version + 1 WHERE id = %s RETURNING version",
            (stock[product] - qty, product),
        )
        tx.write(f"product:{product}", version, stock[product] - qty)
        _line(tx, order, product, qty)


def for_update(tx: Tx) -> None:
    cart = _draw(tx)
    _lock_and_buy(tx, cart, sorted(cart))


def for_update_unsorted(tx: Tx) -> None:
    cart = _draw(tx)
    _lock_and_buy(tx, cart, cart)


# ---------------------------------------------------------------- the ORM strategy


@functools.cache
def _orm() -> SimpleNamespace:
    """SQLAlchemy models of the scenario's tables, built on first use (not at import)."""
    from sqlalchemy import ForeignKey
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

    class Base(DeclarativeBase):
        pass

    class Product(Base):
        __tablename__ = "products"
        id: Mapped[int] = mapped_column(primary_key=True)
        stock: Mapped[int]
        initial_stock: Mapped[int]
        version: Mapped[int] = mapped_column()
        __mapper_args__ = {"version_id_col": version}  # UPDATE ... WHERE version = :read

    class OrderLine(Base):
        __tablename__ = "order_lines"
        order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
        product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
        qty: Mapped[int]
        version: Mapped[int] = mapped_column(default=1)

    class Order(Base):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(primary_key=True)
        line_count: Mapped[int]
        version: Mapped[int] = mapped_column(default=1)
        lines: Mapped[list[OrderLine]] = relationship()

    return SimpleNamespace(Product=Product, Order=Order, OrderLine=OrderLine)


def orm_session(tx: Tx):
    """An ORM Session on the worker's own connection, inside txlab's transaction.

    The engine's only connection is the one txlab opened (autocommit mode, with
    BEGIN sent by `tx.connection`), so SQLAlchemy never opens another.
    psycopg2 makes commit() and rollback() no-ops in autocommit mode, so neither
    the Session nor the pool can end txlab's transaction: txlab sends COMMIT or
    ROLLBACK itself. The engine is per transaction (about a millisecond).
    """
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import StaticPool

    engine = create_engine(  # connects (so sends BEGIN) only at the first query
        "postgresql+psycopg2://", creator=lambda: tx.connection, poolclass=StaticPool,
        pool_reset_on_return=None, use_native_hstore=False,
    )
    return Session(engine, autoflush=False, expire_on_commit=False)


def orm_optimistic(tx: Tx) -> None:
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm.exc import StaleDataError

    m = _orm()
    cart = _draw(tx)
    with orm_session(tx) as session:
        try:
            query = select(m.Product).where(m.Product.id.in_([p for p, _ in cart]))
            products = {p.id: p for p in session.scalars(query.order_by(m.Product.id))}
            for p in products.values():
                tx.read(f"product:{p.id}", p.version, p.stock)
            if any(products[p].stock < qty for p, qty in cart):
                tx.decline("out of stock")
            tx.think()
            for product, qty in cart:
                products[product].stock -= qty
            order = m.Order(
                line_count=len(cart),
                lines=[m.OrderLine(product_id=p, qty=qty) for p, qty in cart],
            )
            session.add(order)
            session.flush()  # UPDATE products ... WHERE id = ? AND version = ?
        except StaleDataError as exc:
            tx.conflict(str(exc).split(".")[0])
        except DBAPIError as exc:  # let txlab classify the driver error by SQLSTATE
            raise exc.orig from None
        for p in sorted(products.values(), key=lambda p: p.id):
            tx.write(f"product:{p.id}", p.version, p.stock)
        tx.write(f"order:{order.id}", 1, len(cart))
        for p, qty in cart:
            tx.write(f"line:{order.id}:{p}", 1, qty)


# ---------------------------------------------------------------- schema and invariants


def setup(s: Setup) -> None:
    p = s.params
    s.execute(
        "CREATE TABLE products (id int PRIMARY KEY, stock int NOT NULL,"
        " initial_stock int NOT NULL, version int NOT NULL DEFAULT 1)"
    )
    s.execute(
        "CREATE TABLE orders (id bigserial PRIMARY KEY, line_count int NOT NULL,"
        " version int NOT NULL DEFAULT 1)"
    )
    s.execute(
        "CREATE TABLE order_lines (order_id bigint NOT NULL REFERENCES orders,"
        " product_id int NOT NULL REFERENCES products, qty int NOT NULL CHECK (qty > 0),"
        " version int NOT NULL DEFAULT 1, PRIMARY KEY (order_id, product_id))"
    )
    s.execute("CREATE INDEX ON order_lines (product_id)")
    s.execute(
        "INSERT INTO products (id, stock, initial_stock)"
        " SELECT g, %s, %s FROM generate_series(1, %s) g",
        (p["stock"], p["stock"], p["products"]),
    )
    for product in range(1, p["products"] + 1):
        s.initial(f"product:{product}", 1, p["stock"])


def stock_not_negative(db: Check) -> Verdict:
    rows = db.query("SELECT id, stock FROM products WHERE stock < 0 ORDER BY id")
    detail = listed((f"product {i}: {s}" for i, s in rows), sep=", ")
    return Verdict(not rows, "0 products below 0", f"{len(rows)} products below 0", detail,
                   f"{len(rows)} products were oversold: their stock went below zero ({detail})")


def stock_conserved(db: Check) -> Verdict:
    rows = db.query(
        """SELECT p.id, p.initial_stock, p.stock, coalesce(sum(l.qty), 0) AS sold
             FROM products p LEFT JOIN order_lines l ON l.product_id = p.id
            GROUP BY p.id HAVING p.initial_stock <> p.stock + coalesce(sum(l.qty), 0)
            ORDER BY p.id"""
    )
    detail = listed(
        (f"product {i}: initial {init}, remaining {left} + sold {sold} = {left + sold}"
         for i, init, left, sold in rows), limit=3)
    return Verdict(not rows, "initial = remaining + sold for every product",
                   f"{len(rows)} products disagree", detail)


def no_partial_orders(db: Check) -> Verdict:
    rows = db.query(
        """SELECT o.id, o.line_count, count(l.order_id)
             FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id
            GROUP BY o.id HAVING count(l.order_id) <> o.line_count ORDER BY o.id"""
    )
    detail = listed(f"order {o}: {n} of {want} lines" for o, want, n in rows)
    return Verdict(not rows, "every order has all its lines", f"{len(rows)} partial orders", detail)


SCENARIO = Scenario(
    name="limited-stock-cart",
    summary="Checkouts buy 1-5 products with limited stock; is anything oversold?",
    teaches="oversell by check-then-act (lost update, P4), deadlock, optimistic locking",
    description=__doc__,
    knobs=(
        Knob("products", 5, "number of products (few = more contention)", min=1,
             limit=100_000),
        Knob("stock", 20, "initial stock of every product", min=0, limit=10**9),
        Knob("max_lines", 5, "most distinct products in one cart", min=1, limit=1000),
        Knob("max_qty", 3, "largest quantity of one product in a cart", min=1),
    ),
    setup=setup,
    strategies=(
        Strategy("naive", naive,
                 "SELECT the stock, check in Python, then UPDATE stock = stock - qty",
                 safe_at=("repeatable-read", "serializable"),
                 risk="two orders can read the same stock, both pass the check in Python and "
                      "both subtract, so the last items are sold twice"),
        Strategy("guarded", guarded,
                 "UPDATE ... WHERE stock >= qty per line; a line that fails declines the whole order",
                 safe_at=ALL_LEVELS),
        Strategy("for-update", for_update,
                 "SELECT ... FOR UPDATE each product in id order, check, then write",
                 safe_at=ALL_LEVELS),
        Strategy("for-update-unsorted", for_update_unsorted,
                 "SELECT ... FOR UPDATE in the cart's random order: deadlocks (40P01)",
                 safe_at=ALL_LEVELS),
        Strategy("orm-optimistic", orm_optimistic,
                 "SQLAlchemy ORM with version_id_col; StaleDataError is a retryable version conflict",
                 safe_at=ALL_LEVELS),
    ),
    invariants=(
        Invariant("stock never negative", stock_not_negative),
        Invariant("initial stock = remaining + sold", stock_conserved),
        Invariant("no partial orders", no_partial_orders),
    ),
)
