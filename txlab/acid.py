"""ACID, shown on a real PostgreSQL: one small, narrated experiment per letter.

Each experiment returns plain data (a title, why it matters, the steps with
what the database answered, and a verdict); `render` prints it. Atomicity and
consistency work in txlab's own schema (`txlab_acid`); isolation reuses the
interleaving demos; durability crashes and restarts an embedded server that
txlab started, and refuses any other server. Once it crashed the server, it
starts it again whatever interrupts it (`restart`).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

from txlab import db, server, signals
from txlab.errors import DatabaseError, UsageError

SCHEMA = "txlab_acid"
PARTS = ("atomicity", "consistency", "isolation", "durability")


@dataclass
class Step:
    action: str  # what was done (SQL or an operation)
    outcome: str  # what the database answered


@dataclass
class Experiment:
    part: str
    title: str
    why: str
    steps: list[Step] = field(default_factory=list)
    verdict: str = ""
    held: bool = True  # did the property hold?

    def did(self, action: str, outcome: str) -> None:
        self.steps.append(Step(action, outcome))


def _exec(cur, sql: str, args=None) -> str:
    """Run one statement; the command tag, the rows, or the error with its SQLSTATE."""
    try:
        cur.execute(sql, args)
    except psycopg2.Error as exc:
        return f"ERROR {exc.pgcode}: {db.first_line(exc)}"
    if cur.description is not None:
        rows = cur.fetchall()
        return ", ".join("(" + ", ".join(str(v) for v in r) + ")" for r in rows) or "(no rows)"
    return cur.statusmessage or "OK"


def _fresh(dsn: str) -> psycopg2.extensions.connection:
    conn = db.connect(dsn, "txlab-acid")
    db.reset_schema(conn, SCHEMA)
    with conn.cursor() as cur:
        cur.execute(f"SET search_path = {SCHEMA}")
    return conn


def _balances(cur) -> str:
    return _exec(cur, "SELECT name, balance FROM accounts ORDER BY name")


# ---------------------------------------------------------------- atomicity


def atomicity(dsn: str) -> list[Experiment]:
    out = []
    conn = _fresh(dsn)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE accounts (name text PRIMARY KEY, "
                    "balance int NOT NULL CHECK (balance >= 0))")
        cur.execute("INSERT INTO accounts VALUES ('A', 100), ('B', 0)")

        e = Experiment("atomicity", "A transfer whose second statement fails",
                       "A transaction is all or nothing: if any statement fails, none of its "
                       "effects remain, so money is never created or destroyed half-way.")
        e.did("BEGIN", _exec(cur, "BEGIN"))
        e.did("UPDATE accounts SET balance = balance + 150 WHERE name = 'B'  -- credit first",
              _exec(cur, "UPDATE accounts SET balance = balance + 150 WHERE name = 'B'"))
        e.did("UPDATE accounts SET balance = balance - 150 WHERE name = 'A'  -- A has only 100",
              _exec(cur, "UPDATE accounts SET balance = balance - 150 WHERE name = 'A'"))
        e.did("COMMIT", _exec(cur, "COMMIT") + "  (a failed transaction cannot commit)")
        after = _balances(cur)
        e.did("SELECT name, balance FROM accounts", after)
        e.held = after == "(A, 100), (B, 0)"
        e.verdict = ("HELD: B's credit was undone with the failed debit; balances are as before"
                     if e.held else f"VIOLATED: partial effect left behind: {after}")
        out.append(e)

        e = Experiment("atomicity", "The session dies between the two updates",
                       "A crash or a killed connection mid-transaction leaves no partial effect: "
                       "uncommitted work is never visible and is discarded.")
        victim = db.connect(dsn, "txlab-acid-victim")
        vcur = victim.cursor()
        vcur.execute(f"SET search_path = {SCHEMA}")
        e.did("(victim) BEGIN", _exec(vcur, "BEGIN"))
        e.did("(victim) UPDATE accounts SET balance = balance - 30 WHERE name = 'A'",
              _exec(vcur, "UPDATE accounts SET balance = balance - 30 WHERE name = 'A'"))
        pid = victim.get_backend_pid()
        e.did("(another session) SELECT pg_terminate_backend(<victim>)",
              _exec(cur, "SELECT pg_terminate_backend(%s)", (pid,)))
        for _ in range(100):  # wait until the backend is gone
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.02)
        try:
            vcur.execute("UPDATE accounts SET balance = balance + 30 WHERE name = 'B'")
            answer = vcur.statusmessage
        except psycopg2.Error as exc:
            answer = f"connection lost: {db.first_line(exc)}"
        e.did("(victim) UPDATE accounts SET balance = balance + 30 WHERE name = 'B'", answer)
        victim.close()
        after = _balances(cur)
        e.did("SELECT name, balance FROM accounts", after)
        e.held = after == "(A, 100), (B, 0)"
        e.verdict = ("HELD: the debit of the killed transaction vanished with it"
                     if e.held else f"VIOLATED: {after}")
        out.append(e)
    finally:
        db.drop_schema(conn, SCHEMA)
        conn.close()
    return out


# ---------------------------------------------------------------- consistency


def consistency(dsn: str) -> list[Experiment]:
    conn = _fresh(dsn)
    out = []
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE accounts (name text PRIMARY KEY, "
                    "balance int NOT NULL CHECK (balance >= 0))")
        cur.execute("CREATE TABLE transfers (id int PRIMARY KEY, "
                    "src text NOT NULL REFERENCES accounts, dst text NOT NULL REFERENCES accounts, "
                    "amount int NOT NULL CHECK (amount > 0))")
        cur.execute("INSERT INTO accounts VALUES ('A', 100), ('B', 0)")
        cases = [
            ("CHECK: no negative balance", "23514",
             "UPDATE accounts SET balance = balance - 500 WHERE name = 'A'"),
            ("FOREIGN KEY: a transfer to an account that does not exist", "23503",
             "INSERT INTO transfers VALUES (1, 'A', 'Z', 10)"),
            ("UNIQUE (primary key): two accounts with one name", "23505",
             "INSERT INTO accounts VALUES ('A', 50)"),
        ]
        for title, code, bad in cases:
            e = Experiment("consistency", title,
                           "Constraints declare what a valid state is; the database refuses any "
                           "transaction that would end in an invalid one, whatever the application "
                           "does.")
            e.did("BEGIN", _exec(cur, "BEGIN"))
            e.did("UPDATE accounts SET balance = balance + 1 WHERE name = 'B'  -- a valid change",
                  _exec(cur, "UPDATE accounts SET balance = balance + 1 WHERE name = 'B'"))
            answer = _exec(cur, bad)
            e.did(bad, answer)
            e.did("COMMIT", _exec(cur, "COMMIT"))
            after = _balances(cur)
            e.did("SELECT name, balance FROM accounts", after)
            count = _exec(cur, "SELECT count(*) FROM transfers")
            e.held = answer.startswith(f"ERROR {code}") and after == "(A, 100), (B, 0)" \
                and count == "(0)"
            e.verdict = (f"HELD: refused with {code}; the whole transaction rolled back, the valid "
                         "change included" if e.held else f"VIOLATED: {answer}; {after}")
            out.append(e)
    finally:
        db.drop_schema(conn, SCHEMA)
        conn.close()
    return out


# ---------------------------------------------------------------- isolation


def isolation(dsn: str) -> list[Experiment]:
    from txlab.interleave import demo

    out = []
    for name, why in (
        ("p4", "Two transactions read a balance and write it back. Whether one silently "
               "overwrites the other depends on the isolation level."),
        ("g2-item", "Two transactions each check a rule and change a different row: "
                    "snapshot isolation lets both commit (write skew); SERIALIZABLE does not."),
    ):
        e = Experiment("isolation", name, why)
        ok = True
        for level in ("read-committed", "serializable"):
            result = demo.run_demo(name, dsn, level)
            e.title = result.meta.title or name
            v = result.levels[0].verdicts[0]
            e.did(f"txlab demo {name} --isolation {level}", v.line)
            ok = ok and v.as_expected is not False
        e.held = ok
        e.verdict = ("As expected: READ COMMITTED lets the anomaly through, SERIALIZABLE prevents "
                     f"it (see `txlab demo {name} --isolation all`)" if ok
                     else "UNEXPECTED: an outcome differs from the verified behaviour")
        out.append(e)
    return out


# ---------------------------------------------------------------- durability


def durability(database: server.Database) -> list[Experiment]:
    pgdata = database.embedded
    if pgdata is None:
        raise UsageError(
            "the durability demo crashes the server (pg_ctl stop -m immediate) and restarts it, "
            f"so it only runs on an embedded server that txlab started; {database.source} is not "
            "one. Run it without --dsn (a temporary server is started), or after "
            "`txlab server start`.")
    e = Experiment("durability", "Committed rows survive a crash; in-flight ones do not",
                   "Once COMMIT returns, the change is in the write-ahead log on disk: a crash "
                   "(here: an immediate shutdown, no checkpoint) cannot lose it, and crash "
                   "recovery discards every transaction that had not committed.")
    conn = _fresh(database.dsn)
    cur = conn.cursor()
    cur.execute("CREATE TABLE ledger (id int PRIMARY KEY, note text NOT NULL)")
    e.did("INSERT INTO ledger VALUES (1, 'committed'), (2, 'committed'); COMMIT",
          _exec(cur, "INSERT INTO ledger VALUES (1, 'committed'), (2, 'committed')"))
    inflight = db.connect(database.dsn, "txlab-acid-inflight")
    icur = inflight.cursor()
    icur.execute(f"SET search_path = {SCHEMA}")
    e.did("(another session) BEGIN", _exec(icur, "BEGIN"))
    e.did("(another session) INSERT INTO ledger VALUES (3, 'in flight')  -- not committed",
          _exec(icur, "INSERT INTO ledger VALUES (3, 'in flight')"))
    conn.close()
    log = pgdata / "log"
    log_start = log.stat().st_size if log.exists() else 0
    try:
        stopped = server.pg_ctl(pgdata, "-w", "-m", "immediate", "stop")
        e.did("pg_ctl stop -m immediate  -- simulated crash",
              " ".join((stopped.stdout + stopped.stderr).split()) or f"exit {stopped.returncode}")
        try:
            inflight.close()
        except psycopg2.Error:
            pass
        if stopped.returncode != 0:
            raise DatabaseError(f"pg_ctl stop -m immediate failed: {stopped.stderr.strip()}")
    except BaseException:  # an interrupt too: the server is started again before it goes on
        restart(database)
        _drop_quietly(database)  # nor is the demo's schema left behind
        raise
    try:
        restart(database)
    except BaseException:
        _drop_quietly(database)
        raise
    e.did("pg_ctl restart  -- crash recovery replays the write-ahead log", "server started")
    recovery = _recovery_lines(log, log_start)
    if recovery:
        e.did("(the server's log while it restarted)", "\n".join(recovery))
    conn = db.connect(database.dsn, "txlab-acid")
    try:
        cur = conn.cursor()
        rows = _exec(cur, f"SELECT id, note FROM {SCHEMA}.ledger ORDER BY id")
        e.did("SELECT id, note FROM ledger", rows)
        e.held = rows == "(1, committed), (2, committed)"
        e.verdict = ("HELD: both committed rows survived the crash; the uncommitted row 3 is gone"
                     if e.held else f"VIOLATED: after recovery the table holds {rows}")
    finally:
        db.drop_schema(conn, SCHEMA)
        conn.close()
    return [e]


def _drop_quietly(database: server.Database) -> None:
    """The durability demo's schema, dropped on the way out of an interrupted demo (if
    the server is up to do it; else the next demo recreates it)."""
    try:
        conn = db.connect(database.dsn, "txlab-acid")
    except (psycopg2.Error, OSError):
        return
    try:
        db.drop_schema(conn, SCHEMA)
    except psycopg2.Error:
        pass
    finally:
        conn.close()


def restart(database: server.Database) -> None:
    """Start the crashed server again (crash recovery), whatever interrupts meanwhile:
    Ctrl-C, SIGTERM and SIGHUP only wait until it is up (then KeyboardInterrupt), and
    pg_ctl runs in a process group of its own, out of reach of the terminal's Ctrl-C.
    If it cannot be started, a DatabaseError says so, with the command that starts it."""
    pgdata = database.embedded
    with signals.deferred() as interrupts:
        try:
            started = server.pg_ctl(pgdata, "-w", "-l", str(pgdata / "log"), "restart",
                                    timeout=180, start_new_session=True)
            failure = "" if started.returncode == 0 and server.postmaster_pid(pgdata) else \
                " ".join((started.stdout + started.stderr).split()) or f"exit {started.returncode}"
        except (OSError, subprocess.SubprocessError) as exc:
            failure = str(exc)
    if failure:
        how = ("; it is stopped: start it again with `txlab server start`"
               if "persistent" in database.source else "")
        raise DatabaseError(f"the server crashed by the durability demo could not be restarted "
                            f"({failure}){how}")
    if interrupts:
        raise KeyboardInterrupt


def _recovery_lines(log: Path, start: int) -> list[str]:
    try:
        with log.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    keys = ("was interrupted", "not properly shut down", "redo starts", "redo done",
            "automatic recovery", "ready to accept")
    out = []
    for line in text.splitlines():
        if any(k in line for k in keys):
            out.append(line.split("LOG:", 1)[-1].strip())
    return out


# ---------------------------------------------------------------- all


def crashes(part: str, database: server.Database) -> bool:
    """Would running `part` crash (and restart) this database's server?"""
    return part in ("durability", "all") and database.embedded is not None


def run(part: str, database: server.Database, crash: bool = True) -> list[Experiment]:
    """Run `part` (or all); `crash=False` leaves durability out of `all`."""
    if part not in (*PARTS, "all"):
        raise UsageError(f"unknown part {part!r}; choose one of: {', '.join(PARTS)}, all")
    parts = PARTS if part == "all" else (part,)
    if "durability" in parts and part == "all" and (database.embedded is None or not crash):
        parts = tuple(p for p in parts if p != "durability")
    out = []
    # Owned for the whole command (the durability crash ends the lock's session
    # early; the schema is dropped right after).
    with db.schema_owner(database.dsn, SCHEMA, "acid"):
        for p in parts:
            if p == "durability":
                out += durability(database)
            else:
                out += globals()[p](database.dsn)
    return out


SKIPPED = ("Skipped: it crashes and restarts the server, so it runs only on an embedded "
           "server txlab started (no --dsn), and on the persistent one only when confirmed.")


def to_dict(experiments: list[Experiment], skipped_durability: bool = False) -> dict:
    return {"experiments": [asdict(e) for e in experiments],
            "held": all(e.held for e in experiments),
            "skipped": ["durability"] if skipped_durability else []}


def render(experiments: list[Experiment], skipped_durability: bool = False, fmt: str = "text",
           term=None) -> str:
    """text (fitted to `term`, default plain 80 columns) or json."""
    d = to_dict(experiments, skipped_durability)
    if fmt == "json":
        return json.dumps(d, indent=2) + "\n"
    from rich.console import Group
    from rich.text import Text

    from txlab import term as term_mod

    t = term or term_mod.plain()
    parts: list = []
    current = None
    for e in d["experiments"]:
        if e["part"] != current:
            current = e["part"]
            parts += ["", term_mod.heading(current.upper()), term_mod.heading("=" * len(current))]
        parts += ["", term_mod.heading(e["title"]),
                  Text(term_mod.wrapped(f"Why it matters: {e['why']}", t, indent=2, hang=2)), ""]
        for step in e["steps"]:
            parts += [Text(line) for line in _action(step["action"], t.width)]
            for line in step["outcome"].splitlines():
                parts.append(_outcome(term_mod.wrapped(line, t, indent=6, hang=2)))
        verdict = e["verdict"]
        word, sep, rest = verdict.partition(":")
        # wrapped here with its indent (rich would wrap continuation lines to column 0)
        lines = term_mod.wrapped(verdict, t, indent=2, hang=2)
        line = Text(lines)
        line.stylize(term_mod.style_of(word) or "", 2, 2 + len(word))
        parts += ["", line]
    if d["skipped"]:
        parts += ["", term_mod.heading("DURABILITY"), term_mod.heading("=========="), "",
                  Text(term_mod.wrapped(SKIPPED, t, indent=2, hang=2))]
    while parts and parts[0] == "":
        parts.pop(0)
    return term_mod.to_text(Group(*parts), t)


def _action(action: str, width: int) -> list[str]:
    """`  > SQL  -- comment`; when too wide, the comment goes on its own line and the
    SQL is shortened with an ellipsis."""
    line = "  > " + action
    if len(line) <= width:
        return [line]
    sql, sep, comment = action.partition("  -- ")
    out = ["  > " + _shorten(sql, width - 4)]
    if sep:
        out.append("    " + _shorten("-- " + comment, width - 4))
    return out


def _shorten(text: str, width: int) -> str:
    from txlab import term as term_mod

    return term_mod.shorten(text, width)


def _outcome(text: str):
    from rich.text import Text

    from txlab import term as term_mod

    out = Text(text)
    if text.lstrip().startswith("ERROR"):
        out.stylize(term_mod.STYLES["aborted"])
    return out
