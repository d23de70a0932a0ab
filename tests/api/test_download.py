from __future__ import annotations

import pytest

from depot.api.download import _parse_range
from depot.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 5)),
        ("bytes=8-100", (8, 2)),
        ("bytes=-3", (7, 3)),
        ("bytes=-100", (0, 10)),
        ("bytes=5-3", None),  # invalid, so ignored: the whole blob
        ("bytes=0-1,4-5", None),  # several ranges: the whole blob
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_ranges_of_a_ten_byte_blob(header: str | None, expected: tuple[int, int] | None) -> None:
    assert _parse_range(header, 10) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-5", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        _parse_range(header, size)
