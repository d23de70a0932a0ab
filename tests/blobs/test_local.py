from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from depot.blobs import layout
from depot.blobs.local import LocalBlobStore
from depot.errors import Invalid
from tests.blobs.conformance import BlobStoreConformance, sha


class TestLocalBlobStore(BlobStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "store")


def test_blobs_live_at_their_content_address(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put([b"layout"]).sha256
    path = tmp_path / layout.blob_key(digest)
    assert path.read_bytes() == b"layout"
    assert store.local_path(digest) == path
    assert store.uri(digest) == path.as_uri()


def test_fixed_chunks_commit_by_rename(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    token = store.start_staging("6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11")
    upload = "6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11"
    part0 = store.write_part(upload, token, 0, [b"aaaa"], offset=0)
    part1 = store.write_part(upload, token, 1, [b"bb"], offset=4)
    data_file = tmp_path / layout.upload_data_key(upload)
    inode = data_file.stat().st_ino
    store.commit_staging(upload, token, [part0, part1], sha(b"aaaabb"))
    # The staged file itself became the blob: no copy, no second write.
    assert (tmp_path / layout.blob_key(sha(b"aaaabb"))).stat().st_ino == inode


def test_paths_are_confined_to_the_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(Invalid):
        store._path("../outside")
    (tmp_path / "root" / "uploads").rmdir()
    os.symlink(tmp_path, tmp_path / "root" / "uploads")
    with pytest.raises(Invalid):
        store.start_staging("6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11")


def test_stored_blobs_are_not_world_writable(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put([b"perm"]).sha256
    mode = (tmp_path / layout.blob_key(digest)).stat().st_mode
    assert not mode & stat.S_IWOTH


def test_a_part_read_back_for_the_digest_leaves_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_DONTNEED:
            dropped.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    store = LocalBlobStore(tmp_path)
    upload = "6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11"
    token = store.start_staging(upload)
    early = store.write_part(upload, token, 1, [b"bbbb"], offset=4, read_back_soon=True)
    alone = store.write_part(upload, token, 2, [b"cc"], read_back_soon=True)
    assert b"".join(store.read_parts(upload, token, [early])) == b"bbbb"
    # On disk and hashed, never read again (commit renames the file): its pages can go.
    assert dropped == [(4, 4)]
    # A part staged on its own is copied into place at commit: it keeps its cache.
    assert b"".join(store.read_parts(upload, token, [alone])) == b"cc"
    assert dropped == [(4, 4)]
    first = store.write_part(upload, token, 0, [b"aaaa"], offset=0)
    store.commit_staging(upload, token, [first, early, alone], sha(b"aaaabbbbcc"))
    assert b"".join(store.open(sha(b"aaaabbbbcc"))) == b"aaaabbbbcc"
