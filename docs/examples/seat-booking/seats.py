"""A small booking app (SQLAlchemy ORM), tested in docs/testing-your-code.md.

`reserve_seat` is what many of us write first: count the seat's bookings, insert
one if there are none, commit. `reserve_seat_locked` first locks the seat's row,
so a second booker of the same seat waits for the first to commit, then counts.
`reserve_seat_retrying` keeps the naive code and runs it at SERIALIZABLE,
trying again when PostgreSQL reports a serialization failure (40001).
"""

from sqlalchemy import ForeignKey, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Seat(Base):
    __tablename__ = "seats"
    id: Mapped[str] = mapped_column(primary_key=True)


class Booking(Base):
    __tablename__ = "bookings"
    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[str] = mapped_column(ForeignKey("seats.id"))
    customer: Mapped[str]


def reserve_seat(session, seat_id, customer):
    taken = session.scalar(select(func.count()).where(Booking.seat_id == seat_id))
    if taken:
        return False
    session.add(Booking(seat_id=seat_id, customer=customer))
    session.commit()
    return True


def reserve_seat_locked(session, seat_id, customer):
    session.get(Seat, seat_id, with_for_update=True)  # waits while another booker holds it
    return reserve_seat(session, seat_id, customer)


def reserve_seat_retrying(session, seat_id, customer, attempts=5):
    for attempt in range(attempts):
        try:
            return reserve_seat(session, seat_id, customer)
        except OperationalError as exc:
            session.rollback()
            if exc.orig.pgcode != "40001" or attempt == attempts - 1:
                raise
