"""Uploads with the stock huggingface_hub client and `hf` CLI against a live Depot.

Uploads need ``HF_HUB_DISABLE_XET=1``: with hf_xet installed the client otherwise always
talks Xet, whatever the server says. In-process tests set the constant it was read into.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.errors import (
    BadRequestError,
    HfHubHTTPError,
    RepositoryNotFoundError,
)

from depot.client import Client, NotFoundError
from tests.api.huggingface.conftest import hf_env
from tests.conftest import World
from tests.live import CHUNK

HF = Path(sys.executable).with_name("hf")


@pytest.fixture(autouse=True)
def without_xet(monkeypatch: pytest.MonkeyPatch, hf_endpoint: str) -> None:
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "ENDPOINT", hf_endpoint)  # nothing may go to huggingface.co


@pytest.fixture
def api(hf_endpoint: str, world: World) -> HfApi:
    """The client as alice, editor of acme/ml."""
    return HfApi(endpoint=hf_endpoint, token=world.tokens["alice"])


def as_user(hf_endpoint: str, world: World, name: str) -> HfApi:
    return HfApi(endpoint=hf_endpoint, token=world.tokens[name])


def make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "model.safetensors": os.urandom(CHUNK + 17),  # two chunks on the server
        "config.json": b'{"hidden_size": 8}',
        "tokenizer/vocab.txt": b"a\nb\nc\n",
        "tokenizer/merges.txt": b"a b\n",
        "empty.txt": b"",
    }
    write(root, files)
    return files


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def pulled(depot: Client, ref: str, dest: Path) -> dict[str, bytes]:
    """A version's files as Depot's own client downloads them."""
    depot.pull(ref, dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def puts(seen: list[tuple[str, str]]) -> int:
    return sum(1 for method, path in seen if method == "PUT" and "/_lfs/" in path)


def test_create_repo_then_again_with_exist_ok(api: HfApi, depot: Client) -> None:
    url = api.create_repo("ml/tiny")
    assert url.repo_id == "ml/tiny"
    assert url.endpoint == api.endpoint
    assert api.create_repo("ml/tiny", exist_ok=True).repo_id == "ml/tiny"
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_repo("ml/tiny")
    assert refused.value.response.status_code == 409
    artifact = depot.artifact("acme/ml/tiny")
    assert artifact.kind == "model" and artifact.version_count == 0
    api.delete_repo("ml/tiny")
    with pytest.raises(NotFoundError):
        depot.artifact("acme/ml/tiny")
    api.delete_repo("ml/tiny", missing_ok=True)


def test_upload_file_is_a_version_depot_reads(api: HfApi, depot: Client, tmp_path: Path) -> None:
    api.create_repo("ml/tiny")
    data = os.urandom(CHUNK * 2 + 5)
    info = api.upload_file(
        path_or_fileobj=data,
        path_in_repo="weights/model.bin",
        repo_id="ml/tiny",
        commit_message="add weights",
    )
    version = depot.version("acme/ml/tiny")
    assert version.number == 1 and version.status == "ready"
    assert info.oid == version.commit_id
    assert info.commit_url == f"{api.endpoint}/ml/tiny/commit/{version.commit_id}"
    assert version.description == "add weights"
    assert pulled(depot, "acme/ml/tiny:1", tmp_path / "out") == {"weights/model.bin": data}


def test_upload_folder_twice_sends_only_what_changed(
    api: HfApi, depot: Client, tmp_path: Path, requests_seen: list[tuple[str, str]]
) -> None:
    folder = tmp_path / "model"
    files = make_folder(folder)
    api.create_repo("ml/tiny")
    api.upload_folder(folder_path=folder, repo_id="ml/tiny")
    assert puts(requests_seen) == 4  # every non-empty file; the empty one goes inline
    changed = {"config.json": b'{"hidden_size": 16}', "README.md": b"# Tiny\n"}
    write(folder, changed)
    before = len(requests_seen)
    info = api.upload_folder(folder_path=folder, repo_id="ml/tiny", commit_message="bigger")
    assert puts(requests_seen[before:]) == 2
    version = depot.version("acme/ml/tiny")
    assert version.number == 2 and info.oid == version.commit_id
    assert pulled(depot, "acme/ml/tiny:2", tmp_path / "v2") == files | changed
    assert pulled(depot, "acme/ml/tiny:1", tmp_path / "v1") == files


def test_create_commit_deletes_files_and_folders(api: HfApi, depot: Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    files = make_folder(folder)
    api.create_repo("ml/tiny")
    api.upload_folder(folder_path=folder, repo_id="ml/tiny")
    api.create_commit(
        "ml/tiny",
        operations=[
            CommitOperationDelete("config.json"),
            CommitOperationDelete("tokenizer/", is_folder=True),
            CommitOperationAdd("notes.txt", b"pruned"),
        ],
        commit_message="prune",
    )
    kept = {"model.safetensors", "empty.txt"}
    expected = {path: data for path, data in files.items() if path in kept}
    assert pulled(depot, "acme/ml/tiny:2", tmp_path / "v2") == expected | {"notes.txt": b"pruned"}


def test_a_stale_parent_commit_is_refused(api: HfApi, depot: Client) -> None:
    api.create_repo("ml/tiny")
    first = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="ml/tiny")
    second = api.upload_file(
        path_or_fileobj=b"two", path_in_repo="b.txt", repo_id="ml/tiny", parent_commit=first.oid
    )
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_commit(
            "ml/tiny",
            operations=[CommitOperationAdd("c.txt", b"three")],
            commit_message="late",
            parent_commit=first.oid,
        )
    assert refused.value.response.status_code == 409
    assert "A commit has happened since" in str(refused.value)
    assert depot.version("acme/ml/tiny").commit_id == second.oid
    assert depot.artifact("acme/ml/tiny").version_count == 2


def test_a_viewer_is_refused_and_a_stranger_sees_no_repo(
    api: HfApi, hf_endpoint: str, world: World, depot: Client
) -> None:
    api.create_repo("ml/tiny")
    bob = as_user(hf_endpoint, world, "bob")
    with pytest.raises(HfHubHTTPError) as refused:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ml/tiny")
    assert not isinstance(refused.value, RepositoryNotFoundError)
    assert refused.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as create:
        bob.create_repo("ml/bobs")
    assert create.value.response.status_code == 403
    # With exist_ok the client then checks that bob can see the repo, as `hf upload` does.
    assert bob.create_repo("ml/tiny", exist_ok=True).repo_id == "ml/tiny"
    dave = as_user(hf_endpoint, world, "dave")
    with pytest.raises(RepositoryNotFoundError):
        dave.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ml/tiny")
    with pytest.raises(RepositoryNotFoundError):
        dave.create_repo("ml/daves")
    assert depot.artifact("acme/ml/tiny").version_count == 0


def test_a_readme_with_bad_metadata_is_refused(api: HfApi, depot: Client) -> None:
    api.create_repo("ml/tiny")
    bad = b"---\nlicense: [mit\n---\n# Tiny\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(path_or_fileobj=bad, path_in_repo="README.md", repo_id="ml/tiny")
    assert depot.artifact("acme/ml/tiny").version_count == 0
    good = b"---\nlicense: mit\ntags: [tiny]\n---\n# Tiny\n"
    api.upload_file(path_or_fileobj=good, path_in_repo="README.md", repo_id="ml/tiny")
    assert depot.artifact("acme/ml/tiny").version_count == 1


def test_commits_go_to_main_only(api: HfApi) -> None:
    api.create_repo("ml/tiny")
    with pytest.raises(BadRequestError, match="main"):
        api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ml/tiny", revision="v2"
        )


def test_upload_urls_authorise_one_object_only(hf_endpoint: str, world: World, api: HfApi) -> None:
    api.create_repo("ml/tiny")
    data = os.urandom(1000)
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(
        f"{hf_endpoint}/ml/tiny.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": 1000}]},
        headers={
            "Authorization": f"Bearer {world.tokens['alice']}",
            "Content-Type": "application/vnd.git-lfs+json",
        },
    )
    assert batch.status_code == 200
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    unsigned = href.split("?")[0]
    assert httpx.put(unsigned, content=data).status_code == 403
    assert httpx.put(href, content=os.urandom(1000)).status_code == 400  # wrong bytes
    assert httpx.put(href, content=data).status_code == 400  # that session failed for good
    # A fresh batch gives a fresh URL; a retried PUT is accepted.
    again = httpx.post(
        f"{hf_endpoint}/ml/tiny.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": 1000}]},
        headers={"Authorization": f"Bearer {world.tokens['alice']}"},
    ).json()["objects"][0]["actions"]["upload"]["href"]
    assert httpx.put(again, content=data).status_code == 200
    assert httpx.put(again, content=data).status_code == 200
    after = httpx.post(
        f"{hf_endpoint}/ml/tiny.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": 1000}]},
        headers={"Authorization": f"Bearer {world.tokens['alice']}"},
    ).json()["objects"][0]
    assert "actions" not in after  # alice sent these bytes: no need to send them again


def test_hf_upload_cli(hf_endpoint: str, world: World, depot: Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    files = make_folder(folder)
    env = hf_env(hf_endpoint, world.tokens["alice"], tmp_path / "hf-home", HF_HUB_DISABLE_XET="1")
    done = subprocess.run(
        [str(HF), "upload", "ml/cli-model", str(folder), ".", "--commit-message", "from the cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    version = depot.version("acme/ml/cli-model")
    assert version.number == 1 and version.description == "from the cli"
    assert version.commit_id in done.stdout
    assert pulled(depot, "acme/ml/cli-model:1", tmp_path / "out") == files
    # Nothing changed: the client sends nothing and makes no empty commit.
    again = subprocess.run(
        [str(HF), "upload", "ml/cli-model", str(folder), "."],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert version.commit_id in again.stdout
    assert depot.artifact("acme/ml/cli-model").version_count == 1
