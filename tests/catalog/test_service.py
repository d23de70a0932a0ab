from __future__ import annotations

import pytest

from depot.blobs.store import BlobInfo
from depot.catalog import service as catalog
from depot.catalog.models import Version, VersionStatus
from depot.db.engine import Database
from depot.errors import Conflict, Invalid, NotFound
from depot.uploads.service import record_blob
from tests.conftest import World

DIGEST = "ab" * 32


@pytest.mark.parametrize("slug", ["Acme", "-x", "a_b", "", "x" * 65])
def test_org_slugs_are_validated(database: Database, slug: str) -> None:
    with database.write() as db, pytest.raises(Invalid):
        catalog.create_org(db, slug)


@pytest.mark.parametrize("slug", ["ml-platform", "MyRepo", "a.b_c", "x"])
def test_space_slugs_accept_ml_repo_names(database: Database, world: World, slug: str) -> None:
    with database.write() as db:
        space = catalog.create_space(db, catalog.get_org(db, "acme"), slug)
        assert catalog.get_space(db, "acme", slug).id == space.id


@pytest.mark.parametrize("slug", ["-x", "x-", "a..b", "a/b", "x" * 101])
def test_bad_space_slugs(database: Database, world: World, slug: str) -> None:
    with database.write() as db, pytest.raises(Invalid):
        catalog.create_space(db, catalog.get_org(db, "acme"), slug)


def test_duplicates_conflict(database: Database, world: World) -> None:
    with database.write() as db:
        with pytest.raises(Conflict):
            catalog.create_org(db, "acme")
        with pytest.raises(Conflict):
            catalog.create_space(db, catalog.get_org(db, "acme"), "ml")
        # The same slug in another org is fine.
        catalog.create_space(db, catalog.get_org(db, "globex"), "ml")
        with pytest.raises(NotFound):
            catalog.get_space(db, "acme", "nope")
        with pytest.raises(NotFound):
            catalog.get_org(db, "nope")


def make_version(database: Database, world: World, name: str = "churn") -> Version:
    with database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        artifact = catalog.create_artifact(db, space, name, "model", description="d")
        record_blob(db, BlobInfo(DIGEST, 10))
        version = catalog.create_version(db, artifact, label="v1")
        catalog.add_file(db, version, "weights/model.bin", DIGEST)
        return version


def test_versions_are_numbered_when_finalized(database: Database, world: World) -> None:
    first = make_version(database, world)
    with database.write() as db:
        artifact = catalog.get_artifact(db, catalog.get_space(db, "acme", "ml"), "churn")
        second = catalog.create_version(db, artifact)
        staged_only = catalog.create_version(db, artifact)
        catalog.finalize_version(db, db.get(Version, second.id))  # type: ignore[arg-type]
        catalog.finalize_version(db, db.get(Version, first.id))  # type: ignore[arg-type]
        assert db.get(Version, second.id).number == 1  # type: ignore[union-attr]
        assert db.get(Version, first.id).number == 2  # type: ignore[union-attr]
        assert db.get(Version, staged_only.id).number is None  # type: ignore[union-attr]
        assert len(first.commit_id) == 40 and first.commit_id != second.commit_id
        assert catalog.resolve_version(db, artifact).id == first.id
        assert catalog.resolve_version(db, artifact, "1").id == second.id
        assert catalog.resolve_version(db, artifact, "v1").id == first.id  # by label
        with pytest.raises(NotFound):
            catalog.resolve_version(db, artifact, "3")
        # A number no integer column holds names no version (the driver would refuse it).
        with pytest.raises(NotFound):
            catalog.resolve_version(db, artifact, "9" * 30)
        with pytest.raises(Invalid):
            catalog.finalize_version(db, db.get(Version, first.id))  # type: ignore[arg-type]


def test_finalized_versions_are_immutable(database: Database, world: World) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        assert row is not None
        catalog.finalize_version(db, row)
        with pytest.raises(Invalid, match="immutable"):
            catalog.add_file(db, row, "other.bin", DIGEST)
        with pytest.raises(Invalid, match="immutable"):
            catalog.delete_file(db, row, "weights/model.bin")
        with pytest.raises(Invalid):
            catalog.fail_version(db, row)


def test_aliases(database: Database, world: World) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        assert row is not None
        artifact = catalog.get_artifact(db, catalog.get_space(db, "acme", "ml"), "churn")
        with pytest.raises(Invalid):
            catalog.set_alias(db, artifact, "prod", row)  # still staged
        catalog.finalize_version(db, row)
        catalog.set_alias(db, artifact, "prod", row)
        assert catalog.resolve_version(db, artifact, "prod").id == row.id
        for bad in ("latest", "12", "-x", "has space"):
            with pytest.raises(Invalid):
                catalog.set_alias(db, artifact, bad, row)
        catalog.remove_alias(db, artifact, "prod")
        with pytest.raises(NotFound):
            catalog.remove_alias(db, artifact, "prod")


@pytest.mark.parametrize("path", ["/abs", "a/../b", "a//b", "./a", "", "a\\b", "x/"])
def test_file_paths_are_confined(database: Database, world: World, path: str) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        with pytest.raises(Invalid):
            catalog.add_file(db, row, path, DIGEST)  # type: ignore[arg-type]


def test_files_need_a_recorded_blob(database: Database, world: World) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        with pytest.raises(NotFound):
            catalog.add_file(db, row, "x.bin", "cd" * 32)  # type: ignore[arg-type]
        catalog.add_file(
            db,
            row,
            "weights/model.bin",
            DIGEST,  # type: ignore[arg-type]
            content_type="application/x-binary",
        )
        files = catalog.list_files(db, row)  # type: ignore[arg-type]
        assert [(f.path, f.size, f.content_type) for f in files] == [
            ("weights/model.bin", 10, "application/x-binary")
        ]


def test_failing_a_version_drops_its_files(database: Database, world: World) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        assert row is not None
        catalog.fail_version(db, row)
        assert row.status == VersionStatus.FAILED
        assert catalog.list_files(db, row) == []


def test_artifact_names_and_kinds(database: Database, world: World) -> None:
    with database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        with pytest.raises(Invalid, match="kind"):
            catalog.create_artifact(db, space, "ok", "spreadsheet")
        with pytest.raises(Invalid):
            catalog.create_artifact(db, space, "../up", "model")
        catalog.create_artifact(db, space, "skill_1", "agent_skill")
        with pytest.raises(Conflict):
            catalog.create_artifact(db, space, "skill_1", "document")


def test_deleting_a_version_removes_its_files(database: Database, world: World) -> None:
    version = make_version(database, world)
    with database.write() as db:
        row = db.get(Version, version.id)
        assert row is not None
        catalog.delete_version(db, row)
    with database.read() as db:
        from depot.catalog.models import File

        assert db.query(File).count() == 0


def test_reads_as_rows_find_what_the_session_finds(database: Database, world: World) -> None:
    """read_artifact, read_version, read_files and read_file: the same artifact, versions
    and files as the ORM lookups, for every kind of reference."""
    first_id = make_version(database, world).id  # label v1, one file
    with database.write() as db:
        artifact = catalog.get_artifact(db, catalog.get_space(db, "acme", "ml"), "churn")
        first = db.get(Version, first_id)
        assert first is not None
        catalog.finalize_version(db, first)
        second = catalog.create_version(db, artifact, label="v1")  # the newest with label v1
        catalog.add_file(db, second, "b.bin", DIGEST, content_type="model/x")
        catalog.add_file(db, second, "a.bin", DIGEST)
        catalog.finalize_version(db, second)
        catalog.set_alias(db, artifact, "prod", first)
        catalog.create_version(db, artifact)  # staged: never found
    with database.read() as db:
        space_row, found = catalog.read_artifact(db, "acme", "ml", "churn")
        space = catalog.get_space(db, "acme", "ml")
        artifact = catalog.get_artifact(db, space, "churn")
        assert (space_row.id, space_row.org_id, space_row.slug) == (space.id, space.org_id, "ml")
        assert found is not None
        assert (found.id, found.name, found.kind, found.description) == (
            artifact.id,
            "churn",
            "model",
            "d",
        )
        assert (found.created_at, found.updated_at) == (artifact.created_at, artifact.updated_at)
        assert catalog.read_artifact(db, "acme", "ml", "nope")[1] is None
        with pytest.raises(NotFound):
            catalog.read_artifact(db, "acme", "nope", "churn")
        for ref in (None, "latest", "1", "2", "prod", "v1"):
            version = catalog.resolve_version(db, artifact, ref)
            row = catalog.read_version(db, found, ref)
            assert row == catalog.VersionRow(
                *(getattr(version, name) for name in catalog.VersionRow.__slots__)
            )
            assert catalog.read_files(db, row.id) == [
                catalog.FileRow(file.path, file.size, file.blob_sha256, file.content_type)
                for file in catalog.list_files(db, version)
            ]
        assert catalog.read_version(db, found, "prod").number == 1
        assert catalog.read_version(db, found, "v1").number == 2
        for missing in ("3", "staging", "9" * 30):
            with pytest.raises(NotFound):
                catalog.read_version(db, found, missing)
            with pytest.raises(NotFound):
                catalog.resolve_version(db, artifact, missing)
        newest = catalog.read_version(db, found)
        assert [file.path for file in catalog.read_files(db, newest.id)] == ["a.bin", "b.bin"]
        assert catalog.read_file(db, newest.id, "b.bin") == catalog.FileRow(
            "b.bin", 10, DIGEST, "model/x"
        )
        assert catalog.read_file(db, newest.id, "c.bin") is None
