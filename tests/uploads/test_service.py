from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from depot.blobs import local
from depot.blobs.local import LocalBlobStore
from depot.blobs.models import Blob
from depot.blobs.store import StagedPart
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.errors import (
    Conflict,
    DigestMismatch,
    Invalid,
    NotFound,
    PayloadTooLarge,
    SizeMismatch,
)
from depot.settings import MiB, Settings
from depot.uploads.models import UploadChunk, UploadSession, UploadStatus
from depot.uploads.service import MAX_PARTS, UploadService

CHUNK = 5 * MiB


class CountingStore(LocalBlobStore):
    """A local store that records which staged parts were read back."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reread: list[int] = []

    def read_parts(
        self, upload_id: str, token: str, parts: Sequence[StagedPart]
    ) -> Iterator[bytes]:
        self.reread.extend(part.index for part in parts)
        return super().read_parts(upload_id, token, parts)


@pytest.fixture
def counting_store(data_dir: Path) -> CountingStore:
    return CountingStore(data_dir)


@pytest.fixture
def uploads(database: Database, counting_store: CountingStore, settings: Settings) -> UploadService:
    return UploadService(
        database, counting_store, settings.model_copy(update={"upload_chunk_size": CHUNK})
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces(data: bytes, size: int = 100_003) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def chunks_of(data: bytes) -> list[bytes]:
    return [data[pos : pos + CHUNK] for pos in range(0, len(data), CHUNK)] or [b""]


def test_start_chooses_the_chunk_size(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=12 * MiB)
    assert view.status == "initialized"
    assert view.chunk_size == CHUNK and view.chunk_count == 3
    assert view.received_chunks == [] and view.received_bytes == 0
    assert view.expires_at is not None and view.expires_at > utcnow()


def test_chunk_size_grows_to_stay_within_the_part_limit(uploads: UploadService) -> None:
    size = MAX_PARTS * CHUNK * 3
    view = uploads.start_upload(
        space_id=None, created_by_id=None, size=size, context={"why": "big"}
    )
    assert view.chunk_count is not None and view.chunk_count <= MAX_PARTS
    assert view.context == {"why": "big"}


def test_in_order_chunks_complete_without_reading_back(
    uploads: UploadService, counting_store: CountingStore, database: Database
) -> None:
    data = os.urandom(2 * CHUNK + 12345)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data), sha256=sha(data))
    for index, chunk in enumerate(chunks_of(data)):
        status = uploads.receive_chunk(view.id, index, pieces(chunk), content_length=len(chunk))
        assert status.status == "uploading"
    assert status.received_bytes == len(data) and status.received_chunks == [0, 1, 2]
    done = uploads.complete_upload(view.id)
    assert counting_store.reread == []
    assert done.status == "completed" and done.blob_sha256 == sha(data) and done.size == len(data)
    assert b"".join(counting_store.open(sha(data))) == data
    with database.read() as db:
        blob = db.get(Blob, sha(data))
        assert blob is not None and blob.size == len(data)
    assert list(counting_store.iter_staging()) == []


def test_out_of_order_chunks_are_hashed_once_the_gap_closes(
    uploads: UploadService, counting_store: CountingStore
) -> None:
    data = os.urandom(4 * CHUNK)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    parts = chunks_of(data)
    for index in (1, 2, 0, 3):
        uploads.receive_chunk(view.id, index, [parts[index]])
    # Chunks 1 and 2 came early and were read back once chunk 0 closed the gap; 0 and 3
    # were hashed while they streamed. Completion itself read nothing.
    assert sorted(counting_store.reread) == [1, 2]
    done = uploads.complete_upload(view.id)
    assert sorted(counting_store.reread) == [1, 2]
    assert done.blob_sha256 == sha(data)


def test_early_chunks_are_hashed_from_their_parked_copies(
    uploads: UploadService, counting_store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "PARK_FROM", CHUNK)
    data = os.urandom(4 * CHUNK)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    parts = chunks_of(data)
    for index in (3, 1, 2):
        uploads.receive_chunk(view.id, index, pieces(parts[index]), content_length=CHUNK)
    assert counting_store._lot.parked() == 3
    uploads.receive_chunk(view.id, 0, pieces(parts[0]), content_length=CHUNK)
    assert counting_store._lot.parked() == 0  # each taken out to be hashed
    assert sorted(counting_store.reread) == [1, 2, 3]
    assert uploads.complete_upload(view.id).blob_sha256 == sha(data)
    assert b"".join(counting_store.open(sha(data))) == data


def test_completion_without_digest_state_reads_everything_once(
    database: Database, counting_store: CountingStore, settings: Settings
) -> None:
    # Two services stand for two replicas: chunks on one, completion on the other.
    tuned = settings.model_copy(update={"upload_chunk_size": CHUNK})
    first = UploadService(database, counting_store, tuned)
    second = UploadService(database, counting_store, tuned)
    data = os.urandom(2 * CHUNK)
    view = first.start_upload(space_id=None, created_by_id=None, size=len(data))
    for index, chunk in enumerate(chunks_of(data)):
        first.receive_chunk(view.id, index, [chunk])
    done = second.complete_upload(view.id)
    assert done.blob_sha256 == sha(data)
    assert counting_store.reread == [0, 1]


def test_a_chunk_resent_with_other_bytes_wins_and_is_re_read(
    uploads: UploadService, counting_store: CountingStore
) -> None:
    data = bytearray(os.urandom(2 * CHUNK))
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    uploads.receive_chunk(view.id, 0, [bytes(data[:CHUNK])])
    uploads.receive_chunk(view.id, 1, [bytes(data[CHUNK:])])
    data[5] ^= 0xFF
    status = uploads.receive_chunk(view.id, 0, [bytes(data[:CHUNK])])
    assert status.received_chunks == [0, 1] and status.received_bytes == len(data)
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(bytes(data))
    assert counting_store.reread == [0, 1]


def test_resending_the_same_chunk_is_idempotent(uploads: UploadService) -> None:
    data = os.urandom(CHUNK + 10)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    for _ in range(2):
        uploads.receive_chunk(view.id, 0, [data[:CHUNK]])
    uploads.receive_chunk(view.id, 1, [data[CHUNK:]])
    assert uploads.complete_upload(view.id).blob_sha256 == sha(data)


def test_wrong_chunk_sizes_are_refused_and_not_recorded(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=CHUNK + 10)
    with pytest.raises(SizeMismatch, match="must be 5242880 bytes"):
        uploads.receive_chunk(view.id, 0, [b"short"])
    with pytest.raises(SizeMismatch):
        uploads.receive_chunk(view.id, 1, [b"x" * 11])
    with pytest.raises(SizeMismatch, match="declares 3"):
        uploads.receive_chunk(view.id, 1, [b"abc"], content_length=3)
    assert uploads.get_upload(view.id).received_chunks == []


@pytest.mark.parametrize("index", [-1, 2, 99])
def test_chunk_index_out_of_range(uploads: UploadService, index: int) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=CHUNK + 1)
    with pytest.raises(Invalid, match="out of range|negative"):
        uploads.receive_chunk(view.id, index, [b"x"])


def test_missing_chunks_block_completion_but_keep_the_session(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=3 * CHUNK)
    uploads.receive_chunk(view.id, 1, [b"\0" * CHUNK])
    with pytest.raises(Invalid, match="missing chunk\\(s\\) 0, 2"):
        uploads.complete_upload(view.id)
    status = uploads.get_upload(view.id)
    assert status.status == "uploading" and status.missing_chunks == [0, 2]


def test_digest_mismatch_fails_and_stores_nothing(
    uploads: UploadService, counting_store: CountingStore, database: Database
) -> None:
    data = os.urandom(1000)
    view = uploads.start_upload(
        space_id=None, created_by_id=None, size=len(data), sha256=sha(b"something else")
    )
    uploads.receive_chunk(view.id, 0, [data])
    with pytest.raises(DigestMismatch):
        uploads.complete_upload(view.id)
    status = uploads.get_upload(view.id)
    assert status.status == "failed" and "sha256 mismatch" in (status.error or "")
    assert not counting_store.exists(sha(data))
    assert list(counting_store.iter_staging()) == []
    with database.read() as db:
        assert db.get(Blob, sha(data)) is None
    with pytest.raises(Invalid, match="failed"):
        uploads.receive_chunk(view.id, 0, [data])


def test_digest_can_be_given_at_completion(uploads: UploadService) -> None:
    data = b"late digest"
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    uploads.receive_chunk(view.id, 0, [data])
    with pytest.raises(DigestMismatch):
        uploads.complete_upload(view.id, sha256=sha(b"nope"))


def test_completion_digest_must_agree_with_the_initial_one(uploads: UploadService) -> None:
    data = b"agree"
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data), sha256=sha(data))
    uploads.receive_chunk(view.id, 0, [data])
    with pytest.raises(Invalid, match="differs"):
        uploads.complete_upload(view.id, sha256=sha(b"other"))
    assert uploads.complete_upload(view.id, sha256=sha(data).upper()).status == "completed"


def test_completing_twice_returns_the_same_result(uploads: UploadService) -> None:
    data = b"twice"
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    uploads.receive_chunk(view.id, 0, [data])
    first = uploads.complete_upload(view.id)
    again = uploads.complete_upload(view.id, sha256=sha(data))
    assert again.blob_sha256 == first.blob_sha256 and again.status == "completed"
    with pytest.raises(DigestMismatch):
        uploads.complete_upload(view.id, sha256=sha(b"x"))


def test_content_already_stored_is_not_stored_twice(
    uploads: UploadService, counting_store: CountingStore
) -> None:
    data = b"dedup me"
    for _ in range(2):
        view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
        uploads.receive_chunk(view.id, 0, [data])
        assert uploads.complete_upload(view.id).blob_sha256 == sha(data)
    assert [info.sha256 for info in counting_store.iter_blobs()] == [sha(data)]


def test_empty_file(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=0)
    assert view.chunk_count == 1
    assert uploads.complete_upload(view.id).blob_sha256 == sha(b"")
    other = uploads.start_upload(space_id=None, created_by_id=None, size=0)
    uploads.receive_chunk(other.id, 0, [])
    assert uploads.complete_upload(other.id).size == 0


def test_free_parts_of_any_size(uploads: UploadService, counting_store: CountingStore) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True)
    assert view.chunk_size is None and view.chunk_count is None
    parts = [b"first part, ", b"second, ", b"and the third"]
    for index in (2, 0, 1):
        uploads.receive_chunk(view.id, index, [parts[index]])
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(b"".join(parts)) and done.size == len(b"".join(parts))


def test_free_parts_with_a_gap_cannot_complete(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True)
    uploads.receive_chunk(view.id, 0, [b"a"])
    uploads.receive_chunk(view.id, 2, [b"c"])
    with pytest.raises(Invalid, match="missing part\\(s\\) 1"):
        uploads.complete_upload(view.id)


def test_free_parts_with_a_known_total_check_it(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=10, free_parts=True)
    uploads.receive_chunk(view.id, 0, [b"12345"])
    with pytest.raises(SizeMismatch, match="expected 10 bytes, received 5"):
        uploads.complete_upload(view.id)
    assert uploads.get_upload(view.id).status == "failed"


def test_expired_sessions_take_no_chunks(uploads: UploadService, database: Database) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=4)
    with database.write() as db:
        row = db.get(UploadSession, view.id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Invalid, match="expired"):
        uploads.receive_chunk(view.id, 0, [b"late"])
    with pytest.raises(Invalid, match="expired"):
        uploads.complete_upload(view.id)


def test_abort(uploads: UploadService, counting_store: CountingStore) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=4)
    uploads.receive_chunk(view.id, 0, [b"abcd"])
    assert uploads.abort_upload(view.id).status == "aborted"
    assert uploads.abort_upload(view.id).status == "aborted"
    assert list(counting_store.iter_staging()) == []
    with pytest.raises(Invalid, match="aborted"):
        uploads.receive_chunk(view.id, 0, [b"abcd"])


def test_completed_uploads_cannot_be_aborted(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=1)
    uploads.receive_chunk(view.id, 0, [b"x"])
    uploads.complete_upload(view.id)
    with pytest.raises(Invalid):
        uploads.abort_upload(view.id)


def test_unknown_session(uploads: UploadService) -> None:
    with pytest.raises(NotFound):
        uploads.get_upload(uuid.uuid4())
    with pytest.raises(NotFound):
        uploads.receive_chunk(uuid.uuid4(), 0, [b"x"])


def test_the_same_chunk_twice_at_once_is_a_conflict(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=CHUNK + 1)

    def nested() -> Iterator[bytes]:
        with pytest.raises(Conflict, match="already being received"):
            uploads.receive_chunk(view.id, 1, [b"y"])
        yield b"z"

    uploads.receive_chunk(view.id, 1, nested())
    assert uploads.get_upload(view.id).received_chunks == [1]


def test_a_dropped_chunk_is_not_recorded(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=CHUNK + 1)

    def dropped() -> Iterator[bytes]:
        yield b"\0" * 1000
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        uploads.receive_chunk(view.id, 0, dropped())
    assert uploads.get_upload(view.id).received_chunks == []
    data = os.urandom(CHUNK + 1)
    uploads.receive_chunk(view.id, 0, [data[:CHUNK]])
    uploads.receive_chunk(view.id, 1, [data[CHUNK:]])
    assert uploads.complete_upload(view.id).blob_sha256 == sha(data)


def test_a_failed_rewrite_leaves_the_chunk_missing(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=CHUNK + 1)
    uploads.receive_chunk(view.id, 1, [b"k"])

    def dropped() -> Iterator[bytes]:
        yield b"?"
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError):
        uploads.receive_chunk(view.id, 1, dropped())
    assert uploads.get_upload(view.id).received_chunks == []


def test_size_limits(database: Database, counting_store: CountingStore, settings: Settings) -> None:
    small = UploadService(
        database, counting_store, settings.model_copy(update={"upload_max_size": 100})
    )
    with pytest.raises(PayloadTooLarge):
        small.start_upload(space_id=None, created_by_id=None, size=101)
    view = small.start_upload(space_id=None, created_by_id=None, free_parts=True)
    with pytest.raises(PayloadTooLarge):
        small.receive_chunk(view.id, 0, [b"x" * 101])
    with pytest.raises(PayloadTooLarge):
        small.upload_blob([b"y" * 101])
    with pytest.raises(Invalid):
        small.start_upload(space_id=None, created_by_id=None, size=-1)


def test_requested_chunk_sizes_are_checked(uploads: UploadService) -> None:
    with pytest.raises(Invalid, match="chunk_size must be at least"):
        uploads.start_upload(space_id=None, created_by_id=None, size=100 * MiB, chunk_size=1024)
    small = uploads.start_upload(space_id=None, created_by_id=None, size=1000, chunk_size=1024)
    assert small.chunk_size == 1024 and small.chunk_count == 1


def test_single_shot_upload(uploads: UploadService, database: Database) -> None:
    data = os.urandom(300_000)
    info = uploads.upload_blob(pieces(data), sha256=sha(data), size=len(data))
    assert info.sha256 == sha(data)
    with database.read() as db:
        assert db.get(Blob, sha(data)) is not None
    with pytest.raises(DigestMismatch):
        uploads.upload_blob([b"abc"], sha256=sha(b"abd"))


def test_status_values(uploads: UploadService) -> None:
    view = uploads.start_upload(space_id=None, created_by_id=None, size=1)
    assert UploadStatus(view.status) is UploadStatus.INITIALIZED
    assert UploadStatus.UPLOADING.is_open and not UploadStatus.COMPLETED.is_open


def test_parallel_chunks_leave_nothing_to_hash_at_completion(
    uploads: UploadService, counting_store: CountingStore
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(8 * CHUNK)
    parts = chunks_of(data)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(data))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: uploads.receive_chunk(view.id, i, pieces(parts[i])), range(8)))
    reread_before = list(counting_store.reread)
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(data)
    # Chunks that came early were read back once while the upload ran; completion read nothing.
    assert counting_store.reread == reread_before
    assert len(reread_before) == len(set(reread_before))


def test_a_rewrite_racing_completion_cannot_corrupt_the_blob(
    uploads: UploadService, counting_store: CountingStore
) -> None:
    old = os.urandom(CHUNK + 100)
    new = bytearray(old)
    new[7] ^= 0xFF
    view = uploads.start_upload(space_id=None, created_by_id=None, size=len(old))
    uploads.receive_chunk(view.id, 0, [old[:CHUNK]])
    uploads.receive_chunk(view.id, 1, [old[CHUNK:]])

    def rewrite() -> Iterator[bytes]:
        yield bytes(new[: CHUNK // 2])
        # Completion arrives while chunk 0 is being rewritten: it must not commit a mix.
        with pytest.raises(Invalid, match="missing chunk"):
            uploads.complete_upload(view.id)
        yield bytes(new[CHUNK // 2 : CHUNK])

    uploads.receive_chunk(view.id, 0, rewrite())
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(bytes(new))
    assert b"".join(counting_store.open(sha(bytes(new)))) == bytes(new)


def test_parts_of_one_size_land_at_their_offsets(
    uploads: UploadService, counting_store: CountingStore, data_dir: Path
) -> None:
    from depot.blobs import layout

    part = 1000
    data = os.urandom(3 * part + 123)
    pieces_ = [data[i * part : (i + 1) * part] for i in range(4)]
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True, part_count=4)
    # The short last part first (its offset is not known yet), then the others.
    for index in (3, 1, 0, 2):
        uploads.receive_chunk(view.id, index, [pieces_[index]], content_length=len(pieces_[index]))
    staged = data_dir / layout.upload_prefix(str(view.id))
    assert sorted(path.name for path in staged.iterdir()) == ["data", "part-3"]
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(data) and done.size == len(data)


def test_parts_of_uneven_size_still_join_correctly(uploads: UploadService) -> None:
    sizes = [1000, 700, 1000, 50]
    data = os.urandom(sum(sizes))
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True, part_count=4)
    offset = 0
    chunks = []
    for size in sizes:
        chunks.append(data[offset : offset + size])
        offset += size
    for index in (0, 2, 1, 3):
        uploads.receive_chunk(view.id, index, [chunks[index]], content_length=len(chunks[index]))
    assert uploads.complete_upload(view.id).blob_sha256 == sha(data)
    with pytest.raises(Invalid, match="below 4"):
        other = uploads.start_upload(
            space_id=None, created_by_id=None, free_parts=True, part_count=4
        )
        uploads.receive_chunk(other.id, 4, [b"x"])


def test_receive_part_answers_the_stored_part(uploads: UploadService) -> None:
    parts = [b"x" * 1000, b"y" * 1000, b"z" * 10]
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True, part_count=3)
    stored = [
        uploads.receive_part(view.id, index, [parts[index]], content_length=len(parts[index]))
        for index in (1, 0, 2)
    ]
    assert [part.index for part in stored] == [1, 0, 2]
    assert [part.size for part in stored] == [1000, 1000, 10]
    # The ETags it answers are the ones the session recorded, and a resent part replaces its own.
    again = uploads.receive_part(view.id, 1, [b"w" * 1000], content_length=1000)
    recorded = uploads.get_upload(view.id)
    assert recorded.status == "uploading" and recorded.received_chunks == [0, 1, 2]
    assert recorded.etags == {0: stored[1].etag, 1: again.etag, 2: stored[2].etag}
    assert again.etag != stored[0].etag
    done = uploads.complete_upload(view.id)
    assert done.blob_sha256 == sha(parts[0] + b"w" * 1000 + parts[2])


def test_a_refused_context_reads_no_byte_and_records_nothing(uploads: UploadService) -> None:
    view = uploads.start_upload(
        space_id=None, created_by_id=None, free_parts=True, context={"surface": "mine"}
    )
    seen: list[dict[str, object]] = []
    read: list[bytes] = []

    def body() -> Iterator[bytes]:
        read.append(b"part")
        yield b"part"

    def refuse(context: dict[str, object]) -> None:
        seen.append(context)
        raise NotFound("not a session of this surface")

    with pytest.raises(NotFound, match="not a session of this surface"):
        uploads.receive_part(view.id, 0, body(), check_context=refuse)
    with pytest.raises(NotFound, match="not a session of this surface"):
        uploads.receive_chunk(view.id, 0, body(), check_context=refuse)
    assert seen == [{"surface": "mine"}] * 2 and read == []
    assert uploads.get_upload(view.id).received_chunks == []
    uploads.receive_chunk(view.id, 0, body(), check_context=seen.append)
    assert uploads.get_upload(view.id).received_chunks == [0]


def test_a_part_recorded_meanwhile_by_another_replica_is_replaced(
    uploads: UploadService, database: Database, counting_store: CountingStore, settings: Settings
) -> None:
    other_replica = UploadService(database, counting_store, settings)
    view = uploads.start_upload(space_id=None, created_by_id=None, free_parts=True)
    outcome: list[object] = []
    with database.write() as db:
        # The other replica records part 0 and still holds the session's lock...
        db.get(UploadSession, view.id, with_for_update=True)
        db.add(UploadChunk(session_id=view.id, index=0, size=5, offset=None, etag="theirs"))
        db.flush()

        def receive() -> None:
            try:
                outcome.append(other_replica.receive_part(view.id, 0, [b"mine!"]))
            except Exception as exc:
                outcome.append(exc)

        # ...while this one receives the same part and waits for the lock to record it.
        thread = threading.Thread(target=receive)
        thread.start()
        time.sleep(0.5)
    thread.join(timeout=30)
    [part] = outcome
    assert isinstance(part, StagedPart), part
    assert uploads.get_upload(view.id).etags == {0: part.etag}
    assert uploads.complete_upload(view.id).blob_sha256 == sha(b"mine!")
