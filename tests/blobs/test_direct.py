from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from depot.blobs import direct
from depot.blobs.direct import ALIGNMENT, BUFFER_SIZE, O_DIRECT, DirectWriter, open_direct
from depot.blobs.local import LocalBlobStore
from depot.settings import MiB
from tests.blobs.conformance import sha


def _write(path: Path, blocks: list[bytes], position: int = 0) -> None:
    fd = open_direct(path, os.O_WRONLY | os.O_CREAT)
    assert fd is not None, "the test directory's filesystem refuses O_DIRECT"
    try:
        writer = DirectWriter(fd, position)
        for block in blocks:
            writer.write(block)
        writer.close()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "size",
    [1, ALIGNMENT - 1, ALIGNMENT, 3 * ALIGNMENT + 17, BUFFER_SIZE, 2 * BUFFER_SIZE + 5000],
)
def test_any_length_lands_whole(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    # Blocks of odd sizes, as a server hands a body over.
    blocks = [data[i : i + 65_537] for i in range(0, size, 65_537)]
    _write(tmp_path / "out", blocks)
    assert (tmp_path / "out").read_bytes() == data


def test_writes_at_an_aligned_position_leave_the_rest_alone(tmp_path: Path) -> None:
    path = tmp_path / "out"
    head = os.urandom(2 * ALIGNMENT)
    path.write_bytes(head)
    tail = os.urandom(ALIGNMENT + 10)
    _write(path, [tail], position=2 * ALIGNMENT)
    assert path.read_bytes() == head + tail


def test_an_unaligned_start_is_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(ValueError, match="multiple"):
            DirectWriter(fd, 100)
    finally:
        os.close(fd)


def test_the_tail_goes_through_the_cache_and_the_buffer_is_reused(tmp_path: Path) -> None:
    fd = open_direct(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    assert fd is not None
    try:
        writer = DirectWriter(fd, 0)
        writer.write(b"x" * (ALIGNMENT + 1))
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT
        writer.close()
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT
    finally:
        os.close(fd)
    assert direct._pool, "the buffer went back to the pool"
    assert (tmp_path / "out").stat().st_size == ALIGNMENT + 1


def test_closing_without_flush_writes_nothing_more(tmp_path: Path) -> None:
    fd = open_direct(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    assert fd is not None
    try:
        writer = DirectWriter(fd, 0)
        writer.write(b"y" * 100)
        writer.close(flush=False)
    finally:
        os.close(fd)
    assert (tmp_path / "out").stat().st_size == 0


def test_the_local_store_writes_parts_directly_and_reads_them_back(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    upload = "6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11"
    token = store.start_staging(upload)
    size = BUFFER_SIZE + 3 * ALIGNMENT
    first, second = os.urandom(size), os.urandom(1234)
    parts = [
        # Written ahead of the digest (kept in the cache), then in order (direct).
        store.write_part(upload, token, 1, [second], offset=size, read_back_soon=True),
        store.write_part(upload, token, 0, [first[:5000], first[5000:]], offset=0),
    ]
    assert b"".join(store.read_parts(upload, token, sorted(parts, key=lambda p: p.index))) == (
        first + second
    )
    info = store.commit_staging(upload, token, parts, sha(first + second))
    assert info.size == size + 1234
    assert b"".join(store.open(info.sha256)) == first + second


def _uncached(path: Path) -> None:
    """Put ``path`` on disk and out of the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 5 * MiB + 123), (1, 5 * MiB), (ALIGNMENT + 7, 2 * MiB + 1), (5 * MiB, 123), (0, 0)],
)
def test_blocks_read_past_the_cache_are_the_file_s_bytes(
    tmp_path: Path, offset: int, length: int
) -> None:
    data = os.urandom(5 * MiB + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    _uncached(path)
    assert not direct.in_page_cache(path)
    blocks = list(direct.read_blocks(path, offset, length, MiB))
    assert b"".join(blocks) == data[offset : offset + length]
    assert all(len(block) <= MiB for block in blocks)
    # Read past the cache, the bytes did not enter it.
    assert not direct.in_page_cache(path)


def test_blocks_in_the_cache_are_read_from_it(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert path.read_bytes() == data  # in the cache now
    assert direct.in_page_cache(path)
    assert b"".join(direct.read_blocks(path, 0, len(data), MiB)) == data
    assert direct.in_page_cache(path)
    assert not direct.in_page_cache(tmp_path / "missing")
    (tmp_path / "empty").write_bytes(b"")
    assert direct.in_page_cache(tmp_path / "empty")


def test_a_reader_left_half_way_gives_its_buffers_back(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(8 * MiB))
    _uncached(path)
    direct._pool.clear()
    reader = direct.read_blocks(path, 0, 8 * MiB, MiB)
    assert len(next(reader)) == MiB
    reader.close()  # a client that went away: the reads in flight settle, the buffers return
    assert len(direct._pool) == direct._IDLE_BUFFERS


def test_blocks_larger_than_the_buffers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"x")
    with pytest.raises(ValueError, match="at most"):
        next(direct.read_blocks(tmp_path / "blob", 0, 1, BUFFER_SIZE))


def test_a_large_file_is_judged_by_windows_spread_over_it(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(40 * MiB))
    _uncached(path)
    assert not direct.in_page_cache(path)
    assert len(path.read_bytes()) == 40 * MiB
    assert direct.in_page_cache(path)
    with path.open("rb") as file:  # the last window gone
        os.posix_fadvise(file.fileno(), 39 * MiB, MiB, os.POSIX_FADV_DONTNEED)
    assert not direct.in_page_cache(path)
