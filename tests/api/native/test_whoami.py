from __future__ import annotations

import httpx
import pytest

from tests.conftest import World

pytestmark = pytest.mark.anyio


async def test_whoami_lists_orgs_and_roles(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/whoami", headers=world.auth("alice"))
    assert response.status_code == 200
    assert response.json() == {
        "username": "alice",
        "is_superuser": False,
        "orgs": [{"slug": "acme", "name": "Acme"}],
        "roles": [{"role": "editor", "scope": "space:acme/ml"}],
    }


async def test_whoami_of_a_superuser(client: httpx.AsyncClient, world: World) -> None:
    body = (await client.get("/api/v1/whoami", headers=world.auth("root"))).json()
    assert body["is_superuser"] is True
    assert [org["slug"] for org in body["orgs"]] == ["acme", "globex"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
async def test_no_valid_token_is_401(
    client: httpx.AsyncClient, world: World, headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert isinstance(response.json()["detail"], str)


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_openapi_documents_the_native_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in (
        "/api/v1/whoami",
        "/api/v1/orgs",
        "/api/v1/orgs/{org}/spaces/{space}/artifacts",
        "/api/v1/orgs/{org}/spaces/{space}/artifacts/{name}/pushes",
        "/api/v1/orgs/{org}/spaces/{space}/artifacts/{name}/versions/{ref}/files/{path}",
        "/api/v1/orgs/{org}/spaces/{space}/artifacts/{name}/aliases/{alias}",
        "/api/v1/pushes/{version_id}/finalize",
        "/api/v1/uploads/{upload_id}/chunks/{index}",
        "/api/v1/tokens",
        "/api/v1/search",
    ):
        assert path in schema["paths"], path
