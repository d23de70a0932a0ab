from __future__ import annotations

import pytest

from depot.blobs import layout

DIGEST = "ab" * 32


def test_blob_key_round_trip() -> None:
    key = layout.blob_key(DIGEST)
    assert key == f"blobs/sha256/ab/ab/{DIGEST}"
    assert layout.sha256_from_blob_key(key) == DIGEST


@pytest.mark.parametrize(
    "key",
    [f"blobs/sha256/cd/ab/{DIGEST}", "blobs/sha256/ab/ab/xyz", "uploads/x/data", "blobs/sha256/ab"],
)
def test_foreign_keys_are_not_blobs(key: str) -> None:
    assert layout.sha256_from_blob_key(key) is None


def test_upload_keys_need_a_uuid() -> None:
    assert layout.upload_data_key("6F1C3B5E-7D7F-4A77-9D3C-2B0F4A8C1E11").endswith(
        "6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11/data"
    )
    with pytest.raises(ValueError):
        layout.upload_prefix("../../etc")
    with pytest.raises(ValueError):
        layout.upload_part_key("6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11", -1)
