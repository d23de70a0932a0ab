"""Hints to the kernel about how the client reads local files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depot.client.disk import read_sequentially


def test_a_file_read_from_start_to_end_is_announced_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised: list[tuple[int, int, int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((fd, offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    path = tmp_path / "weights.bin"
    path.write_bytes(b"w" * 10_000)
    with path.open("rb", buffering=0) as handle:
        read_sequentially(handle.fileno())
        assert handle.read() == b"w" * 10_000
        # The whole file (length 0 means to the end), read in order.
        assert advised == [(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)]
