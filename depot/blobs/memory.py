"""Blobs in a dictionary: for tests of the layers above, and for throwaway servers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from depot.blobs.meter import Meter, verify
from depot.blobs.store import BLOCK_SIZE, BlobInfo, StagedPart, StagingInfo, check_sha256
from depot.errors import NotFound, RangeNotSatisfiable

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore:
    """Content-addressed blobs held in process memory. Thread-safe; lost on exit."""

    backend = "memory"
    reads_parts_early = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        # upload id -> part index -> (offset or None, bytes)
        self._staging: dict[str, dict[int, tuple[int | None, bytes]]] = {}
        self._staged_at: dict[str, datetime] = {}

    def uri(self, sha256: str) -> str:
        return f"memory://blobs/{check_sha256(sha256)}"

    def exists(self, sha256: str) -> bool:
        return check_sha256(sha256) in self._blobs

    def stat(self, sha256: str) -> BlobInfo:
        key = check_sha256(sha256)
        try:
            data, written = self._blobs[key]
        except KeyError:
            raise NotFound(f"blob {sha256} is not stored") from None
        return BlobInfo(key, len(data), written)

    def open(self, sha256: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        key = check_sha256(sha256)
        try:
            data = self._blobs[key][0]
        except KeyError:
            raise NotFound(f"blob {sha256} is not stored") from None
        size = len(data)
        if offset < 0 or (offset >= size and not (offset == 0 and size == 0)):
            raise RangeNotSatisfiable(f"offset {offset} is outside the blob", size=size)
        end = size if length is None else min(size, offset + length)
        return (data[pos : min(pos + BLOCK_SIZE, end)] for pos in range(offset, end, BLOCK_SIZE))

    def put(
        self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None
    ) -> BlobInfo:
        expected = check_sha256(sha256) if sha256 is not None else None
        meter = Meter(chunks, hasher=hashlib.sha256(), limit=size)
        data = b"".join(meter)
        digest = meter.hexdigest()
        verify(sha256=expected, size=size, actual_sha256=digest, actual_size=meter.size)
        with self._lock:
            self._blobs.setdefault(digest, (data, datetime.now(UTC)))
        return self.stat(digest)

    def delete(self, sha256: str) -> None:
        with self._lock:
            self._blobs.pop(check_sha256(sha256), None)

    def presigned_url(
        self,
        sha256: str,
        *,
        expires_in: int,
        file_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        return None

    def local_path(self, sha256: str) -> Path | None:
        return None

    def iter_blobs(self) -> Iterator[BlobInfo]:
        with self._lock:
            items = list(self._blobs.items())
        for sha256, (data, written) in items:
            yield BlobInfo(sha256, len(data), written)

    def start_staging(self, upload_id: str) -> str:
        with self._lock:
            self._staging.setdefault(upload_id, {})
            self._staged_at[upload_id] = datetime.now(UTC)
        return ""

    def write_part(
        self,
        upload_id: str,
        token: str,
        index: int,
        chunks: Iterable[bytes],
        *,
        offset: int | None = None,
        read_back_soon: bool = False,
        size: int | None = None,
    ) -> StagedPart:
        if upload_id not in self._staging:
            raise NotFound(f"upload {upload_id} has no staging area")
        data = b"".join(chunks)
        with self._lock:
            parts = self._staging.get(upload_id)
            if parts is None:
                raise NotFound(f"upload {upload_id} has no staging area")
            parts[index] = (offset, data)
        return StagedPart(
            index=index, size=len(data), etag=hashlib.md5(data).hexdigest(), offset=offset
        )

    def assemble_staging(self, upload_id: str, token: str, parts: Sequence[StagedPart]) -> None:
        return None  # parts are read where they lie; commit joins them

    def read_parts(
        self, upload_id: str, token: str, parts: Sequence[StagedPart]
    ) -> Iterator[bytes]:
        staged = self._staging.get(upload_id, {})
        for part in parts:
            if part.index not in staged:
                raise NotFound(f"part {part.index} of upload {upload_id} is not staged")
            yield staged[part.index][1]

    def commit_staging(
        self, upload_id: str, token: str, parts: Sequence[StagedPart], sha256: str
    ) -> BlobInfo:
        key = check_sha256(sha256)
        ordered = sorted(parts, key=lambda part: part.index)
        data = b"".join(self.read_parts(upload_id, token, ordered))
        with self._lock:
            self._blobs.setdefault(key, (data, datetime.now(UTC)))
        self.abort_staging(upload_id, token)
        return self.stat(key)

    def abort_staging(self, upload_id: str, token: str) -> None:
        with self._lock:
            self._staging.pop(upload_id, None)
            self._staged_at.pop(upload_id, None)

    def iter_staging(self) -> Iterator[StagingInfo]:
        with self._lock:
            items = list(self._staged_at.items())
        for upload_id, when in items:
            yield StagingInfo(upload_id, when)
