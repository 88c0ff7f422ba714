"""page-views: many visitors bump one counter; does every visit count?

The worked example of docs/writing-scenarios.md (the tests run it).
"""

from txlab.scenario import Check, Invariant, Knob, Scenario, Setup, Strategy, Tx, Verdict


def setup(s: Setup) -> None:
    s.execute("CREATE TABLE pages (id int PRIMARY KEY, views bigint NOT NULL,"
              " version int NOT NULL DEFAULT 1)")
    s.execute("CREATE TABLE visits (id bigserial PRIMARY KEY, page int NOT NULL)")
    for page in range(1, s.params["pages"] + 1):
        s.execute("INSERT INTO pages VALUES (%s, 0, 1)", (page,))
        s.initial(f"page:{page}", 1, 0)


def read_then_write(tx: Tx) -> None:
    page = tx.rng.randint(1, tx.params["pages"])
    views, version = tx.one("SELECT views, version FROM pages WHERE id = %s", (page,))
    tx.read(f"page:{page}", version, views)
    tx.think()
    (new_version,) = tx.one(
        "UPDATE pages SET views = %s, version = version + 1 WHERE id = %s RETURNING version",
        (views + 1, page))
    tx.write(f"page:{page}", new_version, views + 1)
    tx.execute("INSERT INTO visits (page) VALUES (%s)", (page,))


def increment(tx: Tx) -> None:
    page = tx.rng.randint(1, tx.params["pages"])
    tx.think()
    views, version = tx.one(
        "UPDATE pages SET views = views + 1, version = version + 1 WHERE id = %s"
        " RETURNING views, version", (page,))
    tx.write(f"page:{page}", version, views)
    tx.execute("INSERT INTO visits (page) VALUES (%s)", (page,))


def every_visit_counted(db: Check) -> Verdict:
    counted = db.scalar("SELECT coalesce(sum(views), 0) FROM pages")
    visits = db.scalar("SELECT count(*) FROM visits")
    return Verdict(counted == visits, visits, counted,
                   "" if counted == visits else f"{visits - counted} visits lost")


SCENARIO = Scenario(
    name="page-views",
    summary="Visitors bump a view counter; does every visit count?",
    teaches="lost update (P4)",
    description=__doc__,
    knobs=(Knob("pages", 1, "number of counters", min=1),),
    setup=setup,
    strategies=(
        Strategy("read-then-write", read_then_write, "SELECT the count, UPDATE it to count + 1",
                 safe_at=("repeatable-read", "serializable")),
        Strategy("increment", increment, "UPDATE ... SET views = views + 1",
                 safe_at=("read-uncommitted", "read-committed", "repeatable-read", "serializable")),
    ),
    invariants=(Invariant("every visit counted", every_visit_counted),),
)
