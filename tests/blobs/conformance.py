"""The behaviour every blob backend promises. Each backend's test module subclasses this."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest

from depot.blobs.store import BlobStore, StagedPart
from depot.errors import DigestMismatch, NotFound, RangeNotSatisfiable, SizeMismatch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blocks(data: bytes, size: int = 7919) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


class BlobStoreConformance:
    """Subclasses provide a ``store`` fixture returning a fresh, empty backend."""

    # The smallest part a multi-part upload may have (but the last): S3 wants 5 MiB.
    part_size = 1000

    @staticmethod
    def readable(store: BlobStore, parts: list[StagedPart]) -> list[StagedPart]:
        """Parts as read back after assembly: where a store cannot read parts in place,
        each is addressed by its position in the assembled object."""
        if store.reads_parts_early:
            return parts
        placed, position = [], 0
        for part in sorted(parts, key=lambda part: part.index):
            placed.append(StagedPart(part.index, part.size, part.etag, position))
            position += part.size
        return placed

    def test_put_then_read_back(self, store: BlobStore) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        info = store.put(blocks(data))
        assert info.sha256 == sha(data) and info.size == len(data)
        assert store.exists(info.sha256)
        assert store.stat(info.sha256).size == len(data)
        assert b"".join(store.open(info.sha256)) == data

    def test_put_with_expected_digest_and_size(self, store: BlobStore) -> None:
        data = b"hello depot"
        info = store.put([data], sha256=sha(data).upper(), size=len(data))
        assert info.sha256 == sha(data)

    def test_digest_mismatch_stores_nothing(self, store: BlobStore) -> None:
        data = b"some bytes"
        wrong = sha(b"other bytes")
        with pytest.raises(DigestMismatch):
            store.put([data], sha256=wrong)
        assert not store.exists(sha(data)) and not store.exists(wrong)
        assert list(store.iter_blobs()) == []
        assert list(store.iter_staging()) == []

    def test_size_mismatch_stores_nothing(self, store: BlobStore) -> None:
        with pytest.raises(SizeMismatch):
            store.put([b"12345"], size=4)
        with pytest.raises(SizeMismatch):
            store.put([b"12345"], size=6)
        assert list(store.iter_blobs()) == []
        assert list(store.iter_staging()) == []

    def test_failing_stream_stores_nothing(self, store: BlobStore) -> None:
        def broken() -> Iterator[bytes]:
            yield b"partial"
            raise ConnectionError("client went away")

        with pytest.raises(ConnectionError):
            store.put(broken())
        assert list(store.iter_blobs()) == []
        assert list(store.iter_staging()) == []

    def test_put_twice_is_a_no_op(self, store: BlobStore) -> None:
        data = b"same content"
        first = store.put([data])
        second = store.put([data], sha256=sha(data))
        assert first.sha256 == second.sha256
        assert [info.sha256 for info in store.iter_blobs()] == [sha(data)]

    def test_existing_blob_still_checks_the_bytes(self, store: BlobStore) -> None:
        data = b"stored once"
        store.put([data])
        with pytest.raises(DigestMismatch):
            store.put([b"different"], sha256=sha(data))
        assert b"".join(store.open(sha(data))) == data

    def test_empty_blob(self, store: BlobStore) -> None:
        info = store.put([])
        assert info.sha256 == sha(b"") and info.size == 0
        assert b"".join(store.open(info.sha256)) == b""

    def test_byte_ranges(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 9000
        digest = store.put(blocks(data)).sha256
        assert b"".join(store.open(digest, offset=10, length=100)) == data[10:110]
        assert b"".join(store.open(digest, offset=len(data) - 5)) == data[-5:]
        assert b"".join(store.open(digest, offset=100, length=10**9)) == data[100:]
        with pytest.raises(RangeNotSatisfiable) as caught:
            store.open(digest, offset=len(data))
        assert caught.value.size == len(data)

    def test_missing_blob(self, store: BlobStore) -> None:
        missing = sha(b"never stored")
        assert not store.exists(missing)
        with pytest.raises(NotFound):
            store.stat(missing)
        with pytest.raises(NotFound):
            store.open(missing)

    def test_delete_is_idempotent(self, store: BlobStore) -> None:
        digest = store.put([b"to delete"]).sha256
        store.delete(digest)
        store.delete(digest)
        assert not store.exists(digest)

    def test_bad_digest_is_refused(self, store: BlobStore) -> None:
        from depot.errors import Invalid

        with pytest.raises(Invalid):
            store.exists("../../etc/passwd")
        with pytest.raises(Invalid):
            store.open("zz" * 32)

    def test_presigned_url_is_none_or_a_url(self, store: BlobStore) -> None:
        digest = store.put([b"x"]).sha256
        url = store.presigned_url(digest, expires_in=60)
        assert url is None or url.startswith(("http://", "https://"))

    def test_iter_blobs_lists_everything(self, store: BlobStore) -> None:
        digests = {store.put([str(n).encode()]).sha256 for n in range(5)}
        assert {info.sha256 for info in store.iter_blobs()} == digests

    # -- staging -------------------------------------------------------------------------

    def test_fixed_chunks_in_any_order(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        chunk = self.part_size
        data = os.urandom(2 * chunk + chunk // 2)
        parts = [
            store.write_part(
                upload,
                token,
                index,
                [data[index * chunk : (index + 1) * chunk]],
                offset=index * chunk,
            )
            for index in (2, 0, 1)
        ]
        assert sorted(part.size for part in parts) == [chunk // 2, chunk, chunk]
        ordered = sorted(parts, key=lambda part: part.index)
        store.assemble_staging(upload, token, parts)
        store.assemble_staging(upload, token, parts)  # twice does nothing
        assert b"".join(store.read_parts(upload, token, ordered)) == data
        assert b"".join(store.read_parts(upload, token, ordered[1:])) == data[chunk:]
        info = store.commit_staging(upload, token, parts, sha(data))
        assert info.size == len(data)
        assert b"".join(store.open(sha(data))) == data
        assert upload not in {staged.upload_id for staged in store.iter_staging()}

    def test_free_parts_are_joined_in_index_order(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        pieces = [b"a" * self.part_size, b"b" * self.part_size, b"gamma"]
        parts = [
            store.write_part(upload, token, i, [p]) for i, p in reversed(list(enumerate(pieces)))
        ]
        data = b"".join(pieces)
        store.assemble_staging(upload, token, parts)
        ordered = sorted(parts, key=lambda part: part.index)
        assert b"".join(store.read_parts(upload, token, self.readable(store, ordered))) == data
        store.commit_staging(upload, token, parts, sha(data))
        assert b"".join(store.open(sha(data))) == data

    def test_parts_in_place_and_parts_on_their_own_mix(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        size = self.part_size
        data = os.urandom(2 * size + size // 2)
        # The last part came first, before its offset was known; the others at their offsets.
        parts = [store.write_part(upload, token, 2, [data[2 * size :]])]
        parts += [
            store.write_part(upload, token, i, [data[i * size : (i + 1) * size]], offset=i * size)
            for i in (1, 0)
        ]
        store.assemble_staging(upload, token, parts)
        store.commit_staging(upload, token, parts, sha(data))
        assert b"".join(store.open(sha(data))) == data

    def test_parts_of_uneven_size_are_joined_by_copying(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        size = self.part_size
        # Part 0 was announced as `size` bytes and was longer: part 1 is not where it belongs.
        first, second = b"a" * (size + 700), b"b" * size
        parts = [
            store.write_part(upload, token, 0, [first], offset=0),
            store.write_part(upload, token, 1, [second], offset=size * 2),
            store.write_part(upload, token, 2, [b"c" * 10]),
        ]
        data = first + second + b"c" * 10
        store.assemble_staging(upload, token, parts)
        store.commit_staging(upload, token, parts, sha(data))
        assert b"".join(store.open(sha(data))) == data
        assert upload not in {staged.upload_id for staged in store.iter_staging()}

    def test_rewriting_a_part_replaces_it(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        first = store.write_part(upload, token, 0, [b"old"])
        second = store.write_part(upload, token, 0, [b"new"])
        assert first.etag != second.etag
        store.assemble_staging(upload, token, [second])
        assert b"".join(store.read_parts(upload, token, self.readable(store, [second]))) == b"new"

    def test_failed_part_write_propagates(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        good = store.write_part(upload, token, 0, [b"good"])

        def broken() -> Iterator[bytes]:
            yield b"ba"
            raise ConnectionError("dropped")

        with pytest.raises(ConnectionError):
            store.write_part(upload, token, 0, broken())
        # A free part that failed to rewrite leaves the previous copy in place.
        store.assemble_staging(upload, token, [good])
        assert b"".join(store.read_parts(upload, token, self.readable(store, [good]))) == b"good"

    def test_commit_of_existing_content_keeps_the_blob(self, store: BlobStore) -> None:
        data = b"already here"
        store.put([data])
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        part = store.write_part(upload, token, 0, [data])
        store.assemble_staging(upload, token, [part])
        store.commit_staging(upload, token, [part], sha(data))
        assert b"".join(store.open(sha(data))) == data
        assert upload not in {staged.upload_id for staged in store.iter_staging()}

    def test_abort_drops_staged_bytes(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        store.write_part(upload, token, 0, [b"bytes"])
        assert upload in {staged.upload_id for staged in store.iter_staging()}
        store.abort_staging(upload, token)
        store.abort_staging(upload, token)
        assert upload not in {staged.upload_id for staged in store.iter_staging()}

    def test_reading_a_missing_part_is_not_found(self, store: BlobStore) -> None:
        from depot.blobs.store import StagedPart

        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        with pytest.raises(NotFound):
            b"".join(
                store.read_parts(upload, token, [StagedPart(index=3, size=1, etag="x", offset=0)])
            )

    def test_empty_commit_makes_an_empty_blob(self, store: BlobStore) -> None:
        upload = str(uuid.uuid4())
        token = store.start_staging(upload)
        part = store.write_part(upload, token, 0, [], offset=0)
        store.assemble_staging(upload, token, [part])
        info = store.commit_staging(upload, token, [part], sha(b""))
        assert info.size == 0 and store.exists(sha(b""))
