"""Hints to the kernel about how the client uses the local files it reads and writes."""

from __future__ import annotations

import os

__all__ = ["drop_from_cache", "read_sequentially"]

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
