"""Blobs on the local filesystem: the embedded default.

Every write goes to a staging name, is fsynced, then renamed into place, so a
blob path either holds the complete, verified bytes or does not exist.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from depot.blobs import layout
from depot.blobs.direct import ALIGNMENT, DirectWriter, open_direct, read_blocks
from depot.blobs.meter import Meter, verify
from depot.blobs.parking import Copy, ParkingLot
from depot.blobs.store import BLOCK_SIZE, BlobInfo, StagedPart, StagingInfo, check_sha256
from depot.errors import Invalid, NotFound, PayloadTooLarge, RangeNotSatisfiable, Unavailable

__all__ = ["LocalBlobStore"]

# Early parts this large or larger are written past the cache and parked (parking.py). The
# ML API's multipart upload sends 10 MiB parts: parked, four in flight went 573-601 MB/s
# against 635-642 through the cache, alternating.
PARK_FROM = 32 * 1024 * 1024


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2
# WAIT_BEFORE | WRITE | WAIT_AFTER: start writeback and wait until the range is on disk.
_SYNC_FILE_RANGE_WAIT_ALL = 1 | 2 | 4
_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)  # not on macOS


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a part to disk, without waiting for it.

    Parts are made durable by the fsync at commit; starting their writeback as they
    arrive leaves that fsync little to wait for, and keeps each chunk request from
    stalling on the disk. Without sync_file_range (not Linux) the part is fsynced.
    """
    if length == 0:
        return
    if (
        _sync_file_range is None
        or _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0
    ):
        os.fdatasync(fd)


def _drop_cached(fd: int, offset: int, length: int) -> None:
    """Write a range to disk, then let the kernel reuse its page cache.

    For a chunk that arrived early, was written through the cache and has now been read
    back for the digest: nothing reads it again (commit renames the file), and the next
    early chunk written into pages just freed costs much less than into fresh ones,
    which a VM backs only when they are first touched (docs/performance.md). The wait
    is for writeback the commit's fsync would wait for anyway; pages still being
    written back cannot be dropped.
    """
    if length == 0 or _FADV_DONTNEED is None:
        return
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WAIT_ALL)
    os.posix_fadvise(fd, offset, length, _FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _guarded(call: Callable[..., object], what: str, *args: Any) -> None:
    try:
        call(*args)
    except OSError as exc:
        raise _translate(exc, what) from exc


def _translate(exc: OSError, what: str) -> Exception:
    if exc.errno == errno.ENOSPC:
        return PayloadTooLarge(f"no space left on the blob store while writing {what}")
    return Unavailable(f"blob store error while writing {what}: {exc.strerror}")


class LocalBlobStore:
    """Content-addressed blobs in a directory tree (see :mod:`depot.blobs.layout`)."""

    backend = "file"
    reads_parts_early = True

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        # Large writes bypass the page cache (see depot.blobs.direct) unless the
        # filesystem refuses O_DIRECT; the first refusal turns it off for this store.
        self._direct = True
        (self.root / layout.BLOBS_PREFIX).mkdir(parents=True, exist_ok=True)
        (self.root / layout.UPLOADS_PREFIX).mkdir(parents=True, exist_ok=True)
        # Copies of early parts, hashed from there when their turn comes (parking.py).
        self._lot = ParkingLot(self.root / layout.UPLOADS_PREFIX)

    def _path(self, key: str) -> Path:
        # Keys are built from validated digests and UUIDs; this is the last line of
        # defence should one ever carry "..", a symlink or an absolute path.
        full = os.path.realpath(self.root / key)
        if os.path.commonpath([full, self.root]) != str(self.root):
            raise Invalid("path escapes the blob store root")
        return Path(full)

    def _blob_path(self, sha256: str) -> Path:
        return self._path(layout.blob_key(check_sha256(sha256)))

    # -- blobs --------------------------------------------------------------------------

    def uri(self, sha256: str) -> str:
        return self._blob_path(sha256).as_uri()

    def exists(self, sha256: str) -> bool:
        return self._blob_path(sha256).is_file()

    def stat(self, sha256: str) -> BlobInfo:
        try:
            st = self._blob_path(sha256).stat()
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored") from None
        return BlobInfo(sha256.lower(), st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def open(self, sha256: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        path = self._blob_path(sha256)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored") from None
        if offset < 0 or (offset >= size and not (offset == 0 and size == 0)):
            raise RangeNotSatisfiable(f"offset {offset} is outside the blob", size=size)
        remaining = size - offset if length is None else min(length, size - offset)
        return read_blocks(path, offset, remaining, BLOCK_SIZE)

    @staticmethod
    def _read(
        handle: io.FileIO, offset: int, remaining: int, *, close: bool = True
    ) -> Iterator[bytes]:
        fd = handle.fileno()
        try:
            while remaining > 0:
                block = os.pread(fd, min(BLOCK_SIZE, remaining), offset)
                if not block:
                    break
                offset += len(block)
                remaining -= len(block)
                yield block
        finally:
            if close:
                handle.close()

    def put(
        self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None
    ) -> BlobInfo:
        expected = check_sha256(sha256) if sha256 is not None else None
        meter = Meter(chunks, hasher=hashlib.sha256(), limit=size)
        if expected is not None and self.exists(expected):
            # Already stored: check the bytes without writing them a second time.
            meter.drain()
            verify(
                sha256=expected, size=size, actual_sha256=meter.hexdigest(), actual_size=meter.size
            )
            return self._refresh(expected)
        upload_id = str(uuid.uuid4())
        self.start_staging(upload_id)
        try:
            part = self.write_part(upload_id, "", 0, meter)
            digest = meter.hexdigest()
            verify(sha256=expected, size=size, actual_sha256=digest, actual_size=meter.size)
            return self.commit_staging(upload_id, "", [part], digest)
        finally:
            self.abort_staging(upload_id, "")

    def _refresh(self, sha256: str) -> BlobInfo:
        # Content stored again counts as new: gc's orphan scan spares recent files.
        try:
            os.utime(self._blob_path(sha256))
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored") from None
        return self.stat(sha256)

    def delete(self, sha256: str) -> None:
        self._blob_path(sha256).unlink(missing_ok=True)

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
        path = self._blob_path(sha256)
        return path if path.is_file() else None

    def iter_blobs(self) -> Iterator[BlobInfo]:
        base = self.root / layout.BLOBS_PREFIX
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                key = os.path.relpath(os.path.join(dirpath, name), self.root)
                sha256 = layout.sha256_from_blob_key(key.replace(os.sep, "/"))
                if sha256 is None:
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                yield BlobInfo(sha256, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    # -- staging ------------------------------------------------------------------------

    def start_staging(self, upload_id: str) -> str:
        self._path(layout.upload_prefix(upload_id)).mkdir(parents=True, exist_ok=True)
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
        if offset is None:
            final = self._path(layout.upload_part_key(upload_id, index))
            # A free part is written beside its final name so a failed re-send keeps the old one.
            path = final.with_name(f"{final.name}.{uuid.uuid4().hex}.partial")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        else:
            final = path = self._path(layout.upload_data_key(upload_id))
            flags = os.O_WRONLY | os.O_CREAT
        start = offset or 0
        what = f"part {index} of upload {upload_id}"
        # A large part to be read back soon that has its place in the upload's file goes
        # there directly too, and a copy of it to the parking lot, where it is hashed from.
        # Any other goes through the cache: a small one is faster that way (PARK_FROM), one
        # larger than a slot would be read back from the disk, and one staged on its own is
        # copied into place at commit.
        past_cache = not read_back_soon or (
            offset is not None and size is not None and PARK_FROM <= size <= self._lot.slot_size
        )
        try:
            fd = None
            if self._direct and past_cache and start % ALIGNMENT == 0:
                fd = open_direct(path, flags)
                self._direct = fd is not None
            direct = fd is not None
            if fd is None:
                fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            raise NotFound(f"upload {upload_id} has no staging area") from None
        except OSError as exc:
            raise _translate(exc, what) from exc
        copy = Copy(self._lot, chunks) if direct and read_back_soon else None
        try:
            written = self._write_stream(fd, copy or chunks, start, direct=direct, what=what)
            _guarded(_start_writeback, what, fd, start, written)
        except BaseException:
            if copy is not None:
                copy.discard()
            os.close(fd)
            if offset is None:
                os.unlink(path)
            raise
        os.close(fd)
        if offset is None:
            os.replace(path, final)
        part = StagedPart(index=index, size=written, etag=uuid.uuid4().hex, offset=offset)
        if copy is not None:
            copy.park(upload_id, index, part.etag)
        return part

    @staticmethod
    def _write_stream(
        fd: int, chunks: Iterable[bytes], start: int, *, direct: bool, what: str
    ) -> int:
        """Write ``chunks`` at ``start``; the number of bytes written.

        Only errors of our own writes are storage errors; the producer's (a dropped
        client, say) propagate unchanged.
        """
        size = 0
        if not direct:
            for block in chunks:
                _guarded(_write_all, what, fd, block, start + size)
                size += len(block)
            return size
        writer = DirectWriter(fd, start)
        flush = False
        try:
            for block in chunks:
                _guarded(writer.write, what, block)
                size += len(block)
            flush = True
        finally:
            if flush:
                _guarded(writer.close, what)
            else:
                writer.close(flush=False)
        return size

    def assemble_staging(self, upload_id: str, token: str, parts: Sequence[StagedPart]) -> None:
        return None  # parts are read where they lie; commit joins them

    def read_parts(
        self, upload_id: str, token: str, parts: Sequence[StagedPart]
    ) -> Iterator[bytes]:
        for part in parts:
            if part.offset is None:
                key = layout.upload_part_key(upload_id, part.index)
                start = 0
            else:
                key = layout.upload_data_key(upload_id)
                start = part.offset
            if part.offset is not None and (
                slot := self._lot.take(upload_id, part.index, part.etag, part.size)
            ):
                yield from self._lot.read(slot)
                continue
            try:
                handle = io.FileIO(self._path(key), "rb")
            except FileNotFoundError:
                raise NotFound(f"part {part.index} of upload {upload_id} is not staged") from None
            if part.offset is None:  # copied into place at commit: keep its cache for that
                yield from self._read(handle, start, part.size)
                continue
            with handle:
                # Past the cache where it does not hold the bytes (a part written direct).
                yield from read_blocks(self._path(key), start, part.size, BLOCK_SIZE)
                _guarded(
                    _drop_cached,
                    f"part {part.index} of upload {upload_id}",
                    handle.fileno(),
                    start,
                    part.size,
                )

    def commit_staging(
        self, upload_id: str, token: str, parts: Sequence[StagedPart], sha256: str
    ) -> BlobInfo:
        target = self._blob_path(sha256)
        total = sum(part.size for part in parts)
        if target.is_file():
            self.abort_staging(upload_id, token)
            return self._refresh(sha256)
        try:
            source = self._join(upload_id, sorted(parts, key=lambda part: part.index), total)
            self._fsync_file(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _fsync_dir(target.parent)
        except FileNotFoundError:
            raise NotFound(f"upload {upload_id} is missing staged bytes") from None
        except OSError as exc:
            raise _translate(exc, f"blob {sha256}") from exc
        self.abort_staging(upload_id, token)
        return BlobInfo(sha256, total, datetime.now(UTC))

    def _join(self, upload_id: str, ordered: Sequence[StagedPart], total: int) -> Path:
        """A file holding the parts in order, moving as few bytes as possible.

        Parts already at their final offset in the shared data file stay where they
        are; parts staged on their own are copied into their place. Only when a part
        in the data file sits somewhere else (sizes that were not uniform) is
        everything copied into a new file.
        """
        if len(ordered) == 1 and ordered[0].offset is None:
            return self._path(layout.upload_part_key(upload_id, ordered[0].index))
        finals, position = [], 0
        for part in ordered:
            finals.append(position)
            position += part.size
        if any(
            part.offset is not None and part.offset != final
            for part, final in zip(ordered, finals, strict=True)
        ):
            return self._concatenate(upload_id, ordered)
        data = self._path(layout.upload_data_key(upload_id))
        out = os.open(data, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for part, final in zip(ordered, finals, strict=True):
                if part.offset is None:
                    self._copy_part(upload_id, part, out, final)
            os.ftruncate(out, total)
        finally:
            os.close(out)
        return data

    def _copy_part(self, upload_id: str, part: StagedPart, out: int, at: int | None) -> None:
        """Copy a part staged on its own into ``out`` (at ``at``, or at its current position)."""
        source = self._path(layout.upload_part_key(upload_id, part.index))
        src = os.open(source, os.O_RDONLY)
        try:
            remaining, offset_in = part.size, 0
            while remaining > 0:
                # Copies inside the kernel (or shares extents where the filesystem can).
                if at is None:
                    copied = os.copy_file_range(src, out, remaining)
                else:
                    copied = os.copy_file_range(src, out, remaining, offset_in, at + offset_in)
                if copied == 0:
                    raise Invalid(f"part {part.index} of upload {upload_id} is short")
                remaining -= copied
                offset_in += copied
        finally:
            os.close(src)

    @staticmethod
    def _fsync_file(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _concatenate(self, upload_id: str, parts: Sequence[StagedPart]) -> Path:
        joined = self._path(layout.upload_joined_key(upload_id))
        data = self._path(layout.upload_data_key(upload_id))
        out = os.open(joined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for part in parts:
                if part.offset is None:
                    self._copy_part(upload_id, part, out, None)
                    continue
                src = os.open(data, os.O_RDONLY)
                try:
                    remaining, position = part.size, part.offset
                    while remaining > 0:
                        copied = os.copy_file_range(src, out, remaining, position)
                        if copied == 0:
                            raise Invalid(f"part {part.index} of upload {upload_id} is short")
                        remaining -= copied
                        position += copied
                finally:
                    os.close(src)
        finally:
            os.close(out)
        return joined

    def abort_staging(self, upload_id: str, token: str) -> None:
        self._lot.forget(upload_id)
        shutil.rmtree(self._path(layout.upload_prefix(upload_id)), ignore_errors=True)

    def iter_staging(self) -> Iterator[StagingInfo]:
        base = self.root / layout.UPLOADS_PREFIX
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                upload_id = str(uuid.UUID(entry.name))
                mtime = entry.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue
            yield StagingInfo(upload_id, datetime.fromtimestamp(mtime, UTC))
