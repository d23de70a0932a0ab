"""Commits over the Hugging Face protocol, below HTTP: repos, preupload, LFS objects, versions."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from sqlalchemy import func, select

from depot.access.service import Principal, authenticate
from depot.blobs.models import Blob
from depot.catalog import service as catalog
from depot.catalog.models import Version
from depot.errors import (
    Conflict,
    DigestMismatch,
    EntryNotFound,
    Forbidden,
    Invalid,
    RepoNotFound,
    SizeMismatch,
)
from depot.huggingface import commits, lfs
from depot.huggingface.repos import empty_commit_id
from depot.services import Services
from depot.uploads.service import UploadService
from tests.conftest import World
from tests.live import CHUNK


@pytest.fixture
def services(services: Services) -> Services:
    """The smallest chunk size the engine allows, so that multi-chunk objects stay small."""
    services.settings = services.settings.model_copy(update={"upload_chunk_size": CHUNK})
    services.uploads = UploadService(services.database, services.store, services.settings)
    return services


def who(services: Services, world: World, name: str) -> Principal:
    with services.database.read() as db:
        return authenticate(db, world.tokens[name])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ndjson(*lines: dict[str, object]) -> bytes:
    return b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"


def header(summary: str = "update", parent: str | None = None) -> dict[str, object]:
    value: dict[str, object] = {"summary": summary, "description": ""}
    if parent is not None:
        value["parentCommit"] = parent
    return {"key": "header", "value": value}


def lfs_file(path: str, data: bytes) -> dict[str, object]:
    return {
        "key": "lfsFile",
        "value": {"path": path, "algo": "sha256", "oid": sha256(data), "size": len(data)},
    }


def inline(path: str, data: bytes) -> dict[str, object]:
    content = base64.b64encode(data).decode()
    return {"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}}


class Repo:
    """One repo of acme, driven as the client drives it."""

    def __init__(self, services: Services, principal: Principal, space: str, name: str) -> None:
        self.services = services
        self.principal = principal
        self.space = space
        self.name = name

    def create(self) -> None:
        with self.services.database.write() as db:
            commits.create_repo(db, self.principal, "acme", self.space, self.name, "model")

    def batch(self, *blobs: bytes) -> list[lfs.LfsAnswer]:
        objects = [lfs.LfsObject(sha256(data), len(data)) for data in blobs]
        return lfs.lfs_batch(
            self.services.database,
            self.services.uploads,
            self.principal,
            "acme",
            self.space,
            self.name,
            "upload",
            objects,
        )

    def upload(self, *blobs: bytes) -> int:
        """Send the bytes the batch asks for; returns how many objects were sent."""
        sent = 0
        for data, answer in zip(blobs, self.batch(*blobs), strict=True):
            if answer.session_id is not None:
                lfs.receive_object(
                    self.services.uploads,
                    answer.session_id,
                    answer.oid,
                    answer.size,
                    [data],
                    declared=len(data),
                )
                sent += 1
        return sent

    def commit(self, body: bytes, revision: str = "main") -> Version:
        return commits.apply_commit(
            self.services.database,
            self.services.uploads,
            self.principal,
            "acme",
            self.space,
            self.name,
            revision,
            commits.parse_commit(body),
        )

    def files(self, number: int | None = None) -> dict[str, str]:
        with self.services.database.read() as db:
            artifact = catalog.get_artifact(
                db, catalog.get_space(db, "acme", self.space), self.name
            )
            version = catalog.resolve_version(db, artifact, None if number is None else str(number))
            return {file.path: file.blob_sha256 for file in catalog.list_files(db, version)}

    def version_rows(self) -> int:
        with self.services.database.read() as db:
            return int(db.scalar(select(func.count()).select_from(Version)) or 0)

    def preupload(self, files: list[tuple[str, int]]) -> dict[str, dict[str, object]]:
        with self.services.database.read() as db:
            answers = commits.preupload(
                db, self.principal, "acme", self.space, self.name, "main", files
            )
        return {str(answer["path"]): answer for answer in answers}


@pytest.fixture
def repo(services: Services, world: World) -> Repo:
    made = Repo(services, who(services, world, "alice"), "ml", "tiny")
    made.create()
    return made


def test_create_repo_needs_an_editor_and_a_free_name(
    services: Services, world: World, repo: Repo
) -> None:
    with pytest.raises(Conflict):
        repo.create()
    with pytest.raises(Forbidden):
        Repo(services, who(services, world, "bob"), "ml", "other").create()
    with pytest.raises(RepoNotFound):
        Repo(services, who(services, world, "dave"), "ml", "other").create()
    with services.database.write() as db, pytest.raises(Invalid):
        commits.create_repo(db, repo.principal, "acme", None, "other", None)
    with services.database.write() as db, pytest.raises(Invalid):
        commits.create_repo(db, repo.principal, "acme", "ml", "other", "dataset")
    with services.database.read() as db:
        artifact = catalog.get_artifact(db, catalog.get_space(db, "acme", "ml"), "tiny")
    assert artifact.kind == "model"


def test_each_commit_makes_the_next_version_from_its_parent(repo: Repo) -> None:
    weights, config = os.urandom(3000), b'{"layers": 2}'
    assert repo.upload(weights, config) == 2
    first = repo.commit(
        ndjson(
            header("first"),
            lfs_file("weights.bin", weights),
            lfs_file("config.json", config),
            inline("empty.txt", b""),
        )
    )
    assert first.number == 1 and first.description == "first"
    new_config = b'{"layers": 3}'
    assert repo.upload(weights, new_config) == 1  # the weights are already there
    second = repo.commit(
        ndjson(
            header("second", parent=first.commit_id),
            lfs_file("config.json", new_config),
            {"key": "deletedFile", "value": {"path": "empty.txt"}},
        )
    )
    assert second.number == 2 and second.commit_id != first.commit_id
    assert repo.files(1) == {
        "weights.bin": sha256(weights),
        "config.json": sha256(config),
        "empty.txt": sha256(b""),
    }
    assert repo.files(2) == {"weights.bin": sha256(weights), "config.json": sha256(new_config)}


def test_the_first_commit_may_name_the_empty_commit_as_parent(repo: Repo) -> None:
    with repo.services.database.read() as db:
        artifact = catalog.get_artifact(db, catalog.get_space(db, "acme", "ml"), "tiny")
    version = repo.commit(ndjson(header(parent=empty_commit_id(artifact)), inline("a.txt", b"a")))
    assert version.number == 1


def test_preupload_returns_the_sha256_of_unchanged_paths(repo: Repo) -> None:
    data = b"weights"
    repo.upload(data)
    repo.commit(ndjson(header(), lfs_file("w.bin", data), inline("empty.txt", b"")))
    answers = repo.preupload([("w.bin", len(data)), ("new.bin", 4), ("empty.txt", 0)])
    assert answers["w.bin"] == {
        "path": "w.bin",
        "uploadMode": "lfs",
        "shouldIgnore": False,
        "oid": sha256(data),
    }
    assert "oid" not in answers["new.bin"] and answers["new.bin"]["uploadMode"] == "lfs"
    assert answers["empty.txt"]["uploadMode"] == "regular"
    assert answers["empty.txt"]["oid"] == commits.EMPTY_GIT_BLOB


def test_preupload_and_commit_take_main_only(repo: Repo) -> None:
    with repo.services.database.read() as db, pytest.raises(Invalid, match="main"):
        commits.preupload(db, repo.principal, "acme", "ml", "tiny", "v2", [("a", 1)])
    with pytest.raises(Invalid, match="main"):
        repo.commit(ndjson(header(), inline("a.txt", b"a")), revision="v2")
    assert repo.version_rows() == 0


def test_a_stale_parent_is_refused_and_changes_nothing(repo: Repo) -> None:
    first = repo.commit(ndjson(header(), inline("a.txt", b"a")))
    repo.commit(ndjson(header(), inline("b.txt", b"b")))
    with pytest.raises(Conflict, match="A commit has happened since"):
        repo.commit(ndjson(header(parent=first.commit_id), inline("c.txt", b"c")))
    assert repo.version_rows() == 2


def test_a_commit_naming_bytes_never_uploaded_leaves_no_version(repo: Repo) -> None:
    never_sent = os.urandom(100)
    with pytest.raises(Invalid, match="has not been uploaded"):
        repo.commit(ndjson(header(), inline("a.txt", b"a"), lfs_file("w.bin", never_sent)))
    assert repo.version_rows() == 0


def test_objects_only_another_tenant_holds_must_be_sent(
    services: Services, world: World, repo: Repo
) -> None:
    secret = os.urandom(500)
    # root keeps the bytes in acme/web, which alice cannot see.
    hidden = Repo(services, who(services, world, "root"), "web", "hidden")
    hidden.create()
    assert hidden.upload(secret) == 1
    hidden.commit(ndjson(header(), lfs_file("secret.bin", secret)))
    [answer] = repo.batch(secret)
    assert answer.session_id is not None  # alice is asked for the bytes: nothing leaks
    with pytest.raises(Invalid, match="has not been uploaded"):
        repo.commit(ndjson(header(), lfs_file("copy.bin", secret)))
    # carol may read acme/web, so she need not send bytes she can download anyway.
    [answer] = Repo(services, who(services, world, "carol"), "ml", "tiny").batch(secret)
    assert answer.session_id is None


def test_wrong_bytes_are_refused_and_nothing_is_stored(repo: Repo) -> None:
    announced, sent = os.urandom(64), os.urandom(64)
    [answer] = repo.batch(announced)
    assert answer.session_id is not None
    with pytest.raises(DigestMismatch):
        lfs.receive_object(
            repo.services.uploads, answer.session_id, answer.oid, 64, [sent], declared=64
        )
    [short] = repo.batch(announced)
    assert short.session_id is not None
    with pytest.raises(SizeMismatch):
        lfs.receive_object(
            repo.services.uploads, short.session_id, short.oid, 64, [sent[:10]], declared=None
        )
    with repo.services.database.read() as db:
        assert db.get(Blob, sha256(sent)) is None
        assert db.get(Blob, sha256(announced)) is None
    with pytest.raises(Invalid):
        repo.commit(ndjson(header(), lfs_file("w.bin", announced)))


def test_a_put_may_be_retried(repo: Repo) -> None:
    data = os.urandom(1000)
    [answer] = repo.batch(data)
    assert answer.session_id is not None
    for _ in range(2):
        lfs.receive_object(
            repo.services.uploads,
            answer.session_id,
            answer.oid,
            1000,
            [data[:300], data[300:]],
            declared=1000,
        )
    with pytest.raises(DigestMismatch):
        lfs.receive_object(
            repo.services.uploads,
            answer.session_id,
            answer.oid,
            1000,
            [os.urandom(1000)],
            declared=1000,
        )
    assert repo.commit(ndjson(header(), lfs_file("w.bin", data))).number == 1


def test_large_objects_arrive_in_several_chunks(repo: Repo) -> None:
    data = os.urandom(repo.services.settings.upload_chunk_size * 2 + 123)
    assert repo.upload(data) == 1
    repo.commit(ndjson(header(), lfs_file("big.bin", data)))
    assert repo.files() == {"big.bin": sha256(data)}
    stored = b"".join(repo.services.store.open(sha256(data)))
    assert stored == data


def test_deleting_folders_and_missing_entries(repo: Repo) -> None:
    repo.commit(
        ndjson(
            header(),
            inline("sub/a.txt", b"a"),
            inline("sub/deeper/b.txt", b"b"),
            inline("subway.txt", b"c"),
        )
    )
    repo.commit(ndjson(header(), {"key": "deletedFolder", "value": {"path": "sub/"}}))
    assert repo.files() == {"subway.txt": sha256(b"c")}
    with pytest.raises(EntryNotFound, match="doesn't exist"):
        repo.commit(ndjson(header(), {"key": "deletedFile", "value": {"path": "nope.txt"}}))
    with pytest.raises(EntryNotFound):
        repo.commit(ndjson(header(), {"key": "deletedFolder", "value": {"path": "nope/"}}))
    assert repo.version_rows() == 2


def test_a_path_cannot_be_a_file_and_a_folder(repo: Repo) -> None:
    repo.commit(ndjson(header(), inline("model", b"x")))
    with pytest.raises(Invalid, match="both a file and the folder"):
        repo.commit(ndjson(header(), inline("model/weights.bin", b"y")))


def test_viewers_and_strangers_cannot_commit(services: Services, world: World, repo: Repo) -> None:
    with pytest.raises(Forbidden):
        Repo(services, who(services, world, "bob"), "ml", "tiny").commit(
            ndjson(header(), inline("a.txt", b"a"))
        )
    with pytest.raises(RepoNotFound):
        Repo(services, who(services, world, "dave"), "ml", "tiny").batch(b"a")
    assert repo.version_rows() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "header"),
        (b"not json\n", "not JSON"),
        (ndjson(inline("a.txt", b"a")), "header"),
        (ndjson(header(), {"key": "rename", "value": {"path": "a"}}), "unknown"),
        (ndjson(header(), {"key": "file", "value": {"path": "a", "content": "%%"}}), "base64"),
        (ndjson(header(), {"key": "lfsFile", "value": {"path": "a", "oid": "xyz"}}), "sha256"),
        (ndjson(header(), inline("../escape", b"a")), "path"),
    ],
)
def test_malformed_commits_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        commits.parse_commit(body)


def test_readme_metadata_must_be_a_yaml_mapping() -> None:
    assert commits.validate_readme("# A model\n") == []
    assert commits.validate_readme("---\nlicense: mit\ntags: [a, b]\n---\n# A model\n") == []
    assert commits.validate_readme("---\n---\nbody\n") == []
    assert commits.validate_readme("---\nlicense: [mit\n---\n") != []
    assert commits.validate_readme("---\n- a\n- b\n---\n") != []
    assert commits.validate_readme("---\nlicense: mit\n") != []
