"""Hints to the kernel about how the client uses the local files it reads and writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depot.client.disk import drop_from_cache, read_sequentially


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


def test_bytes_on_disk_can_leave_the_page_cache_and_still_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    path = tmp_path / "segment.bin"
    with path.open("wb", buffering=0) as handle:
        handle.write(b"s" * 8192)
        os.fdatasync(handle.fileno())
        drop_from_cache(handle.fileno(), 4096, 4096)
    assert advised == [(4096, 4096, os.POSIX_FADV_DONTNEED)]
    assert path.read_bytes() == b"s" * 8192
