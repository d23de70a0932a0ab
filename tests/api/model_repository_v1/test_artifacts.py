from __future__ import annotations

import hashlib
import os
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from depot.blobs.memory import MemoryBlobStore
from depot.db.base import utcnow
from depot.jobs.gc import collect_garbage
from depot.services import Services
from depot.settings import MiB
from depot.uploads.models import UploadSession
from depot.uploads.service import UploadService
from tests.conftest import World

pytestmark = pytest.mark.anyio

BASE = "/api/v1.0"
CHUNK = 5 * MiB


@pytest.fixture
def services(services: Services) -> Services:
    # The smallest chunk size the server allows, so multi-chunk files stay small in tests.
    services.settings = services.settings.model_copy(update={"upload_chunk_size": CHUNK})
    services.uploads = UploadService(services.database, services.store, services.settings)
    return services


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Repo:
    """A model in acme/ml and helpers to drive its artifact endpoints as a given user."""

    def __init__(self, client: httpx.AsyncClient, world: World, product_id: str) -> None:
        self.client = client
        self.world = world
        self.product_id = product_id
        self.url = f"{BASE}/catalog/products/{product_id}/model-artifacts"

    async def initiate(self, who: str = "alice", **fields: Any) -> httpx.Response:
        body = {
            "file_name": "churn-model-v2.onnx",
            "content_type": "application/octet-stream",
            "total_size_bytes": 0,
            **fields,
        }
        return await self.client.post(
            f"{self.url}/uploads", json=body, headers=self.world.auth(who)
        )

    async def chunk(
        self, upload_id: str, index: int, data: bytes, who: str = "alice"
    ) -> httpx.Response:
        return await self.client.put(
            f"{self.url}/uploads/{upload_id}/chunks/{index}",
            content=data,
            headers={**self.world.auth(who), "content-type": "application/octet-stream"},
        )

    async def complete(self, upload_id: str, who: str = "alice", **body: Any) -> httpx.Response:
        return await self.client.post(
            f"{self.url}/uploads/{upload_id}/complete",
            json=body or None,
            headers=self.world.auth(who),
        )

    async def upload(self, data: bytes, **fields: Any) -> dict[str, Any]:
        started = await self.initiate(total_size_bytes=len(data), **fields)
        assert started.status_code == 201, started.text
        session = started.json()
        size = session["chunk_size_bytes"]
        for index in range(max(1, -(-len(data) // size))):
            response = await self.chunk(
                session["id"], index, data[index * size : (index + 1) * size]
            )
            assert response.status_code == 200, response.text
        done = await self.complete(session["id"])
        assert done.status_code == 200, done.text
        result: dict[str, Any] = done.json()
        return result

    async def listing(self, who: str = "alice") -> list[dict[str, Any]]:
        response = await self.client.get(self.url, headers=self.world.auth(who))
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result


async def repo_on_store(
    client: httpx.AsyncClient, world: World, app: FastAPI, store: MemoryBlobStore
) -> Repo:
    """A new model whose server keeps its bytes in ``store``."""
    services: Services = app.state.services
    services.store = store
    services.uploads = UploadService(services.database, store, services.settings)
    created = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        json={"name": type(store).__name__},
        headers=world.auth("alice"),
    )
    return Repo(client, world, created.json()["id"])


@pytest.fixture
async def repo(client: httpx.AsyncClient, world: World) -> Repo:
    response = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        json={"name": "Churn"},
        headers=world.auth("alice"),
    )
    return Repo(client, world, response.json()["id"])


async def test_the_three_step_flow(repo: Repo, world: World, services: Services) -> None:
    data = os.urandom(2 * CHUNK + 4321)
    started = await repo.initiate(
        total_size_bytes=len(data),
        sha256=sha(data).upper(),
        artifact_kind="weights",
        version_label="v2.0.0",
        training_run_id="5c1e92ac-e430-4b4e-ae49-3a2222222222",
        is_current=True,
        external_uri="s3://training/runs/5c1e/model.onnx",
        metadata={"format": "onnx", "python": "3.11"},
        content_type="application/onnx",
    )
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["product_id"] == repo.product_id
    assert session["file_name"] == "churn-model-v2.onnx"
    assert session["content_type"] == "application/onnx"
    assert session["total_size_bytes"] == len(data)
    assert session["chunk_size_bytes"] == CHUNK
    assert session["expected_sha256"] == sha(data)
    assert (session["received_bytes"], session["received_chunks"]) == (0, [])
    assert session["status"] == "initialized"
    assert session["expires_at"] > session["created_at"] and session["completed_at"] is None

    for index in (2, 0, 1):
        response = await repo.chunk(session["id"], index, data[index * CHUNK : (index + 1) * CHUNK])
        assert response.status_code == 200, response.text
    progress = response.json()
    assert progress["status"] == "uploading"
    assert progress["received_chunks"] == [0, 1, 2]
    assert progress["received_bytes"] == len(data)

    done = await repo.complete(session["id"])
    assert done.status_code == 200, done.text
    artifact = done.json()
    assert artifact["product_id"] == repo.product_id
    assert artifact["artifact_kind"] == "weights"
    assert artifact["version_label"] == "v2.0.0"
    assert artifact["training_run_id"] == "5c1e92ac-e430-4b4e-ae49-3a2222222222"
    assert artifact["external_uri"] == "s3://training/runs/5c1e/model.onnx"
    assert artifact["metadata"] == {"format": "onnx", "python": "3.11"}
    assert artifact["file_name"] == "churn-model-v2.onnx"
    assert artifact["content_type"] == "application/onnx"
    assert artifact["size_bytes"] == len(data) and artifact["sha256"] == sha(data)
    store = services.store
    assert artifact["storage_backend"] == store.backend
    assert artifact["storage_uri"] == store.uri(sha(data))
    assert artifact["status"] == "available" and artifact["is_current"] is True
    assert artifact["uploaded_by_id"] is not None and artifact["uploaded_at"]
    assert artifact["product_version_id"] is None

    assert [a["id"] for a in await repo.listing(who="bob")] == [artifact["id"]]
    again = await repo.complete(session["id"])
    assert again.json()["id"] == artifact["id"]

    summary = (
        await repo.client.get(
            f"{BASE}/catalog/spaces/ml/model-repository/models", headers=world.auth("alice")
        )
    ).json()[0]
    assert summary["artifact_count"] == 1
    assert summary["current_artifact_id"] == artifact["id"]
    assert summary["current_artifact_file_name"] == "churn-model-v2.onnx"
    assert summary["current_artifact_kind"] == "weights"
    assert summary["current_artifact_content_type"] == "application/onnx"
    assert summary["current_artifact_model_format"] == "onnx"
    assert summary["current_artifact_sha256"] == sha(data)
    assert summary["current_artifact_size_bytes"] == len(data)


async def test_download_with_headers_and_ranges(repo: Repo, world: World) -> None:
    data = os.urandom(300_000)
    artifact = await repo.upload(data, file_name="weights/model.safetensors")
    url = f"{repo.url}/{artifact['id']}/download"
    response = await repo.client.get(url, headers=world.auth("bob"))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{sha(data)}"'
    assert 'filename="model.safetensors"' in response.headers["content-disposition"]
    partial = await repo.client.get(url, headers={**world.auth("bob"), "range": "bytes=10-99"})
    assert partial.status_code == 206 and partial.content == data[10:100]
    assert partial.headers["content-range"] == f"bytes 10-99/{len(data)}"
    tail = await repo.client.get(url, headers={**world.auth("bob"), "range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    beyond = await repo.client.get(
        url, headers={**world.auth("bob"), "range": f"bytes={len(data)}-"}
    )
    assert beyond.status_code == 416
    assert (await repo.client.get(url, headers=world.auth("dave"))).status_code == 404


async def test_download_from_a_store_without_files(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    services: Services = app.state.services
    services.store = MemoryBlobStore()
    services.uploads = UploadService(services.database, services.store, services.settings)
    created = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        json={"name": "In memory"},
        headers=world.auth("alice"),
    )
    repo = Repo(client, world, created.json()["id"])
    data = os.urandom(3 * 1024 * 1024 + 5)
    artifact = await repo.upload(data, file_name="model.bin")
    assert artifact["storage_backend"] == "memory"
    url = f"{repo.url}/{artifact['id']}/download"
    whole = await client.get(url, headers=world.auth("alice"))
    assert whole.content == data and whole.headers["etag"] == f'"{sha(data)}"'
    assert whole.headers["content-length"] == str(len(data))
    part = await client.get(url, headers={**world.auth("alice"), "range": "bytes=1048570-1048580"})
    assert part.status_code == 206 and part.content == data[1048570:1048581]


async def test_missing_bytes_are_404(repo: Repo, world: World, app: FastAPI) -> None:
    data = b"soon gone"
    artifact = await repo.upload(data)
    app.state.services.store.delete(sha(data))
    response = await repo.client.get(
        f"{repo.url}/{artifact['id']}/download", headers=world.auth("alice")
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Artifact file not found"}


async def test_delete_drops_the_reference(repo: Repo, world: World, app: FastAPI) -> None:
    data = b"delete me"
    artifact = await repo.upload(data)
    url = f"{repo.url}/{artifact['id']}"
    assert (await repo.client.delete(url, headers=world.auth("bob"))).status_code == 403
    response = await repo.client.delete(url, headers=world.auth("alice"))
    assert response.status_code == 204 and response.content == b""
    assert await repo.listing() == []
    assert (await repo.client.delete(url, headers=world.auth("alice"))).status_code == 404
    services: Services = app.state.services
    report = collect_garbage(
        services.database, services.store, grace=timedelta(0), now=utcnow() + timedelta(seconds=1)
    )
    assert report.digests == [sha(data)]


async def test_digest_mismatch_stores_nothing(repo: Repo, world: World) -> None:
    data = b"these are the bytes"
    session = (await repo.initiate(total_size_bytes=len(data), sha256=sha(b"other"))).json()
    await repo.chunk(session["id"], 0, data)
    response = await repo.complete(session["id"])
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["type"] == "digest_mismatch" and "sha256 mismatch" in problem["msg"]
    assert await repo.listing() == []
    status = await repo.chunk(session["id"], 0, data)
    assert status.status_code == 422 and "failed" in status.json()["detail"][0]["msg"]


async def test_digest_in_the_completion_body(repo: Repo) -> None:
    data = b"checked at the end"
    session = (await repo.initiate(total_size_bytes=len(data))).json()
    await repo.chunk(session["id"], 0, data)
    wrong = await repo.complete(session["id"], sha256=sha(b"nope"))
    assert wrong.status_code == 422
    other = (await repo.initiate(total_size_bytes=len(data))).json()
    await repo.chunk(other["id"], 0, data)
    right = await repo.complete(other["id"], sha256=sha(data))
    assert right.status_code == 200 and right.json()["sha256"] == sha(data)


async def test_chunk_errors_are_clear(repo: Repo) -> None:
    data = os.urandom(CHUNK + 10)
    session = (await repo.initiate(total_size_bytes=len(data))).json()
    short = await repo.chunk(session["id"], 0, data[:100])
    assert short.status_code == 422
    assert "chunk 0 must be 5242880 bytes" in short.json()["detail"][0]["msg"]
    out_of_range = await repo.chunk(session["id"], 2, b"x")
    assert out_of_range.status_code == 422
    assert "out of range" in out_of_range.json()["detail"][0]["msg"]
    negative = await repo.chunk(session["id"], -1, b"x")
    assert negative.status_code == 422
    await repo.chunk(session["id"], 1, data[CHUNK:])
    missing = await repo.complete(session["id"])
    assert missing.status_code == 422
    assert "missing chunk(s) 0" in missing.json()["detail"][0]["msg"]


async def test_expired_sessions(repo: Repo, app: FastAPI) -> None:
    session = (await repo.initiate(total_size_bytes=3)).json()
    services: Services = app.state.services
    with services.database.write() as db:
        row = db.get(UploadSession, uuid.UUID(session["id"]))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    response = await repo.chunk(session["id"], 0, b"abc")
    assert response.status_code == 422 and "expired" in response.json()["detail"][0]["msg"]
    assert (await repo.complete(session["id"])).status_code == 422


async def test_is_current_demotes_the_previous(repo: Repo, world: World) -> None:
    first = await repo.upload(b"v1", is_current=True)
    second = await repo.upload(b"v2", is_current=True)
    third = await repo.upload(b"v3")
    current = {a["id"]: a["is_current"] for a in await repo.listing()}
    assert current == {first["id"]: False, second["id"]: True, third["id"]: False}
    session = (await repo.initiate(total_size_bytes=2)).json()
    await repo.chunk(session["id"], 0, b"v4")
    fourth = (await repo.complete(session["id"], is_current=True)).json()
    current = {a["id"]: a["is_current"] for a in await repo.listing()}
    assert [k for k, v in current.items() if v] == [fourth["id"]]


async def test_product_versions_link(repo: Repo, world: World) -> None:
    slug = (
        await repo.client.get(
            f"{BASE}/catalog/spaces/ml/model-repository/models", headers=world.auth("alice")
        )
    ).json()[0]["slug"]
    release = (
        await repo.client.post(
            f"/api/v1/orgs/acme/spaces/ml/artifacts/{slug}/versions",
            json={"label": "v1"},
            headers=world.auth("alice"),
        )
    ).json()
    artifact = await repo.upload(b"linked", product_version_id=release["id"])
    assert artifact["product_version_id"] == release["id"]
    bad = await repo.initiate(
        total_size_bytes=1, product_version_id="4c1e92ac-e430-4b4e-ae49-3a1111111111"
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "product_version_id"]


@pytest.mark.parametrize(
    "fields",
    [
        {"artifact_kind": "binary"},
        {"total_size_bytes": -1},
        {"sha256": "abc"},
        {"file_name": ""},
        {"content_type": None},
        {"training_run_id": "not-a-uuid"},
    ],
)
async def test_invalid_initiations(repo: Repo, fields: dict[str, Any]) -> None:
    assert (await repo.initiate(**fields)).status_code == 422


async def test_upload_permissions_and_ownership(
    repo: Repo, client: httpx.AsyncClient, world: World
) -> None:
    assert (await repo.initiate(who="bob")).status_code == 403
    assert (await repo.initiate(who="dave")).status_code == 404
    session = (await repo.initiate(total_size_bytes=1)).json()
    assert (await repo.chunk(session["id"], 0, b"x", who="bob")).status_code == 403
    other = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        json={"name": "Other"},
        headers=world.auth("alice"),
    )
    elsewhere = Repo(client, world, other.json()["id"])
    # A session is only reachable through the product it was opened for.
    assert (await elsewhere.chunk(session["id"], 0, b"x")).status_code == 404
    assert (await elsewhere.complete(session["id"])).status_code == 404
    unknown = await repo.chunk("00000000-0000-4000-8000-000000000000", 0, b"x")
    assert unknown.status_code == 404
    assert (await repo.listing(who="bob")) == []
    denied = await client.get(repo.url, headers=world.auth("dave"))
    assert denied.status_code == 404


async def test_empty_file(repo: Repo) -> None:
    artifact = await repo.upload(b"", file_name="empty.txt")
    assert artifact["size_bytes"] == 0 and artifact["sha256"] == sha(b"")


class PresigningStore(MemoryBlobStore):
    """A store that hands out URLs for its blobs, as S3 does."""

    def presigned_url(
        self,
        sha256: str,
        *,
        expires_in: int,
        file_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        return f"https://store.example/{sha256}?expires={expires_in}&name={file_name}"


async def test_download_redirects_to_a_presigned_url(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    services: Services = app.state.services
    services.store = PresigningStore()
    services.uploads = UploadService(services.database, services.store, services.settings)
    created = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        json={"name": "Remote"},
        headers=world.auth("alice"),
    )
    repo = Repo(client, world, created.json()["id"])
    artifact = await repo.upload(b"stored elsewhere", file_name="model.bin")
    response = await client.get(
        f"{repo.url}/{artifact['id']}/download", headers=world.auth("alice")
    )
    assert response.status_code == 307
    assert response.headers["location"] == (
        f"https://store.example/{sha(b'stored elsewhere')}?expires=3600&name=model.bin"
    )
