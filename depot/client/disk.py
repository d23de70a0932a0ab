"""Hints to the kernel about how the client uses the local files it reads and writes."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os

__all__ = ["ALIGNMENT", "drop_from_cache", "read_sequentially", "set_direct"]

# Not on macOS, where the hints are skipped.
_FADV_SEQUENTIAL: int | None = getattr(os, "POSIX_FADV_SEQUENTIAL", None)
_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


def read_sequentially(fd: int) -> None:
    """Tell the kernel the file ``fd`` is about to be read from start to end.

    It then reads further ahead. A file just pulled has left the page cache (see
    ``depot.client.pull``); hashing 1 GiB of it from the disk took 0.63–0.67 s with this
    hint and 0.94–0.95 s without, on the VM of docs/performance.md. A push hashes files
    the same way before it sends them.
    """
    if _FADV_SEQUENTIAL is not None:
        os.posix_fadvise(fd, 0, 0, _FADV_SEQUENTIAL)


def drop_from_cache(fd: int, offset: int, length: int) -> None:
    """Let the kernel reuse the page cache of bytes ``[offset, offset + length)`` of ``fd``.

    Only pages already on disk are dropped: call it after an fsync of the range.
    """
    if _FADV_DONTNEED is not None:
        os.posix_fadvise(fd, offset, length, _FADV_DONTNEED)


# Page size: a multiple of every logical block size Linux supports, so a buffer, a file
# position and a length aligned to it suit O_DIRECT on any device.
ALIGNMENT = mmap.PAGESIZE
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


def set_direct(fd: int, direct: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; whether it is now on.

    Writes past the page cache need their buffer, position and length aligned to
    ``ALIGNMENT``. Where the platform or the filesystem refuses the flag (macOS,
    tmpfs), it stays off and writes go through the cache.
    """
    if not _O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if direct else flags & ~_O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    return direct and bool(fcntl.fcntl(fd, fcntl.F_GETFL) & _O_DIRECT)
