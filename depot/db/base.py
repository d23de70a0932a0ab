"""Declarative base and the column types every domain shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from depot.errors import Conflict

__all__ = [
    "Base",
    "Json",
    "UTCDateTime",
    "add_unique",
    "affected_rows",
    "new_id",
    "parse_integer",
    "utcnow",
]

# JSON everywhere, stored as JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")

# Deterministic constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


# The largest value an integer column (BIGINT, SQLite INTEGER) holds.
LARGEST_INTEGER = 2**63 - 1


def parse_integer(text: str) -> int | None:
    """``text`` as a whole number a database column can hold, else None.

    Only ASCII digits count, and nothing past a column's range: the drivers refuse such a
    number outright (an error, not "no match") when it is bound to a query.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= LARGEST_INTEGER else None


def new_id() -> uuid.UUID:
    """A fresh random identifier for rows that clients address by UUID."""
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC on the way in and
    tagged as UTC on the way out; PostgreSQL uses ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use depot.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def add_unique(db: Session, row: Base | list[Base], conflict: str) -> None:
    """Insert ``row`` (or rows, all or none); on a unique-constraint failure raise
    :class:`Conflict` with the message ``conflict``.

    The insert runs in a savepoint, so the session stays usable after the conflict.
    """
    try:
        with db.begin_nested():
            db.add_all(row if isinstance(row, list) else [row])
    except IntegrityError:
        raise Conflict(conflict) from None


def affected_rows(result: Result[Any]) -> int:
    """Rows changed by an UPDATE or DELETE that ``Session.execute`` ran."""
    return int(cast(CursorResult[Any], result).rowcount)
