from __future__ import annotations

import hashlib
from datetime import timedelta

from depot.blobs.models import Blob
from depot.catalog import service as catalog
from depot.db.base import utcnow
from depot.jobs.gc import collect_garbage
from depot.services import Services
from tests.conftest import World


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def link(services: Services, digest: str) -> None:
    with services.database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        artifact = catalog.create_artifact(db, space, "kept", "artifact")
        version = catalog.create_version(db, artifact)
        catalog.add_file(db, version, "kept.bin", digest)
        catalog.finalize_version(db, version)


def test_unreferenced_blobs_are_collected(services: Services, world: World) -> None:
    kept = services.uploads.upload_blob([b"referenced"]).sha256
    garbage = services.uploads.upload_blob([b"nobody wants me"]).sha256
    link(services, kept)
    later = utcnow() + timedelta(seconds=1)

    dry = collect_garbage(
        services.database, services.store, grace=timedelta(0), dry_run=True, now=later
    )
    assert dry.digests == [garbage] and dry.total_bytes == len(b"nobody wants me")
    assert services.store.exists(garbage)

    report = collect_garbage(services.database, services.store, grace=timedelta(0), now=later)
    assert report.digests == [garbage] and report.blobs == 1
    assert not services.store.exists(garbage) and services.store.exists(kept)
    with services.database.read() as db:
        assert db.get(Blob, garbage) is None and db.get(Blob, kept) is not None


def test_recent_blobs_are_spared(services: Services) -> None:
    digest = services.uploads.upload_blob([b"just uploaded"]).sha256
    report = collect_garbage(services.database, services.store, grace=timedelta(hours=1))
    assert report.digests == [] and services.store.exists(digest)


def test_bytes_without_a_row_are_collected(services: Services) -> None:
    digest = services.store.put([b"crashed before recording"]).sha256
    report = collect_garbage(
        services.database, services.store, grace=timedelta(0), now=utcnow() + timedelta(seconds=5)
    )
    assert report.orphans == 1 and report.digests == [digest]
    assert not services.store.exists(digest)


def test_a_deleted_version_frees_its_blob(services: Services, world: World) -> None:
    digest = services.uploads.upload_blob([b"soon unreferenced"]).sha256
    link(services, digest)
    later = utcnow() + timedelta(seconds=1)
    assert (
        collect_garbage(services.database, services.store, grace=timedelta(0), now=later).digests
        == []
    )
    with services.database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        version = catalog.resolve_version(db, catalog.get_artifact(db, space, "kept"))
        catalog.delete_version(db, version)
    report = collect_garbage(services.database, services.store, grace=timedelta(0), now=later)
    assert report.digests == [digest]


def test_an_upload_touching_a_blob_rescues_it(services: Services) -> None:
    old = services.uploads.upload_blob([b"old content"]).sha256
    with services.database.write() as db:
        row = db.get(Blob, old)
        assert row is not None
        row.touched_at = utcnow() - timedelta(days=2)
    view = services.uploads.start_upload(space_id=None, created_by_id=None, size=11)
    services.uploads.receive_chunk(view.id, 0, [b"old content"])
    services.uploads.complete_upload(view.id)
    report = collect_garbage(services.database, services.store, grace=timedelta(hours=1))
    assert report.digests == [] and services.store.exists(old)
