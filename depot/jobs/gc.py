"""Garbage collection: delete blobs that no file references any more.

Two kinds of garbage: blob rows no file points at, and bytes in the store with
no row at all (left by a crash between writing the bytes and recording them).
Both are spared while younger than the grace period, so an upload that has just
produced a blob has time to link it to a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, select

from depot.blobs.models import Blob
from depot.blobs.store import BlobStore
from depot.catalog.models import File
from depot.db.base import utcnow
from depot.db.engine import Database

__all__ = ["GcReport", "collect_garbage"]

log = logging.getLogger(__name__)


@dataclass
class GcReport:
    """What a collection found (and, unless it was a dry run, deleted)."""

    dry_run: bool
    blobs: int = 0
    bytes: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    digests: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Bytes freed (or to be freed) in all."""
        return self.bytes + self.orphan_bytes


def collect_garbage(
    database: Database,
    store: BlobStore,
    *,
    grace: timedelta,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Delete unreferenced blobs older than ``grace``; with ``dry_run`` only count them."""
    cutoff = (now or utcnow()) - grace
    report = GcReport(dry_run=dry_run)
    unreferenced = select(Blob).where(
        Blob.touched_at < cutoff, ~exists().where(File.blob_sha256 == Blob.sha256)
    )
    with database.read() as db:
        candidates = [(row.sha256, row.size) for row in db.scalars(unreferenced)]
    for sha256, size in candidates:
        if not dry_run and not _delete_blob(database, store, unreferenced, sha256):
            continue
        report.blobs += 1
        report.bytes += size
        report.digests.append(sha256)

    with database.read() as db:
        known = set(db.scalars(select(Blob.sha256)))
    for info in store.iter_blobs():
        if info.sha256 in known or (info.modified_at is not None and info.modified_at >= cutoff):
            continue
        if not dry_run:
            with database.write() as db:
                # Recorded since the scan began? Then it is not an orphan.
                if db.get(Blob, info.sha256) is not None:
                    continue
                store.delete(info.sha256)
        report.orphans += 1
        report.orphan_bytes += info.size
        report.digests.append(info.sha256)
    if not dry_run and report.digests:
        log.info("gc freed %d blobs, %d bytes", report.blobs + report.orphans, report.total_bytes)
    return report


def _delete_blob(
    database: Database, store: BlobStore, unreferenced: Select[Blob], sha256: str
) -> bool:
    with database.write() as db:
        # Re-check under the row lock: an upload may have touched it, or a file linked it.
        # SKIP LOCKED: a blob another collector (or an upload) holds is left for later.
        row = db.scalar(unreferenced.where(Blob.sha256 == sha256).with_for_update(skip_locked=True))
        if row is None:
            return False
        # Bytes go first, while the row is held: a concurrent upload of the same
        # content waits for this transaction, finds no row, and writes the bytes again.
        store.delete(sha256)
        db.delete(row)
    return True
