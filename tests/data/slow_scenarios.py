"""Scenarios for the fault tests: a COMMIT that takes a while (a deferred constraint
trigger sleeps), and an invariant that takes a while, so that a test can crash the
server during a COMMIT or its setup, or interrupt txlab during its checks,
deterministically."""

from txlab.scenario import Check, Invariant, Knob, Scenario, Setup, Strategy, Tx, Verdict


def setup(s: Setup) -> None:
    if s.params["setup_ms"]:  # a setup that takes a while (a server restarted under it)
        s.execute(f"SELECT pg_sleep({int(s.params['setup_ms'])} / 1000.0)")
    s.execute("CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL, version int NOT NULL)")
    s.execute("INSERT INTO counter SELECT g, 0, 1 FROM generate_series(1, 4) g")
    s.execute("CREATE TABLE log (id bigserial PRIMARY KEY, counter int NOT NULL)")
    for i in range(1, 5):
        s.initial(f"counter:{i}", 1, 0)
    # Every COMMIT of a transaction that wrote the log sleeps commit_ms first.
    s.execute(f"""CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN PERFORM pg_sleep({int(s.params['commit_ms'])} / 1000.0); RETURN NULL; END $$""")
    s.execute("""CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON log
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()""")


def bump(tx: Tx) -> None:
    c = tx.rng.randint(1, 4)
    version, n = tx.one("UPDATE counter SET n = n + 1, version = version + 1 WHERE id = %s"
                        " RETURNING version, n", (c,))
    tx.write(f"counter:{c}", version, n)
    tx.execute_later("INSERT INTO log (counter) VALUES (%s)", (c,))


def log_agrees(db: Check) -> Verdict:
    db.scalar("SELECT pg_sleep(%s / 1000.0)", (db.params["check_ms"],))
    total = db.scalar("SELECT coalesce(sum(n), 0) FROM counter")
    logged = db.scalar("SELECT count(*) FROM log")
    return Verdict(total == logged, logged, total)


def no_negative(db: Check) -> Verdict:
    bad = db.scalar("SELECT count(*) FROM counter WHERE n < 0")
    return Verdict(bad == 0, 0, bad)


SCENARIO = Scenario(
    name="slow-commit",
    summary="counters whose COMMIT sleeps (fault tests)",
    teaches="-",
    description=__doc__,
    knobs=(Knob("commit_ms", 0, "sleep in every COMMIT", min=0),
           Knob("check_ms", 0, "sleep in the first invariant", min=0),
           Knob("setup_ms", 0, "sleep in the setup", min=0)),
    setup=setup,
    strategies=(Strategy("bump", bump, "one UPDATE, a logged INSERT, a slow COMMIT",
                         safe_at=("read-committed",)),),
    invariants=(Invariant("counters agree with the log", log_agrees),
                Invariant("no negative counter", no_negative)),
)
