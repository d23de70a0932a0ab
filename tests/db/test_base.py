from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select

from depot.catalog.models import Org
from depot.db.base import LARGEST_INTEGER, execute_columns, parse_integer
from depot.db.engine import Database


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("007", 7),
        (str(LARGEST_INTEGER), LARGEST_INTEGER),
        (str(LARGEST_INTEGER + 1), None),  # past every integer column
        ("9" * 30, None),
        ("", None),
        ("-1", None),
        ("1.5", None),
        (" 1", None),
        ("٣", None),  # a digit, but not an ASCII one
        ("v1", None),
    ],
)
def test_parse_integer_takes_what_a_column_holds(text: str, expected: int | None) -> None:
    assert parse_integer(text) == expected


def test_execute_columns_sees_what_the_session_has_not_flushed(database: Database) -> None:
    with database.write() as db:
        db.add(Org(slug="acme", name="Acme"))
        db.add(Org(slug="zeta", name="Zeta"))
        slugs = select(Org.slug).where(Org.slug.in_(bindparam("slugs", expanding=True)))
        found = execute_columns(db, slugs.order_by(Org.slug), {"slugs": ["acme", "zeta"]})
        assert found.scalars().all() == ["acme", "zeta"]
    with database.read() as db:  # and the transaction it ran in is the session's own
        assert execute_columns(db, select(Org.name).order_by(Org.slug)).scalars().all() == [
            "Acme",
            "Zeta",
        ]
