"""Writing and reading bytes past the page cache (``O_DIRECT``), through page-aligned buffers.

Why: a blob is fsynced before it becomes visible, so its bytes go to the disk anyway.
Written through the page cache they first fill fresh pages (on a VM the hypervisor backs
each one as it is first touched) and then wait for writeback at the fsync. On the 2-core
VM of docs/performance.md, 1 GiB written through the cache and fsynced took 2.1–2.9 s
(370–500 MB/s); the same written with ``O_DIRECT`` 0.5–0.75 s (1.4–2.1 GB/s). Object
stores such as MinIO write large objects the same way. An upload chunk that arrived before
the ones in front of it, to be hashed later, goes this way too when it is large, with a
copy parked in page cache the process reuses (:mod:`depot.blobs.parking`); a small one goes
through the cache, where reading it back costs nothing.

``O_DIRECT`` wants the memory, the file position and the length of every write aligned to
the device's block size. The writer copies the stream into a page-aligned buffer and
writes whole buffers; the unaligned tail of the stream goes through the cache (the fd's
``O_DIRECT`` flag is dropped for it), made durable by the same fsync as the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["ALIGNMENT", "O_DIRECT", "DirectWriter", "in_page_cache", "open_direct", "read_blocks"]

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


# Blocks read ahead of the one being sent, per reader: direct reads have no kernel
# read-ahead, and one at a time they moved 0.5–0.9 GB/s here against 1.4–2.2 GB/s for
# buffered reads of the same file.
_READ_AHEAD = 4
_reads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="depot-direct-read")


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mmap.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_int64,
        ]  # fmt: skip
        libc.mmap.restype = ctypes.c_void_p
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()
_MAP_FAILED = ctypes.c_void_p(-1).value


def read_blocks(
    path: str | os.PathLike[str], offset: int, length: int, block: int
) -> Iterator[bytes]:
    """Bytes ``[offset, offset + length)`` of the file at ``path``, in blocks of ``block``.

    A block the page cache holds whole comes from there; any other is read from the disk
    with ``O_DIRECT``, a few blocks ahead. Why: a blob read once (a download) would
    otherwise fill fresh page cache, which on a VM costs what fresh memory costs: on the
    2-core VM of docs/performance.md the first download of a 1 GiB blob just uploaded
    went at 325–440 MB/s with 2.6–3.2 s of server CPU through the cache, and at 910 MB/s
    with 1.0 s past it. The price: a blob downloaded often is read from the disk each
    time unless something else brought it into the cache.

    Raises:
        FileNotFoundError: there is no file at ``path`` (when the first block is asked for).
    """
    if block + 2 * ALIGNMENT > BUFFER_SIZE:
        raise ValueError(f"blocks of at most {BUFFER_SIZE - 2 * ALIGNMENT} bytes")
    with contextlib.ExitStack() as closing:
        fd = os.open(path, os.O_RDONLY)
        closing.callback(os.close, fd)
        direct = open_direct(path, os.O_RDONLY) if _libc is not None else None
        end = offset + length
        if direct is None:  # no O_DIRECT here (tmpfs, macOS): through the cache
            while offset < end and (data := os.pread(fd, min(block, end - offset), offset)):
                offset += len(data)
                yield data
            return
        closing.callback(os.close, direct)
        free = [_take_buffer() for _ in range(_READ_AHEAD)]
        pending: deque[tuple[Future[bytes], mmap.mmap]] = deque()
        closing.callback(_settle, pending, free)
        while offset < end or pending:
            while offset < end and free:
                want, buffer = min(block, end - offset), free.pop()
                pending.append(
                    (_reads.submit(_read_block, fd, direct, buffer, offset, want), buffer)
                )
                offset += want
            future, buffer = pending[0]
            data = future.result()
            pending.popleft()
            free.append(buffer)
            if not data:
                return  # the file ended early
            yield data


def _settle(pending: deque[tuple[Future[bytes], mmap.mmap]], free: list[mmap.mmap]) -> None:
    """Wait for the reads still in flight, then give every buffer back."""
    for future, buffer in pending:
        with contextlib.suppress(Exception):
            future.result()
        free.append(buffer)
    pending.clear()
    for buffer in free:
        _give_back(buffer)


def _read_block(fd: int, direct: int, buffer: mmap.mmap, offset: int, want: int) -> bytes:
    """``want`` bytes at ``offset`` (fewer at the end): from the cache if there, else the disk."""
    if _in_cache(fd, offset, want):
        return os.pread(fd, want, offset)
    start = offset - offset % ALIGNMENT
    stop = -(-(offset + want) // ALIGNMENT) * ALIGNMENT
    with memoryview(buffer) as view:
        with view[: stop - start] as window:
            got = os.preadv(direct, [window], start)
        available = max(0, start + got - offset)
        return bytes(view[offset - start : offset - start + min(want, available)])


def _in_cache(fd: int, offset: int, length: int) -> bool:
    """Whether every page of bytes ``[offset, offset + length)`` of ``fd`` is in the page cache.

    ``mincore`` on a mapping of the range, never touched, answers without reading anything
    (a read with ``RWF_NOWAIT`` answers too, but starts read-ahead into the cache).
    Where that cannot be asked, the answer is yes: read through the cache as usual.
    """
    if _libc is None:
        return True
    start = offset - offset % ALIGNMENT
    span = offset + length - start
    address = _libc.mmap(None, span, mmap.PROT_READ, mmap.MAP_SHARED, fd, start)
    if address in (None, _MAP_FAILED):
        return True
    try:
        pages = ctypes.create_string_buffer(-(-span // ALIGNMENT))
        if _libc.mincore(address, span, pages) != 0:
            return True
        return b"\x00" not in pages.raw  # a byte per page, bit 0 set where it is resident
    finally:
        _libc.munmap(address, span)


# Windows of the file that ``in_page_cache`` looks at: asking about every page of 1 GiB took
# 16 ms (3 % of sending it from the cache), these 16 windows of 1 MiB take a fraction of one.
_WINDOWS = 16
_WINDOW = 1024 * 1024


def in_page_cache(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is in the page cache, judged by 16 windows spread over it.

    ``False`` if there is no file. A file the cache holds in part may be judged either way:
    whatever is missing is then read through the cache, or past it, as for a whole file.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size <= _WINDOWS * _WINDOW:
            return size == 0 or _in_cache(fd, 0, size)
        step = (size - _WINDOW) // (_WINDOWS - 1)
        return all(_in_cache(fd, i * step, _WINDOW) for i in range(_WINDOWS))
    finally:
        os.close(fd)
