"""Writing a byte stream past the page cache (``O_DIRECT``), through page-aligned buffers.

Why: a blob is fsynced before it becomes visible, so its bytes go to the disk anyway.
Written through the page cache they first fill fresh pages (on a VM the hypervisor backs
each one as it is first touched) and then wait for writeback at the fsync. On the 2-core
VM of docs/performance.md, 1 GiB written through the cache and fsynced took 2.1–2.9 s
(370–500 MB/s); the same written with ``O_DIRECT`` 0.5–0.75 s (1.4–2.1 GB/s). Object
stores such as MinIO write large objects the same way. Bytes that will be read back soon
(an upload chunk that arrived before the ones in front of it is hashed later) keep going
through the cache, where reading them back costs nothing.

``O_DIRECT`` wants the memory, the file position and the length of every write aligned to
the device's block size. The writer copies the stream into a page-aligned buffer and
writes whole buffers; the unaligned tail of the stream goes through the cache (the fd's
``O_DIRECT`` flag is dropped for it), made durable by the same fsync as the rest.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading

__all__ = ["ALIGNMENT", "O_DIRECT", "DirectWriter", "open_direct"]

# Page size: a multiple of every device's logical block size that Linux supports.
ALIGNMENT = mmap.PAGESIZE
O_DIRECT: int = getattr(os, "O_DIRECT", 0)
BUFFER_SIZE = 4 * 1024 * 1024
# Buffers kept for the next writers: each is touched once and reused, never handed back
# to the kernel (a fresh one costs page faults). Beyond these, buffers are unmapped.
_IDLE_BUFFERS = 4

_pool: list[mmap.mmap] = []
_pool_lock = threading.Lock()


def _take_buffer() -> mmap.mmap:
    with _pool_lock:
        if _pool:
            return _pool.pop()
    return mmap.mmap(-1, BUFFER_SIZE)  # anonymous mappings start page-aligned


def _give_back(buffer: mmap.mmap) -> None:
    with _pool_lock:
        if len(_pool) < _IDLE_BUFFERS:
            _pool.append(buffer)
            return
    buffer.close()


def open_direct(path: str | os.PathLike[str], flags: int, mode: int = 0o644) -> int | None:
    """Open ``path`` for direct writes; ``None`` where the filesystem refuses them (tmpfs)."""
    if not O_DIRECT:
        return None
    try:
        return os.open(path, flags | O_DIRECT, mode)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


class DirectWriter:
    """Writes a stream at ``position`` (aligned) of ``fd``, opened with ``O_DIRECT``.

    Call :meth:`write` with blocks of any size, then :meth:`close` exactly once, also
    after an error (it returns the buffer; with ``flush=False`` nothing more is written).
    """

    def __init__(self, fd: int, position: int) -> None:
        if position % ALIGNMENT:
            raise ValueError(f"a direct write must start at a multiple of {ALIGNMENT}")
        self._fd = fd
        self._position = position
        self._buffer = _take_buffer()
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._direct = True

    def write(self, data: bytes | memoryview) -> None:
        source = memoryview(data).cast("B")
        while source:
            take = min(len(source), BUFFER_SIZE - self._filled)
            self._view[self._filled : self._filled + take] = source[:take]
            self._filled += take
            source = source[take:]
            if self._filled == BUFFER_SIZE:
                self._write_out(BUFFER_SIZE)

    def close(self, *, flush: bool = True) -> None:
        """Write what is buffered (whole pages directly, the tail through the cache)."""
        try:
            if flush and self._filled:
                aligned = self._filled - self._filled % ALIGNMENT
                if aligned:
                    self._write_out(aligned)
                if self._filled:
                    self._through_cache()
                    self._write_out(self._filled)
        finally:
            self._view.release()
            _give_back(self._buffer)

    def _write_out(self, length: int) -> None:
        """Write the buffer's first ``length`` bytes and keep what follows them."""
        done = 0
        while done < length:
            written = os.pwrite(self._fd, self._view[done:length], self._position + done)
            if written <= 0:
                raise OSError(errno.EIO, "the file took no bytes")
            done += written
            if done < length and (done % ALIGNMENT or written % ALIGNMENT):
                self._through_cache()  # a short write left the rest unaligned
        self._position += length
        rest = self._filled - length
        if rest:
            self._view[:rest] = self._view[length : self._filled]
        self._filled = rest

    def _through_cache(self) -> None:
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT)
            self._direct = False
