"""Progress of a push or a pull, as reported to a callback while it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "TransferProgress"]


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
