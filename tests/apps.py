"""Application code for txlab.testing's tests: the seat-booking app of
docs/examples/seat-booking/seats.py with its invariant, and a one-line SQL helper."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import psycopg2
from sqlalchemy import text

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "examples" / "seat-booking"
_found = importlib.util.spec_from_file_location("txlab_doc_seats", FOLDER / "seats.py")
seats = importlib.util.module_from_spec(_found)
_found.loader.exec_module(seats)


def one_booking(session) -> bool:
    """At most one booking of seat 12A."""
    return session.scalar(text("SELECT count(*) FROM bookings WHERE seat_id = '12A'")) <= 1


def create(engine) -> None:
    """The app's tables (its own create_all) and two seats."""
    seats.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(seats.Seat.__table__.insert(), [{"id": "12A"}, {"id": "12B"}])


def sql(dsn: str, statement: str) -> list[tuple] | None:
    """Run SQL in autocommit on a connection of its own; the rows, if any."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()
