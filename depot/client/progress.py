"""Progress of a push or a pull, as reported to a callback while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressMeter", "TransferProgress"]


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer stands.

    ``done_bytes`` counts bytes moved over the network in this run plus bytes that
    needed no moving (already on the server, already on disk), so that it ends at
    ``total_bytes`` and a rate computed from it means something only over this run's
    part; ``skipped_bytes`` says how much of ``done_bytes`` was not moved.
    """

    total_bytes: int
    done_bytes: int
    skipped_bytes: int
    total_files: int
    done_files: int
    phase: str = "transfer"  # "hash" while digests are computed, then "transfer", then "done"


ProgressCallback = Callable[[TransferProgress], None]


class ProgressMeter:
    """Counts a transfer's bytes and files from several threads and reports each change.

    Reports go to the callback one at a time (under a lock), so a callback that draws a
    progress bar needs no locking of its own.
    """

    def __init__(self, callback: ProgressCallback | None, total_bytes: int, total_files: int):
        self.callback = callback
        self.total_bytes, self.total_files = total_bytes, total_files
        self.done_bytes = self.skipped_bytes = self.done_files = self.moved_bytes = 0
        self.phase = "hash"
        self._lock = threading.Lock()

    def restart(self, phase: str) -> None:
        """Begin ``phase`` from zero (a push hashes everything, then sends)."""
        with self._lock:
            self.phase = phase
            self.done_bytes = self.skipped_bytes = self.done_files = self.moved_bytes = 0
            self._report()

    def add(
        self,
        *,
        moved: int = 0,
        skipped: int = 0,
        files: int = 0,
        report: bool = True,
    ) -> None:
        """Count bytes moved over the network (negative for bytes of a failed attempt that
        will move again), bytes that need no moving, and finished files."""
        with self._lock:
            self.moved_bytes += moved
            self.done_bytes += moved + skipped
            self.skipped_bytes += skipped
            self.done_files += files
            if report:
                self._report()

    def report(self, phase: str | None = None) -> None:
        """Report now, entering ``phase`` if given."""
        with self._lock:
            if phase is not None:
                self.phase = phase
            self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(
                TransferProgress(
                    total_bytes=self.total_bytes,
                    done_bytes=self.done_bytes,
                    skipped_bytes=self.skipped_bytes,
                    total_files=self.total_files,
                    done_files=self.done_files,
                    phase=self.phase,
                )
            )
