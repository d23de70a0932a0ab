"""Copies of early upload parts, kept in page cache that a process reuses.

An upload part that arrives before the ones in front of it cannot be hashed yet: the
digest of the whole must take the bytes in order. The part itself is written to the disk
at its place at once, as a part in order is (durable when answered, past the page cache);
a copy goes into a slot of this process's parking lot, one unlinked file whose pages stay
in the page cache, and is hashed from there when its turn comes.

Why not keep the early part in the page cache of the upload's own file, as Depot did
before: on a VM the hypervisor charges the first touch of a guest page (about 2.4 s of CPU
a GiB on the 2-core VM of docs/performance.md) and takes back pages the guest has freed
after a couple of seconds, so every early part written there landed in pages that cost
that much again. The lot's pages are touched once and then overwritten in place (0.1 s a
GiB). A 1 GiB upload whose chunks all arrive early, after memory churn: 2.6 s of CPU and
371-379 MB/s the old way, 0.8 s and 833-854 MB/s with the lot.

A copy is only a cache: a part whose copy is gone (evicted, parked by another process,
lost with a restart) is read back from its file. The lot is page cache, not process
memory: the kernel may reclaim it under pressure, and it is gone with the process.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Copy", "ParkingLot", "Slot"]

# Slots of 64 MiB (the chunk API's default chunk); a larger part is never parked. With four
# chunks in flight, three may be on their way into the lot while three more wait there.
SLOTS = 8
SLOT_SIZE = 64 * 1024 * 1024
# A copy parked this long ago belongs to an upload that went elsewhere (completed by another
# process, expired): a part that needs a slot may take its place. A younger copy is about to
# be hashed, and evicting it would only send it to the disk instead of the newcomer.
STALE_AFTER = 60.0
_READ_BLOCK = 1024 * 1024


@dataclass(eq=False)
class Slot:
    """One slot of the lot: its place in the file and how much of it holds a copy."""

    number: int
    size: int = 0
    parked_at: float = 0.0


class ParkingLot:
    """Slots in one unlinked file under ``directory``, opened by the first part parked.

    A writer reserves a slot, copies the part into it and parks it under the part's key
    (upload, index, etag); a reader takes it out by key, reads it, and so releases it.
    When no slot is free, a part takes the slot of a stale copy, or goes unparked. An error of
    the lot's own file turns the lot off: parts are then read back from their files.
    """

    def __init__(self, directory: Path, slots: int = SLOTS, slot_size: int = SLOT_SIZE) -> None:
        self.directory = directory
        self.slot_size = slot_size
        self._slots = slots
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._broken = False
        self._free: list[Slot] = []
        self._parked: dict[tuple[str, int, str], Slot] = {}  # oldest first
        self.clock = time.monotonic

    def reserve(self) -> Slot | None:
        """A slot to copy a part into, or ``None`` when the lot cannot take one now."""
        with self._lock:
            if not self._open():
                return None
            if self._free:
                slot = self._free.pop()
            elif self._parked and next(iter(self._parked.values())).parked_at < (
                self.clock() - STALE_AFTER
            ):
                slot = self._parked.pop(next(iter(self._parked)))
            else:
                return None  # every slot is being written, read, or will be soon
            slot.size = 0
            return slot

    def write(self, slot: Slot, data: bytes | memoryview) -> bool:
        """Append ``data`` to the slot's copy. ``False``, with the slot released, when it
        does not fit or the lot's file fails."""
        fd = self._fd
        if fd is None or slot.size + len(data) > self.slot_size:
            self.release(slot)
            return False
        try:
            written = os.pwrite(fd, data, slot.number * self.slot_size + slot.size)
        except OSError:  # no space left, say: the lot is off, the upload goes on
            self._broken = True
            written = -1
        if written != len(data):
            self.release(slot)
            return False
        slot.size += written
        return True

    def park(self, slot: Slot, upload_id: str, index: int, etag: str) -> None:
        """File the slot's copy under the part's key, replacing a copy of an earlier send."""
        with self._lock:
            if not self._mine():
                return
            for key in [key for key in self._parked if key[:2] == (upload_id, index)]:
                self._free_locked(self._parked.pop(key))
            slot.parked_at = self.clock()
            self._parked[(upload_id, index, etag)] = slot

    def take(self, upload_id: str, index: int, etag: str, size: int) -> Slot | None:
        """The slot holding this part's copy, now the caller's to :meth:`read`; or ``None``."""
        with self._lock:
            if not self._mine():
                return None
            slot = self._parked.pop((upload_id, index, etag), None)
            if slot is not None and slot.size != size:
                self._free_locked(slot)
                return None
            return slot

    def read(self, slot: Slot) -> Iterator[bytes]:
        """The slot's copy in blocks; the slot is released when done or abandoned.

        Raises:
            OSError: the lot's file could not be read.
        """
        try:
            fd, start, done = self._fd, slot.number * self.slot_size, 0
            if fd is None:
                raise OSError("the parking lot is off")
            while done < slot.size:
                block = os.pread(fd, min(_READ_BLOCK, slot.size - done), start + done)
                if not block:
                    raise OSError("the parking lot's file is short")
                done += len(block)
                yield block
        finally:
            self.release(slot)

    def forget(self, upload_id: str) -> None:
        """Drop every copy of the upload's parts (committed or aborted)."""
        with self._lock:
            if not self._mine():
                return
            for key in [key for key in self._parked if key[0] == upload_id]:
                self._free_locked(self._parked.pop(key))

    def release(self, slot: Slot) -> None:
        with self._lock:
            self._free_locked(slot)

    def parked(self) -> int:
        """How many copies are parked now."""
        with self._lock:
            return len(self._parked) if self._mine() else 0

    # -- inside the lock ----------------------------------------------------------------

    def _free_locked(self, slot: Slot) -> None:
        slot.size = 0
        if self._mine() and slot not in self._free:
            self._free.append(slot)

    def _mine(self) -> bool:
        """Whether the lot is open in this process (a forked child never uses its
        parent's file: it opens its own)."""
        if self._fd is not None and os.getpid() != self._pid:
            self._fd, self._free, self._parked = None, [], {}
        return self._fd is not None and not self._broken

    def _open(self) -> bool:
        if self._mine():
            return True
        if self._broken:
            return False
        path = self.directory / f".parking-{uuid.uuid4().hex}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            self._broken = True
            return False
        os.unlink(path)  # gone with the process, whatever happens to it
        # Closed when the lot is collected: never while a thread may still write to it.
        weakref.finalize(self, os.close, fd)
        self._fd, self._pid = fd, os.getpid()
        self._free = [Slot(number) for number in reversed(range(self._slots))]
        return True


class Copy:
    """The blocks of a part passed on unchanged, each also copied into a slot of ``lot``
    while the part fits. After the last block, :meth:`park` or :meth:`discard` the copy."""

    def __init__(self, lot: ParkingLot, blocks: Iterable[bytes]) -> None:
        self.lot = lot
        self.blocks = blocks
        self.slot = lot.reserve()

    def __iter__(self) -> Iterator[bytes]:
        for block in self.blocks:
            if self.slot is not None and not self.lot.write(self.slot, block):
                self.slot = None
            yield block

    def park(self, upload_id: str, index: int, etag: str) -> None:
        if self.slot is not None:
            self.lot.park(self.slot, upload_id, index, etag)
            self.slot = None

    def discard(self) -> None:
        if self.slot is not None:
            self.lot.release(self.slot)
            self.slot = None
