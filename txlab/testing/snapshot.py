"""The tables of one schema: capture them, put them back, and write them as SQL.

`capture` reads the schema's tables (columns, constraints, indexes, enum types,
sequences) and their rows; `restore` empties the tables and copies the rows back
(parents before children) and resets the sequences, so that every schedule starts
from the same state; `setup_sql`/`teardown_sql` write the same state as plain SQL
for an isolation-tester spec; `final_state_sql` is one query showing every row.

What it does not carry: functions, triggers, views, domains, composite types,
partitioned tables, and tables that other schemas reference.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from psycopg2 import sql


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default: str | None
    not_null: bool
    identity: str  # "" | "a" (ALWAYS) | "d" (BY DEFAULT)
    generated: str  # "" | "s" (STORED) | "v" (VIRTUAL)


@dataclass(frozen=True)
class Sequence:
    name: str
    definition: str  # "AS integer INCREMENT BY 1 ..."
    increment: int
    owner: tuple[str, str] | None  # (table, column) it is owned by
    identity: bool
    last_value: int
    is_called: bool


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[tuple[str, str], ...]  # (name, definition), not foreign keys
    foreign_keys: tuple[tuple[str, str, str], ...]  # (name, definition, referenced table)
    indexes: tuple[str, ...]  # CREATE INDEX statements, unqualified
    data: bytes  # COPY text format
    rows: tuple[str, ...]  # each row as "lit, lit, ..." for an INSERT

    @property
    def copied(self) -> tuple[str, ...]:
        """Columns that take values (generated columns compute theirs)."""
        return tuple(c.name for c in self.columns if not c.generated)


@dataclass(frozen=True)
class State:
    schema: str
    enums: tuple[tuple[str, tuple[str, ...]], ...]
    sequences: tuple[Sequence, ...]
    tables: tuple[Table, ...]  # parents before children


# ---------------------------------------------------------------- capture


def current_schema(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT current_schema()")
        return cur.fetchone()[0]


def capture(conn, schema: str) -> State:
    """Read `schema`'s tables and rows through `conn` (autocommit), in one snapshot."""
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            # Render names as seen from inside the schema (unqualified).
            cur.execute("SELECT set_config('search_path', quote_ident(%s), true)", (schema,))
            state = _capture(cur, schema)
        finally:
            cur.execute("ROLLBACK")
    return state


def _capture(cur, schema: str) -> State:
    cur.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,))
    row = cur.fetchone()
    if row is None:
        return State(schema, (), (), ())
    ns = row[0]
    cur.execute("SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) "
                "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "WHERE t.typnamespace = %s GROUP BY t.typname ORDER BY t.typname", (ns,))
    enums = tuple((name, tuple(labels)) for name, labels in cur.fetchall())
    cur.execute("SELECT oid, relname FROM pg_class WHERE relnamespace = %s AND relkind = 'r' "
                "ORDER BY relname", (ns,))
    tables = [_table(cur, schema, oid, name) for oid, name in cur.fetchall()]
    return State(schema, enums, _sequences(cur, ns), tuple(_parents_first(tables)))


def _table(cur, schema: str, oid: int, name: str) -> Table:
    cur.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                "pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.attidentity, a.attgenerated "
                "FROM pg_attribute a LEFT JOIN pg_attrdef d "
                "ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum) "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (oid,))
    columns = tuple(Column(*r) for r in cur.fetchall())
    cur.execute("SELECT conname, contype, pg_get_constraintdef(oid), confrelid::regclass::text "
                "FROM pg_constraint WHERE conrelid = %s AND contype IN ('p', 'u', 'c', 'x', 'f') "
                "ORDER BY contype <> 'p', conname", (oid,))
    constraints, fks = [], []
    for cname, kind, definition, referenced in cur.fetchall():
        if kind == "f":
            fks.append((cname, definition, referenced))
        else:
            constraints.append((cname, definition))
    # pg_get_indexdef always qualifies the table: take the schema out.
    cur.execute("SELECT replace(pg_get_indexdef(i.indexrelid), "
                "' ON ' || quote_ident(%s) || '.', ' ON ') "
                "FROM pg_index i WHERE i.indrelid = %s "
                "AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid "
                "AND c.conrelid = i.indrelid) ORDER BY i.indexrelid", (schema, oid))
    indexes = tuple(d for (d,) in cur.fetchall())
    table = sql.Identifier(name)
    copied = [c.name for c in columns if not c.generated]
    cols = sql.SQL(", ").join(map(sql.Identifier, copied))
    buf = io.BytesIO()
    cur.copy_expert(sql.SQL("COPY {} ({}) TO STDOUT").format(table, cols).as_string(cur), buf)
    literals = sql.SQL(", ").join(
        sql.SQL("quote_nullable({})").format(sql.Identifier(c)) for c in copied)
    cur.execute(sql.SQL("SELECT concat_ws(', ', {}) FROM {}").format(literals, table))
    rows = tuple(r[0] for r in cur.fetchall())
    return Table(name, columns, tuple(constraints), tuple(fks), indexes, buf.getvalue(), rows)


def _sequences(cur, ns: int) -> tuple[Sequence, ...]:
    cur.execute("SELECT c.oid, c.relname, format_type(s.seqtypid, NULL), s.seqincrement, "
                "s.seqmin, s.seqmax, s.seqstart, s.seqcycle, "
                "(SELECT array[t.relname, a.attname, d.deptype::text] FROM pg_depend d "
                " JOIN pg_class t ON t.oid = d.refobjid "
                " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
                " AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) "
                "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
                "WHERE c.relnamespace = %s ORDER BY c.relname", (ns,))
    out = []
    for _oid, name, typ, inc, lo, hi, start, cycle, owner in cur.fetchall():
        cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(name)))
        last, called = cur.fetchone()
        definition = (f"AS {typ} INCREMENT BY {inc} MINVALUE {lo} MAXVALUE {hi} START WITH {start}"
                      + (" CYCLE" if cycle else ""))
        own = (owner[0], owner[1]) if owner else None
        out.append(Sequence(name, definition, inc, own, bool(owner and owner[2] == "i"), last,
                            called))
    return tuple(out)


def _parents_first(tables: list[Table]) -> list[Table]:
    """Order tables so that a table comes after the tables its foreign keys reference."""
    by_name = {t.name: t for t in tables}
    done: list[Table] = []
    seen: set[str] = set()

    def visit(t: Table, path: frozenset) -> None:
        if t.name in seen or t.name in path:
            return
        for _, _, ref in t.foreign_keys:
            if ref in by_name and ref != t.name:
                visit(by_name[ref], path | {t.name})
        seen.add(t.name)
        done.append(t)

    for t in tables:
        visit(t, frozenset())
    return done


# ---------------------------------------------------------------- restore


def restore(conn, state: State) -> None:
    """Put the captured rows and sequence positions back, in one transaction."""
    if not state.tables and not state.sequences:
        return
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("SET LOCAL synchronous_commit = off")  # a test's state, not a bank's
            schema = sql.Identifier(state.schema)
            if state.tables:
                names = sql.SQL(", ").join(sql.SQL("{}.{}").format(schema, sql.Identifier(t.name))
                                           for t in state.tables)
                cur.execute(sql.SQL("TRUNCATE {}").format(names))
            for t in state.tables:
                if not t.data:
                    continue
                cols = sql.SQL(", ").join(map(sql.Identifier, t.copied))
                copy = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(schema, sql.Identifier(t.name),
                                                                     cols)
                cur.copy_expert(copy.as_string(cur), io.BytesIO(t.data))
            for s in state.sequences:
                cur.execute("SELECT setval(format('%%I.%%I', %s::text, %s::text)::regclass, %s, %s)",
                            (state.schema, s.name, s.last_value, s.is_called))
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


# ---------------------------------------------------------------- as SQL


def final_state_sql(state: State) -> str | None:
    """One query, one line: every table's rows as JSON, in a stable order."""
    if not state.tables:
        return None
    parts = []
    for t in sorted(state.tables, key=lambda t: t.name):
        name = _quote(t.name)
        parts.append(f"SELECT {_literal(t.name)} AS \"table\", coalesce((SELECT array_to_json("
                     f"array_agg(txlab_row ORDER BY txlab_row::text)) FROM {name} txlab_row)::text, "
                     "'[]') AS \"rows\"")
    return " UNION ALL ".join(parts) + " ORDER BY 1"


def setup_sql(state: State) -> str:
    """Statements that build the captured state in an empty schema (the search_path)."""
    out = [f"CREATE TYPE {_quote(name)} AS ENUM ({', '.join(map(_literal, labels))});"
           for name, labels in state.enums]
    out += [f"CREATE SEQUENCE {_quote(s.name)} {s.definition};"
            for s in state.sequences if not s.identity]
    for t in state.tables:
        lines = [_column_sql(c) for c in t.columns]
        lines += [f"CONSTRAINT {_quote(n)} {d}" for n, d in t.constraints]
        out.append(f"CREATE TABLE {_quote(t.name)} (\n    " + ",\n    ".join(lines) + "\n);")
        out += [f"{d};" for d in t.indexes]
    for s in state.sequences:
        if s.owner and not s.identity:
            out.append(f"ALTER SEQUENCE {_quote(s.name)} OWNED BY "
                       f"{_quote(s.owner[0])}.{_quote(s.owner[1])};")
    for t in state.tables:
        if t.rows:
            overriding = " OVERRIDING SYSTEM VALUE" if any(c.identity == "a" for c in t.columns) \
                else ""
            values = ",\n    ".join(f"({r})" for r in t.rows)
            out.append(f"INSERT INTO {_quote(t.name)} ({', '.join(map(_quote, t.copied))})"
                       f"{overriding} VALUES\n    {values};")
    for t in state.tables:
        out += [f"ALTER TABLE {_quote(t.name)} ADD CONSTRAINT {_quote(n)} {d};"
                for n, d, _ in t.foreign_keys]
    for s in state.sequences:  # ALTER, not setval(): a setup block's last SELECT would print
        if s.identity:
            out.append(f"ALTER TABLE {_quote(s.owner[0])} ALTER COLUMN {_quote(s.owner[1])} "
                       f"RESTART WITH {_restart(s)};")
        else:
            out.append(f"ALTER SEQUENCE {_quote(s.name)} RESTART WITH {_restart(s)};")
    return "\n".join(out)


def teardown_sql(state: State) -> str:
    out = []
    if state.tables:
        out.append(f"DROP TABLE {', '.join(_quote(t.name) for t in reversed(state.tables))};")
    free = [s.name for s in state.sequences if not s.owner]
    if free:
        out.append(f"DROP SEQUENCE {', '.join(map(_quote, free))};")
    if state.enums:
        out.append(f"DROP TYPE {', '.join(_quote(n) for n, _ in state.enums)};")
    return " ".join(out)


def _restart(s: Sequence) -> int:
    """The value nextval() returns next (what RESTART WITH sets)."""
    return s.last_value + s.increment if s.is_called else s.last_value


def _column_sql(c: Column) -> str:
    out = f"{_quote(c.name)} {c.type}"
    if c.identity:
        out += " GENERATED ALWAYS AS IDENTITY" if c.identity == "a" else \
            " GENERATED BY DEFAULT AS IDENTITY"
    elif c.generated:
        out += f" GENERATED ALWAYS AS ({c.default}) {'STORED' if c.generated == 's' else 'VIRTUAL'}"
    elif c.default is not None:
        out += f" DEFAULT {c.default}"
    if c.not_null and not c.identity:
        out += " NOT NULL"
    return out


def _quote(name: str) -> str:
    """An SQL identifier, quoted only when it has to be (as quote_ident does)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Reserved words that cannot stand as a table or column name unquoted (the usual ones).
_RESERVED = frozenset("""all analyse analyze and any array as asc asymmetric both case cast check
collate column constraint create current_catalog current_date current_role current_time
current_timestamp current_user default deferrable desc distinct do else end except false fetch
for foreign from grant group having in initially intersect into lateral leading limit localtime
localtimestamp not null offset on only or order placing primary references returning select
session_user some symmetric system_user table then to trailing true union unique user using
variadic when where window with""".split())
