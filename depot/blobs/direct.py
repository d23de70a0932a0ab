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

import contextlib
import errno
import fcntl
import mmap
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["ALIGNMENT", "O_DIRECT", "DirectWriter", "open_direct"]

# Page size: a multiple of every device's logical block size that Linux supports.
ALIGNMENT = mmap.PAGESIZE
O_DIRECT: int = getattr(os, "O_DIRECT", 0)
BUFFER_SIZE = 2 * 1024 * 1024
# Buffers kept for the next writer (one writer's pair): reusing them saves the page faults
# of fresh ones; more would stay resident in an idle server (the memory target counts them).
_IDLE_BUFFERS = 2
# Where full buffers are written; each writer has at most one write in flight.
_writes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="depot-direct-write")

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

    Two buffers take turns: while one is written (in a thread of its own; the write waits
    for the device and holds no lock), the caller fills the other, so hashing and
    receiving the next bytes overlap the disk's work instead of waiting for it.

    Call :meth:`write` with blocks of any size, then :meth:`close` exactly once, also
    after an error (it returns the buffers; with ``flush=False`` nothing more is written).
    """

    def __init__(self, fd: int, position: int) -> None:
        if position % ALIGNMENT:
            raise ValueError(f"a direct write must start at a multiple of {ALIGNMENT}")
        self._fd = fd
        self._position = position
        self._buffers = [_take_buffer(), _take_buffer()]
        self._views = [memoryview(buffer) for buffer in self._buffers]
        self._current = 0
        self._filled = 0
        self._pending: Future[None] | None = None
        self._direct = True

    def write(self, data: bytes | memoryview) -> None:
        source = memoryview(data).cast("B")
        while source:
            view = self._views[self._current]
            take = min(len(source), BUFFER_SIZE - self._filled)
            view[self._filled : self._filled + take] = source[:take]
            self._filled += take
            source = source[take:]
            if self._filled == BUFFER_SIZE:
                self._wait()
                self._pending = _writes.submit(self._pwrite, view, self._position)
                self._position += BUFFER_SIZE
                self._current = 1 - self._current
                self._filled = 0

    def close(self, *, flush: bool = True) -> None:
        """Write what is buffered (whole pages directly, the tail through the cache)."""
        try:
            if not flush:
                with contextlib.suppress(Exception):
                    self._wait()
                return
            self._wait()
            view = self._views[self._current]
            aligned = self._filled - self._filled % ALIGNMENT
            if aligned:
                self._pwrite(view[:aligned], self._position)
            if self._filled > aligned:
                self._through_cache()
                self._pwrite(view[aligned : self._filled], self._position + aligned)
        finally:
            for view, buffer in zip(self._views, self._buffers, strict=True):
                view.release()
                _give_back(buffer)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _pwrite(self, data: memoryview, position: int) -> None:
        done = 0
        while done < len(data):
            written = os.pwrite(self._fd, data[done:], position + done)
            if written <= 0:
                raise OSError(errno.EIO, "the file took no bytes")
            done += written
            if done < len(data) and (done % ALIGNMENT or written % ALIGNMENT):
                self._through_cache()  # a short write left the rest unaligned

    def _through_cache(self) -> None:
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT)
            self._direct = False
