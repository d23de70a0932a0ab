from __future__ import annotations

import uuid
from datetime import timedelta

from depot.blobs.store import BlobStore
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.services import Services
from depot.uploads.models import UploadSession
from depot.uploads.sweeper import TERMINAL_RETENTION, sweep_uploads


def staged_ids(store: BlobStore) -> set[str]:
    return {staged.upload_id for staged in store.iter_staging()}


def test_overdue_sessions_expire_and_lose_their_bytes(services: Services) -> None:
    uploads = services.uploads
    live = uploads.start_upload(space_id=None, created_by_id=None, size=3)
    overdue = uploads.start_upload(space_id=None, created_by_id=None, size=3)
    for view in (live, overdue):
        uploads.receive_chunk(view.id, 0, [b"abc"])
    report = sweep_uploads(uploads, now=utcnow() + timedelta(seconds=1))
    assert report.expired == 0
    later = overdue.expires_at + timedelta(seconds=1)  # type: ignore[operator]
    with services.database.write() as db:
        row = db.get(UploadSession, live.id)
        assert row is not None
        row.expires_at = utcnow() + timedelta(days=30)
    report = sweep_uploads(uploads, now=later)
    assert report.expired == 1
    assert uploads.get_upload(overdue.id).status == "expired"
    assert uploads.get_upload(live.id).status == "uploading"
    assert staged_ids(services.store) == {str(live.id)}


def test_bytes_without_a_live_session_are_removed(services: Services) -> None:
    store = services.store
    uploads = services.uploads
    done = uploads.start_upload(space_id=None, created_by_id=None, size=1)
    uploads.abort_upload(done.id)
    store.start_staging(str(done.id))  # bytes reappeared for a finished session
    stray = str(uuid.uuid4())
    store.start_staging(stray)  # bytes with no session at all
    report = sweep_uploads(uploads)
    assert report.staging_removed == 1
    assert staged_ids(store) == {stray}  # too young: could be a single-shot put in progress
    patience = timedelta(seconds=services.settings.upload_expiry_seconds + 1)
    assert sweep_uploads(uploads, now=utcnow() + patience).staging_removed == 1
    assert staged_ids(store) == set()


def test_old_finished_sessions_are_deleted(services: Services, database: Database) -> None:
    uploads = services.uploads
    view = uploads.start_upload(space_id=None, created_by_id=None, size=1)
    uploads.abort_upload(view.id)
    assert sweep_uploads(uploads).rows_deleted == 0
    report = sweep_uploads(uploads, now=utcnow() + TERMINAL_RETENTION + timedelta(minutes=1))
    assert report.rows_deleted == 1
    with database.read() as db:
        assert db.get(UploadSession, view.id) is None
