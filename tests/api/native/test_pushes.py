from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from depot.services import Services
from depot.settings import MiB
from depot.uploads.service import UploadService
from tests.conftest import World

pytestmark = pytest.mark.anyio

CHUNK = 5 * MiB
ML = "/api/v1/orgs/acme/spaces/ml/artifacts"


@pytest.fixture
def services(services: Services) -> Services:
    # The smallest chunk size the server allows, so multi-chunk files stay small in tests.
    services.settings = services.settings.model_copy(update={"upload_chunk_size": CHUNK})
    services.uploads = UploadService(services.database, services.store, services.settings)
    return services


def offer(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def send_all(
    client: httpx.AsyncClient, world: World, push: dict[str, Any], files: dict[str, bytes]
) -> None:
    """Send every missing chunk of every upload of the push, then complete the uploads."""
    for item in push["files"]:
        if item["status"] != "upload":
            continue
        upload, data = item["upload"], files[item["path"]]
        await send_chunks(client, world, upload, data)
        done = await client.post(
            f"/api/v1/uploads/{upload['id']}/complete", headers=world.auth("alice")
        )
        assert done.status_code == 200, done.text


async def send_chunks(
    client: httpx.AsyncClient, world: World, upload: dict[str, Any], data: bytes
) -> None:
    for index in upload["missing_chunks"]:
        start = index * upload["chunk_size"]
        response = await client.put(
            f"/api/v1/uploads/{upload['id']}/chunks/{index}",
            content=data[start : start + upload["chunk_size"]],
            headers=world.auth("alice"),
        )
        assert response.status_code == 200, response.text


async def push(
    client: httpx.AsyncClient,
    world: World,
    name: str,
    files: dict[str, bytes],
    *,
    alias: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    begun = await client.post(
        f"{ML}/{name}/pushes",
        json={"files": [offer(path, data) for path, data in files.items()], **fields},
        headers=world.auth("alice"),
    )
    assert begun.status_code == 201, begun.text
    await send_all(client, world, begun.json(), files)
    final = await client.post(
        f"/api/v1/pushes/{begun.json()['version_id']}/finalize",
        json={"alias": alias},
        headers=world.auth("alice"),
    )
    assert final.status_code == 200, final.text
    return {"begun": begun.json(), "version": final.json()}


async def test_push_then_read_the_version_and_its_files(
    client: httpx.AsyncClient, world: World
) -> None:
    files = {"weights.bin": os.urandom(CHUNK * 2 + 123), "config/params.json": b'{"k": 1}'}
    result = await push(
        client, world, "churn", files, kind="model", alias="prod", metadata={"acc": 0.9}
    )
    assert [item["status"] for item in result["begun"]["files"]] == ["upload", "upload"]
    weights = next(f for f in result["begun"]["files"] if f["path"] == "weights.bin")
    assert weights["upload"]["chunk_count"] == 3
    assert result["version"]["number"] == 1 and result["version"]["aliases"] == ["prod"]

    detail = (await client.get(f"{ML}/churn/versions/prod", headers=world.auth("bob"))).json()
    assert detail["number"] == 1 and detail["kind"] == "model"
    assert detail["metadata"] == {"acc": 0.9}
    assert detail["size"] == sum(len(data) for data in files.values())
    assert {f["path"]: f["sha256"] for f in detail["files"]} == {
        path: hashlib.sha256(data).hexdigest() for path, data in files.items()
    }
    whole = await client.get(
        f"{ML}/churn/versions/1/files/config/params.json", headers=world.auth("bob")
    )
    assert whole.status_code == 200 and whole.content == b'{"k": 1}'
    part = await client.get(
        f"{ML}/churn/versions/latest/files/weights.bin",
        headers={**world.auth("bob"), "Range": "bytes=100-199"},
    )
    assert part.status_code == 206 and part.content == files["weights.bin"][100:200]


async def test_content_the_caller_can_write_is_not_sent_again(
    client: httpx.AsyncClient, world: World
) -> None:
    data = os.urandom(1000)
    await push(client, world, "first", {"a.bin": data})
    second = await push(client, world, "second", {"same.bin": data, "new.txt": b"new"})
    statuses = {f["path"]: f["status"] for f in second["begun"]["files"]}
    assert statuses == {"same.bin": "present", "new.txt": "upload"}
    assert second["version"]["number"] == 1
    got = await client.get(f"{ML}/second/versions/1/files/same.bin", headers=world.auth("alice"))
    assert got.content == data


async def test_content_elsewhere_is_sent_again_so_nothing_leaks(
    client: httpx.AsyncClient, world: World
) -> None:
    data = os.urandom(1000)
    secret = await client.post(
        "/api/v1/orgs/globex/spaces/secret/artifacts/hidden/pushes",
        json={"files": [offer("x.bin", data)]},
        headers=world.auth("root"),
    )
    upload = secret.json()["files"][0]["upload"]
    await client.put(
        f"/api/v1/uploads/{upload['id']}/chunks/0", content=data, headers=world.auth("root")
    )
    await client.post(f"/api/v1/uploads/{upload['id']}/complete", headers=world.auth("root"))
    mine = await client.post(
        f"{ML}/mine/pushes", json={"files": [offer("x.bin", data)]}, headers=world.auth("alice")
    )
    assert mine.json()["files"][0]["status"] == "upload"


async def test_a_push_can_be_resumed_from_what_the_server_has(
    client: httpx.AsyncClient, world: World
) -> None:
    data = os.urandom(CHUNK * 3)
    begun = (
        await client.post(
            f"{ML}/big/pushes",
            json={"files": [offer("big.bin", data)]},
            headers=world.auth("alice"),
        )
    ).json()
    upload_id = begun["files"][0]["upload"]["id"]
    await client.put(
        f"/api/v1/uploads/{upload_id}/chunks/1",
        content=data[CHUNK : 2 * CHUNK],
        headers=world.auth("alice"),
    )
    state = (
        await client.get(f"/api/v1/pushes/{begun['version_id']}", headers=world.auth("alice"))
    ).json()
    assert state["status"] == "staged"
    assert state["files"][0]["upload"]["received_chunks"] == [1]
    assert state["files"][0]["upload"]["missing_chunks"] == [0, 2]
    early = await client.post(
        f"/api/v1/pushes/{begun['version_id']}/finalize", headers=world.auth("alice")
    )
    assert early.status_code == 422 and "not uploaded yet: big.bin" in early.text
    await send_all(client, world, state, {"big.bin": data})
    final = await client.post(
        f"/api/v1/pushes/{begun['version_id']}/finalize", headers=world.auth("alice")
    )
    assert final.status_code == 200 and final.json()["number"] == 1
    again = await client.post(
        f"/api/v1/pushes/{begun['version_id']}/finalize", headers=world.auth("alice")
    )
    assert again.json()["number"] == 1


async def test_a_wrong_digest_stores_nothing(client: httpx.AsyncClient, world: World) -> None:
    claimed = offer("f.bin", b"what I said")
    begun = (
        await client.post(
            f"{ML}/bad/pushes", json={"files": [claimed]}, headers=world.auth("alice")
        )
    ).json()
    upload_id = begun["files"][0]["upload"]["id"]
    await client.put(
        f"/api/v1/uploads/{upload_id}/chunks/0", content=b"what I sent", headers=world.auth("alice")
    )
    done = await client.post(f"/api/v1/uploads/{upload_id}/complete", headers=world.auth("alice"))
    assert done.status_code == 422
    state = (
        await client.get(f"/api/v1/pushes/{begun['version_id']}", headers=world.auth("alice"))
    ).json()
    assert state["files"][0]["status"] == "upload"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "at least one file"),
        ([offer("a", b"1"), offer("a", b"2")], "once"),
        ([offer("../up", b"1")], "relative"),
        ([offer("a", b"1"), offer("a/b", b"2")], "a is a file and a folder of a/b"),
        ([{"path": "a", "size": 1, "sha256": "z" * 64}], "sha256"),
        ([{"path": "a", "size": -1, "sha256": "0" * 64}], "greater than or equal"),
    ],
)
async def test_bad_pushes_are_refused_and_create_nothing(
    client: httpx.AsyncClient, world: World, files: list[dict[str, Any]], message: str
) -> None:
    response = await client.post(
        f"{ML}/refused/pushes", json={"files": files}, headers=world.auth("alice")
    )
    assert response.status_code == 422
    assert message in response.text
    assert (await client.get(f"{ML}/refused", headers=world.auth("alice"))).status_code == 404


async def test_pushes_need_the_editor_role(client: httpx.AsyncClient, world: World) -> None:
    body = {"files": [offer("a", b"1")]}
    viewer = await client.post(f"{ML}/x/pushes", json=body, headers=world.auth("bob"))
    stranger = await client.post(f"{ML}/x/pushes", json=body, headers=world.auth("dave"))
    assert (viewer.status_code, stranger.status_code) == (403, 404)
    begun = (await client.post(f"{ML}/x/pushes", json=body, headers=world.auth("alice"))).json()
    upload_id = begun["files"][0]["upload"]["id"]
    theirs = await client.put(
        f"/api/v1/uploads/{upload_id}/chunks/0", content=b"1", headers=world.auth("dave")
    )
    assert theirs.status_code == 404
    peek = await client.get(f"/api/v1/pushes/{begun['version_id']}", headers=world.auth("dave"))
    assert peek.status_code == 404


async def test_a_kind_that_does_not_match_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    await push(client, world, "skill", {"SKILL.md": b"# s"}, kind="agent_skill")
    response = await client.post(
        f"{ML}/skill/pushes",
        json={"kind": "model", "files": [offer("a", b"1")]},
        headers=world.auth("alice"),
    )
    assert response.status_code == 422 and "agent_skill" in response.text


async def test_a_file_announced_without_its_digest_is_checked_at_completion(
    client: httpx.AsyncClient, world: World
) -> None:
    data = os.urandom(CHUNK + 7)
    unannounced = {"path": "w.bin", "size": len(data)}
    begun = (
        await client.post(
            f"{ML}/later/pushes", json={"files": [unannounced]}, headers=world.auth("alice")
        )
    ).json()
    (item,) = begun["files"]
    assert item["sha256"] is None and item["status"] == "upload"
    upload_id = item["upload"]["id"]
    for index in (0, 1):
        sent = await client.put(
            f"/api/v1/uploads/{upload_id}/chunks/{index}",
            content=data[index * CHUNK : (index + 1) * CHUNK],
            headers=world.auth("alice"),
        )
        assert sent.status_code == 200, sent.text
    complete = f"/api/v1/uploads/{upload_id}/complete"
    bare = await client.post(complete, headers=world.auth("alice"))
    assert bare.status_code == 422 and "without its sha256" in bare.text
    wrong = await client.post(
        complete, json={"sha256": hashlib.sha256(b"other").hexdigest()}, headers=world.auth("alice")
    )
    assert wrong.status_code == 422
    state = (
        await client.get(f"/api/v1/pushes/{begun['version_id']}", headers=world.auth("alice"))
    ).json()
    assert state["files"][0]["status"] == "upload"  # nothing was linked
    assert state["files"][0]["upload"]["status"] == "failed"

    # Announced again (a new push), sent, and completed with the right digest.
    again = (
        await client.post(
            f"{ML}/later/pushes", json={"files": [unannounced]}, headers=world.auth("alice")
        )
    ).json()
    await send_chunks(client, world, again["files"][0]["upload"], data)
    right = {"sha256": hashlib.sha256(data).hexdigest()}
    upload_id = again["files"][0]["upload"]["id"]
    done = await client.post(
        f"/api/v1/uploads/{upload_id}/complete", json=right, headers=world.auth("alice")
    )
    assert done.status_code == 200, done.text
    twice = await client.post(f"/api/v1/uploads/{upload_id}/complete", headers=world.auth("alice"))
    assert twice.status_code == 200  # completed already: no digest needed to see it
    final = await client.post(
        f"/api/v1/pushes/{again['version_id']}/finalize", headers=world.auth("alice")
    )
    assert final.status_code == 200, final.text
    detail = (await client.get(f"{ML}/later/versions/1", headers=world.auth("bob"))).json()
    assert [(f["path"], f["sha256"]) for f in detail["files"]] == [("w.bin", right["sha256"])]
