from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.native.test_pushes import ML, push
from tests.conftest import World

pytestmark = pytest.mark.anyio


async def test_orgs_and_spaces_are_those_the_caller_may_see(
    client: httpx.AsyncClient, world: World
) -> None:
    orgs = (await client.get("/api/v1/orgs", headers=world.auth("alice"))).json()
    assert [org["slug"] for org in orgs] == ["acme"]
    spaces = (await client.get("/api/v1/orgs/acme/spaces", headers=world.auth("alice"))).json()
    assert [space["slug"] for space in spaces] == ["ml"]
    by_bob = (await client.get("/api/v1/orgs/acme/spaces", headers=world.auth("bob"))).json()
    assert [space["slug"] for space in by_bob] == ["ml", "web"]
    hidden = await client.get("/api/v1/orgs/globex/spaces", headers=world.auth("alice"))
    assert hidden.status_code == 404


async def test_org_admins_create_spaces(client: httpx.AsyncClient, world: World) -> None:
    body = {"slug": "vision", "description": "Image models"}
    denied = await client.post("/api/v1/orgs/acme/spaces", json=body, headers=world.auth("alice"))
    assert denied.status_code == 403
    made = await client.post("/api/v1/orgs/acme/spaces", json=body, headers=world.auth("carol"))
    assert made.status_code == 201 and made.json()["slug"] == "vision"
    again = await client.post("/api/v1/orgs/acme/spaces", json=body, headers=world.auth("carol"))
    assert again.status_code == 409
    bad = await client.post(
        "/api/v1/orgs/acme/spaces", json={"slug": "-no-"}, headers=world.auth("carol")
    )
    assert bad.status_code == 422


async def test_listing_pages_by_name_with_filters(client: httpx.AsyncClient, world: World) -> None:
    for index in range(5):
        await push(client, world, f"model-{index}", {"w": bytes([index])}, kind="model")
    await push(client, world, "notes", {"n.md": b"n"}, kind="document", description="Churn notes")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(ML, params=params, headers=world.auth("bob"))).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"model-{i}" for i in range(5)] + ["notes"]
    models = (await client.get(ML, params={"kind": "model"}, headers=world.auth("bob"))).json()
    assert len(models["items"]) == 5 and models["items"][0]["latest_version"] == 1
    found = (await client.get(ML, params={"q": "CHURN"}, headers=world.auth("bob"))).json()
    assert [item["name"] for item in found["items"]] == ["notes"]
    bad_kind = await client.get(ML, params={"kind": "car"}, headers=world.auth("bob"))
    bad_cursor = await client.get(ML, params={"cursor": "!!"}, headers=world.auth("bob"))
    bad_limit = await client.get(ML, params={"limit": 0}, headers=world.auth("bob"))
    assert {bad_kind.status_code, bad_cursor.status_code, bad_limit.status_code} == {422}


async def test_search_spans_visible_spaces_only(client: httpx.AsyncClient, world: World) -> None:
    await push(client, world, "fraud-detector", {"w": b"1"}, description="Fraud scoring")
    hits = await client.get("/api/v1/search", params={"q": "fraud"}, headers=world.auth("bob"))
    assert [(i["space"], i["name"]) for i in hits.json()["items"]] == [("ml", "fraud-detector")]
    none = await client.get("/api/v1/search", params={"q": "fraud"}, headers=world.auth("dave"))
    assert none.json()["items"] == []
    empty = await client.get("/api/v1/search", params={"q": ""}, headers=world.auth("bob"))
    assert empty.status_code == 422


async def test_aliases_move_and_resolve(client: httpx.AsyncClient, world: World) -> None:
    await push(client, world, "m", {"w": b"1"}, alias="prod")
    await push(client, world, "m", {"w": b"2"})
    moved = await client.put(
        f"{ML}/m/aliases/prod", json={"version": "2"}, headers=world.auth("alice")
    )
    assert moved.status_code == 200 and moved.json()["number"] == 2
    resolved = (await client.get(f"{ML}/m/versions/prod", headers=world.auth("bob"))).json()
    assert resolved["number"] == 2 and resolved["aliases"] == ["prod"]
    artifact = (await client.get(f"{ML}/m", headers=world.auth("bob"))).json()
    assert artifact["aliases"] == {"prod": 2} and artifact["version_count"] == 2
    reserved = await client.put(
        f"{ML}/m/aliases/latest", json={"version": "1"}, headers=world.auth("alice")
    )
    assert reserved.status_code == 422
    by_viewer = await client.delete(f"{ML}/m/aliases/prod", headers=world.auth("bob"))
    assert by_viewer.status_code == 403
    assert (
        await client.delete(f"{ML}/m/aliases/prod", headers=world.auth("alice"))
    ).status_code == 204
    gone = await client.get(f"{ML}/m/versions/prod", headers=world.auth("bob"))
    assert gone.status_code == 404


async def test_versions_are_listed_newest_first(client: httpx.AsyncClient, world: World) -> None:
    for content in (b"1", b"2", b"3"):
        await push(client, world, "m", {"w": content})
    versions = (await client.get(f"{ML}/m/versions", headers=world.auth("bob"))).json()
    assert [v["number"] for v in versions] == [3, 2, 1]
    assert (
        await client.delete(f"{ML}/m/versions/2", headers=world.auth("alice"))
    ).status_code == 204
    versions = (await client.get(f"{ML}/m/versions", headers=world.auth("bob"))).json()
    assert [v["number"] for v in versions] == [3, 1]


async def test_deleting_an_artifact(client: httpx.AsyncClient, world: World) -> None:
    await push(client, world, "old", {"w": b"1"})
    assert (await client.delete(f"{ML}/old", headers=world.auth("bob"))).status_code == 403
    assert (await client.delete(f"{ML}/old", headers=world.auth("alice"))).status_code == 204
    assert (await client.get(f"{ML}/old", headers=world.auth("alice"))).status_code == 404
    missing_file = await client.get(f"{ML}/old/versions/1/files/w", headers=world.auth("alice"))
    assert missing_file.status_code == 404


async def test_tokens_are_created_listed_and_revoked(
    client: httpx.AsyncClient, world: World
) -> None:
    made = await client.post(
        "/api/v1/tokens", json={"name": "ci", "expires_in_days": 30}, headers=world.auth("alice")
    )
    assert made.status_code == 201
    token = made.json()["token"]
    me = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "alice"
    listed = (await client.get("/api/v1/tokens", headers=world.auth("alice"))).json()
    assert made.json()["id"] in [t["id"] for t in listed] and "token" not in listed[0]
    others = await client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=world.auth("bob"))
    assert others.status_code == 404
    revoked = await client.delete(
        f"/api/v1/tokens/{made.json()['id']}", headers=world.auth("alice")
    )
    assert revoked.status_code == 204
    after = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401
