"""Repos, revisions and what a Hub client reads of them (repos.py and browse.py)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest

from depot.access import service as access
from depot.access.models import Role
from depot.blobs.store import BlobInfo
from depot.catalog import service as catalog
from depot.catalog.models import Artifact, Version
from depot.db.engine import Database
from depot.errors import (
    EntryNotFound,
    Forbidden,
    Invalid,
    NotFound,
    RepoNotFound,
    RevisionNotFound,
)
from depot.huggingface import browse
from depot.huggingface.repos import (
    Repo,
    empty_commit_id,
    files_at,
    hub_time,
    lfs_pointer,
    load_repo,
    resolve_revision,
)
from depot.uploads.service import record_blob
from tests.conftest import World


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_version(
    database: Database,
    name: str,
    files: dict[str, bytes],
    *,
    space: str = "ml",
    alias: str | None = None,
    description: str = "",
) -> Version:
    """A ready version of ``acme/{space}/{name}`` (created if needed) holding ``files``."""
    with database.write() as db:
        space_row = catalog.get_space(db, "acme", space)
        try:
            artifact = catalog.get_artifact(db, space_row, name)
        except NotFound:
            artifact = catalog.create_artifact(db, space_row, name, "model")
        version = catalog.create_version(db, artifact, description=description)
        for path, data in files.items():
            record_blob(db, BlobInfo(digest(data), len(data)))
            catalog.add_file(db, version, path, digest(data))
        catalog.finalize_version(db, version)
        if alias:
            catalog.set_alias(db, artifact, alias, version)
        return version


def principal(database: Database, name: str) -> access.Principal:
    with database.read() as db:
        return access.load_principal(db, access.get_user(db, name))


def repo_of(database: Database, name: str, user: str = "bob") -> Repo:
    with database.read() as db:
        return load_repo(db, principal(database, user), "acme", "ml", name, Role.VIEWER)


# -- repos.py -----------------------------------------------------------------------------


def test_load_repo_hides_what_the_caller_may_not_see(database: Database, world: World) -> None:
    add_version(database, "tiny", {"a.txt": b"a"})
    with database.read() as db:
        bob = principal(database, "bob")
        repo = load_repo(db, bob, "acme", "ml", "tiny", Role.VIEWER)
        assert repo.repo_id == "ml/tiny" and repo.role == Role.VIEWER
        for org, space, name in [
            ("acme", "ml", "nope"),
            ("acme", "nope", "tiny"),
            ("x", "ml", "tiny"),
        ]:
            with pytest.raises(RepoNotFound):
                load_repo(db, bob, org, space, name, Role.VIEWER)
        with pytest.raises(RepoNotFound):
            load_repo(db, principal(database, "dave"), "acme", "ml", "tiny", Role.VIEWER)
        with pytest.raises(Forbidden):
            load_repo(db, bob, "acme", "ml", "tiny", Role.EDITOR)
        alice = load_repo(db, principal(database, "alice"), "acme", "ml", "tiny", Role.EDITOR)
        assert alice.role == Role.EDITOR


def test_revisions_resolve_main_numbers_aliases_and_commits(
    database: Database, world: World
) -> None:
    first = add_version(database, "tiny", {"a.txt": b"one"}, alias="prod")
    second = add_version(database, "tiny", {"a.txt": b"two"})
    repo = repo_of(database, "tiny")
    with database.read() as db:
        artifact = repo.artifact

        def commit(revision: str | None) -> str:
            return resolve_revision(db, artifact, revision).commit_id

        assert commit(None) == commit("main") == commit("2") == second.commit_id
        assert commit("1") == commit("prod") == commit(first.commit_id) == first.commit_id
        assert commit(second.commit_id) == second.commit_id
        for unknown in ("3", "nope", "0" * 40, first.commit_id.upper(), "refs/pr/1"):
            with pytest.raises(RevisionNotFound):
                resolve_revision(db, artifact, unknown)
        assert [f.path for f in files_at(db, resolve_revision(db, artifact, "prod"))] == ["a.txt"]


def test_an_artifact_without_versions_has_an_empty_commit(database: Database, world: World) -> None:
    with database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        artifact = catalog.create_artifact(db, space, "new", "model")
        other = catalog.create_artifact(db, space, "other", "model")
        main = resolve_revision(db, artifact, "main")
        assert main.version is None and main.commit_id == empty_commit_id(artifact)
        assert len(main.commit_id) == 40 and main.commit_id != empty_commit_id(other)
        assert resolve_revision(db, artifact, main.commit_id) == main
        assert files_at(db, main) == []
        with pytest.raises(RevisionNotFound):
            resolve_revision(db, artifact, "1")


def test_lfs_pointer_is_the_git_blob_of_the_pointer_text() -> None:
    sha = digest(b"weights")
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 7\n"
    blob_id, size = lfs_pointer(sha, 7)
    assert size == len(pointer)
    git = shutil.which("git")
    if git is not None:
        expected = (
            subprocess.run(
                [git, "hash-object", "--stdin"],
                input=pointer.encode(),
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        assert blob_id == expected
    else:
        data = pointer.encode()
        assert blob_id == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_hub_time_ends_in_z() -> None:
    moment = datetime(2026, 11, 22, 16, 16, 10, 728000, tzinfo=timezone(timedelta(hours=2)))
    assert hub_time(moment) == "2026-11-22T14:16:10.728Z"
    assert hub_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"
    assert hub_time(None) is None
    parsed = datetime.strptime(hub_time(datetime.now(UTC)) or "", "%Y-%m-%dT%H:%M:%S.%fZ")
    assert parsed.year >= 2026


# -- browse.py ----------------------------------------------------------------------------

FILES = {
    "config.json": b"{}",
    "weights/model-1.bin": b"1" * 10,
    "weights/model-2.bin": b"2" * 20,
    "weights/extra/notes.txt": b"notes",
}


def test_model_info(database: Database, world: World) -> None:
    version = add_version(database, "tiny", FILES, description="first\nmore")
    repo = repo_of(database, "tiny")
    with database.read() as db:
        revision = resolve_revision(db, repo.artifact, "main")
        info = browse.model_info(db, repo, revision)
        assert info["id"] == "ml/tiny" and info["author"] == "ml"
        assert info["sha"] == version.commit_id and info["private"] is True
        assert info["lastModified"].endswith("Z") and info["createdAt"].endswith("Z")
        assert [s["rfilename"] for s in info["siblings"]] == sorted(FILES)
        assert info["siblings"][0] == {"rfilename": "config.json"}

        detailed = browse.model_info(db, repo, revision, blobs=True)
        config = detailed["siblings"][0]
        blob_id, pointer_size = lfs_pointer(digest(b"{}"), 2)
        assert config == {
            "rfilename": "config.json",
            "size": 2,
            "blobId": blob_id,
            "lfs": {"sha256": digest(b"{}"), "size": 2, "pointerSize": pointer_size},
        }


def test_find_file(database: Database, world: World) -> None:
    add_version(database, "tiny", FILES)
    repo = repo_of(database, "tiny")
    with database.read() as db:
        revision = resolve_revision(db, repo.artifact, "main")
        assert browse.find_file(db, repo, revision, "weights/model-1.bin").size == 10
        for path in ("nope", "weights", "../config.json", "", "/config.json"):
            with pytest.raises(EntryNotFound):
                browse.find_file(db, repo, revision, path)


def test_tree_lists_children_or_everything(database: Database, world: World) -> None:
    version = add_version(database, "tiny", FILES, description="first\nmore")
    repo = repo_of(database, "tiny")
    with database.read() as db:
        revision = resolve_revision(db, repo.artifact, "main")

        def listing(path: str = "", **options: bool) -> list[tuple[str, str]]:
            page = browse.tree_page(db, repo, revision, path, **options)
            assert page.next_cursor is None
            return [(entry["type"], entry["path"]) for entry in page.items]

        assert listing() == [("file", "config.json"), ("directory", "weights")]
        assert (
            listing("weights")
            == listing("/weights/")
            == [
                ("directory", "weights/extra"),
                ("file", "weights/model-1.bin"),
                ("file", "weights/model-2.bin"),
            ]
        )
        assert listing(recursive=True) == [
            ("file", "config.json"),
            ("directory", "weights"),
            ("directory", "weights/extra"),
            ("file", "weights/extra/notes.txt"),
            ("file", "weights/model-1.bin"),
            ("file", "weights/model-2.bin"),
        ]
        for missing in ("nope", "config.json", "weights/model-1.bin", "../x"):
            with pytest.raises(EntryNotFound):
                browse.tree_page(db, repo, revision, missing)

        entries = browse.tree_page(db, repo, revision, expand=True).items
        config, weights = entries
        blob_id, pointer_size = lfs_pointer(digest(b"{}"), 2)
        assert config["oid"] == blob_id and config["size"] == 2
        assert config["lfs"] == {"oid": digest(b"{}"), "size": 2, "pointerSize": pointer_size}
        assert config["lastCommit"]["id"] == version.commit_id
        assert config["lastCommit"]["title"] == "first"
        assert weights["type"] == "directory" and len(weights["oid"]) == 40
        assert weights["lastCommit"]["date"].endswith("Z")


def test_folder_ids_follow_their_content(database: Database, world: World) -> None:
    add_version(database, "tiny", FILES)
    add_version(database, "tiny", FILES | {"config.json": b"{ }"})
    add_version(database, "tiny", FILES | {"weights/model-1.bin": b"changed"})
    repo = repo_of(database, "tiny")
    with database.read() as db:

        def weights_id(revision: str) -> str:
            resolved = resolve_revision(db, repo.artifact, revision)
            items = browse.tree_page(db, repo, resolved).items
            return next(entry["oid"] for entry in items if entry["path"] == "weights")

        assert weights_id("1") == weights_id("2") != weights_id("3")


def test_tree_pages(database: Database, world: World) -> None:
    files = {f"part-{index}.bin": bytes([index]) for index in range(5)}
    add_version(database, "sharded", files)
    repo = repo_of(database, "sharded")
    with database.read() as db:
        revision = resolve_revision(db, repo.artifact, "main")
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = browse.tree_page(db, repo, revision, cursor=cursor, limit=2)
            seen += [entry["path"] for entry in page.items]
            assert len(page.items) <= 2
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == sorted(files)
        for bogus in ("bogus", "9" * 30):
            with pytest.raises(Invalid):
                browse.tree_page(db, repo, revision, cursor=bogus)


def test_list_models(database: Database, world: World) -> None:
    for name in ("tiny", "tiny_v2", "bert"):
        add_version(database, name, {"a": name.encode()})
    add_version(database, "tiny-web", {"a": b"w"}, space="web")
    with database.write() as db:
        archived = db.get(Artifact, repo_of(database, "bert").artifact.id)
        assert archived is not None
        archived.archived_at = datetime.now(UTC)

    def ids(user: str, **options: object) -> list[str]:
        with database.read() as db:
            page = browse.list_models(db, principal(database, user), "acme", **options)  # type: ignore[arg-type]
            return [item["id"] for item in page.items]

    assert ids("bob") == ["ml/tiny", "ml/tiny_v2", "web/tiny-web"]
    assert ids("alice") == ["ml/tiny", "ml/tiny_v2"]
    assert ids("dave") == []
    assert ids("bob", search="Tiny_") == ["ml/tiny_v2"]  # "_" is not a wildcard
    assert ids("bob", author="web") == ["web/tiny-web"]
    assert ids("bob", search="b/t") == ["web/tiny-web"]
    with database.read() as db:
        assert browse.list_models(db, principal(database, "bob"), "globex").items == []
        first = browse.list_models(db, principal(database, "bob"), "acme", limit=2)
        assert first.next_cursor == "ml/tiny_v2"
        rest = browse.list_models(
            db, principal(database, "bob"), "acme", limit=2, cursor=first.next_cursor
        )
        assert [item["id"] for item in rest.items] == ["web/tiny-web"]
        assert rest.next_cursor is None
        item = first.items[0]
        assert item["private"] is True and item["createdAt"].endswith("Z")


def test_refs(database: Database, world: World) -> None:
    first = add_version(database, "tiny", {"a": b"1"}, alias="prod")
    second = add_version(database, "tiny", {"a": b"2"}, alias="canary")
    repo = repo_of(database, "tiny")
    with database.read() as db:
        refs = browse.repo_refs(db, repo, pull_requests=True)
    assert refs == {
        "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": second.commit_id}],
        "converts": [],
        "tags": [
            {"name": "canary", "ref": "refs/tags/canary", "targetCommit": second.commit_id},
            {"name": "prod", "ref": "refs/tags/prod", "targetCommit": first.commit_id},
        ],
        "pullRequests": [],
    }
