from __future__ import annotations

import pytest

from depot.db.base import LARGEST_INTEGER, parse_integer


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
