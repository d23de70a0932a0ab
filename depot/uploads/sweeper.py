"""Expiry of upload sessions and cleanup of bytes that no session owns any more."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from depot.db.base import affected_rows, utcnow
from depot.uploads.models import UploadSession, UploadStatus
from depot.uploads.service import UploadService

__all__ = ["SweepReport", "TERMINAL_RETENTION", "sweep_uploads"]

log = logging.getLogger(__name__)

# Finished sessions stay readable this long (clients poll status after completing).
TERMINAL_RETENTION = timedelta(days=7)

_LIVE = (UploadStatus.INITIALIZED, UploadStatus.UPLOADING, UploadStatus.COMPLETING)


@dataclass
class SweepReport:
    """What one sweep did."""

    expired: int = 0
    staging_removed: int = 0
    rows_deleted: int = 0


def sweep_uploads(
    service: UploadService, *, now: datetime | None = None, batch: int = 200
) -> SweepReport:
    """Expire overdue sessions, drop orphaned staged bytes and old finished sessions.

    Safe to run from several processes: each overdue session is claimed with
    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serializes writers anyway).
    """
    now = now or utcnow()
    report = SweepReport()
    while True:
        with service.database.write() as db:
            rows = list(
                db.scalars(
                    select(UploadSession)
                    .where(UploadSession.status.in_(_LIVE), UploadSession.expires_at <= now)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                service.expire_session(db, row)
        report.expired += len(rows)
        if len(rows) < batch:
            break

    report.staging_removed = _remove_orphaned_staging(service, now)

    with service.database.write() as db:
        old = delete(UploadSession).where(
            UploadSession.status.not_in(_LIVE),
            UploadSession.updated_at <= now - TERMINAL_RETENTION,
        )
        report.rows_deleted = affected_rows(db.execute(old))
    if report.expired or report.staging_removed or report.rows_deleted:
        log.info("upload sweep: %s", report)
    return report


def _remove_orphaned_staging(service: UploadService, now: datetime) -> int:
    """Staged bytes whose session is finished, or that have had no session for a whole expiry."""
    # A single-shot put stages without a session row; it is only an orphan once it is
    # older than any upload could legitimately take.
    patience = timedelta(seconds=service.settings.upload_expiry_seconds)
    removed = 0
    for staged in service.store.iter_staging():
        with service.database.read() as db:
            row = db.get(UploadSession, uuid.UUID(staged.upload_id))
            live = row is not None and row.status in _LIVE
            token = row.storage_token if row is not None else ""
        if live or (row is None and staged.modified_at > now - patience):
            continue
        service.store.abort_staging(staged.upload_id, staged.token or token)
        removed += 1
    return removed
