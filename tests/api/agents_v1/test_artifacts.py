from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from depot.agents.indexer import index_pending, sweep_expired
from depot.agents.models import AgentRecord
from depot.db.base import utcnow
from depot.services import Services
from tests.conftest import World

pytestmark = pytest.mark.anyio

NS = "/v1/orgs/acme/workspaces/ml/namespaces/research"


class Agent:
    def __init__(self, client: httpx.AsyncClient, world: World, who: str = "alice") -> None:
        self.client = client
        self.auth = world.auth(who)

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(method, f"{NS}{path}", headers=self.auth, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    async def create(self, name: str, content: str = "some text", **fields: Any) -> Any:
        return await self.call(
            "POST", "/artifacts", expect=201, json={"name": name, "content": content, **fields}
        )

    async def upload(self, name: str, data: bytes, file_name: str, mime: str, **fields: str) -> Any:
        return await self.call(
            "POST",
            "/artifacts/upload",
            expect=201,
            files={"file": (file_name, data, mime)},
            data={"name": name, **fields},
        )


@pytest.fixture
def agent(client: httpx.AsyncClient, world: World) -> Agent:
    return Agent(client, world)


def index(services: Services) -> int:
    return index_pending(services.database, services.embedder)


async def test_create_returns_every_field(agent: Agent, services: Services) -> None:
    created = await agent.create(
        "Market summary",
        "Revenue grew 12% in Q3.\n\nChurn fell.",
        description="Q3 numbers",
        artifact_type="report",
        thread_id="thread-1",
        summary="Q3 growth",
        keywords=["revenue", "q3"],
        tags=["finance"],
        metadata={"quarter": 3},
        source="agent",
        source_execution_id="exec-1",
        source_step_id="step-2",
        source_tool="python",
        scope="team",
        status="final",
    )
    assert created["name"] == "Market summary" and created["version"] == 1
    assert created["root_artifact_id"] != created["artifact_id"]
    assert created["is_latest"] is True and created["replaced_by_version"] is None
    assert created["workspace_id"].isdigit() and created["namespace_id"]
    assert created["content"] == "Revenue grew 12% in Q3.\n\nChurn fell."
    assert created["content_text"] == created["content"]
    assert created["content_preview"] == created["content"]
    assert created["has_file"] is False and created["size_bytes"] == len(created["content"])
    assert created["file_name"].endswith(".txt") and created["mime_type"] == "text/plain"
    for key, value in {
        "description": "Q3 numbers",
        "artifact_type": "report",
        "thread_id": "thread-1",
        "summary": "Q3 growth",
        "keywords": ["revenue", "q3"],
        "tags": ["finance"],
        "metadata": {"quarter": 3},
        "source": "agent",
        "source_execution_id": "exec-1",
        "source_step_id": "step-2",
        "source_tool": "python",
        "scope": "team",
        "status": "final",
        "created_by": "alice",
    }.items():
        assert created[key] == value, key
    assert created["is_indexed"] is False and created["is_expired"] is False
    assert created["ttl_seconds"] is None and created["expires_at"] is None
    assert index(services) == 1
    indexed = await agent.call("GET", f"/artifacts/{created['artifact_id']}")
    assert indexed["is_indexed"] is True and indexed["indexed_at"]
    assert indexed["chunk_count"] >= 1 and indexed["index_attempts"] == 1
    assert indexed["embedding_model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert indexed["index_collection"] == f"ns:{created['namespace_id']}"
    assert indexed["index_error"] is None


async def test_preview_is_the_first_few_hundred_characters(agent: Agent) -> None:
    created = await agent.create("Long", "word " * 400)
    assert len(created["content_preview"]) == 500
    assert created["content"].startswith(created["content_preview"])


async def test_permissions(client: httpx.AsyncClient, world: World, agent: Agent) -> None:
    await agent.create("Mine")
    bob = Agent(client, world, "bob")  # viewer of acme
    assert (await bob.call("GET", "/artifacts"))["total"] == 1
    await bob.call("POST", "/artifacts", expect=403, json={"name": "x", "content": "y"})
    dave = Agent(client, world, "dave")
    await dave.call("GET", "/artifacts", expect=404)
    await dave.call("POST", "/artifacts/query", expect=404, json={"query": "x"})
    assert (await client.get(f"{NS}/artifacts")).status_code == 401
    missing = await client.get(
        "/v1/orgs/acme/workspaces/ml/namespaces/nope/artifacts", headers=world.auth("alice")
    )
    assert missing.status_code == 404
    by_id = await client.get(
        f"/v1/orgs/acme/workspaces/{world.ml.id}/namespaces/research/artifacts",
        headers=world.auth("bob"),
    )
    assert by_id.status_code == 200 and by_id.json()["total"] == 1


async def test_upload_a_file(agent: Agent, services: Services) -> None:
    csv = b"city,population\nLyon,522000\nNantes,320000\n"
    created = await agent.upload(
        "Cities",
        csv,
        "cities.csv",
        "text/csv",
        tags="geo,france",
        metadata='{"rows": 2}',
        ttl_seconds="3600",
    )
    assert created["has_file"] is True and created["file_name"] == "cities.csv"
    assert created["mime_type"] == "text/csv" and created["size_bytes"] == len(csv)
    assert created["content_text"] == csv.decode() and created["content"] is None
    assert created["content_preview"].startswith("city,population")
    assert created["tags"] == ["geo", "france"] and created["metadata"] == {"rows": 2}
    assert created["ttl_seconds"] == 3600 and created["expires_at"]
    binary = await agent.upload(
        "Weights", os.urandom(5 * 1024 * 1024 + 3), "w.bin", "application/octet-stream"
    )
    assert binary["content_text"] is None and binary["size_bytes"] == 5 * 1024 * 1024 + 3
    assert index(services) == 2


async def test_bad_requests(agent: Agent) -> None:
    await agent.create("exists")
    await agent.call("POST", "/artifacts", expect=422, json={"content": "no name"})
    await agent.call("POST", "/artifacts", expect=422, json={"name": "no content"})
    await agent.call(
        "POST", "/artifacts", expect=422, json={"name": "x", "content": "y", "ttl_seconds": 0}
    )
    await agent.call("POST", "/artifacts/upload", expect=422, data={"name": "no file"})
    await agent.call("GET", "/artifacts", expect=422, params={"limit": 0})
    await agent.call("GET", "/artifacts", expect=422, params={"limit": 201})
    await agent.call("GET", "/artifacts", expect=422, params={"cursor": "garbage"})
    await agent.call("GET", "/artifacts/not-an-id", expect=404)


async def test_versions(agent: Agent) -> None:
    first = await agent.create("Plan", "draft one", tags=["a"])
    same = await agent.call(
        "PUT",
        f"/artifacts/{first['artifact_id']}",
        json={
            "name": "Plan v1",
            "tags": ["b"],
            "is_pinned": True,
            "ttl_seconds": 60,
            "summary": "s",
            "keywords": ["k"],
            "metadata": {"m": 1},
            "description": "d",
        },
    )
    assert same["artifact_id"] == first["artifact_id"] and same["version"] == 1
    assert (same["name"], same["tags"], same["is_pinned"], same["ttl_seconds"]) == (
        "Plan v1",
        ["b"],
        True,
        60,
    )
    second = await agent.call(
        "PUT", f"/artifacts/{first['artifact_id']}", json={"content": "draft two"}
    )
    assert second["artifact_id"] != first["artifact_id"] and second["version"] == 2
    assert second["root_artifact_id"] == first["root_artifact_id"]
    assert second["content"] == "draft two" and second["name"] == "Plan v1"
    assert second["tags"] == ["b"] and second["is_pinned"] is True
    old = await agent.call("GET", f"/artifacts/{first['artifact_id']}")
    assert old["is_latest"] is False and old["replaced_by_version"] == 2
    await agent.call(
        "PUT", f"/artifacts/{first['artifact_id']}", expect=409, json={"content": "stale"}
    )
    third = await agent.call(
        "PUT",
        f"/artifacts/{second['artifact_id']}",
        files={"file": ("plan.md", b"# Plan\nfinal", "text/markdown")},
        data={"status": "final"},
    )
    assert third["version"] == 3 and third["has_file"] is True
    assert third["content_text"] == "# Plan\nfinal" and third["status"] == "final"
    versions = await agent.call("GET", f"/artifacts/{second['artifact_id']}/versions")
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["is_latest"] for v in versions] == [False, False, True]
    listed = await agent.call("GET", "/artifacts")
    assert [a["artifact_id"] for a in listed["artifacts"]] == [third["artifact_id"]]


async def test_listing_pages_filters_and_stays_stable(agent: Agent) -> None:
    made = []
    for n in range(5):
        made.append(
            await agent.create(
                f"note {n}",
                f"text {n}",
                thread_id="t1" if n % 2 else "t2",
                artifact_type="note" if n < 3 else "code",
            )
        )
    page = await agent.call("GET", "/artifacts", params={"limit": 2})
    assert page["total"] == 5 and page["has_more"] is True
    assert [a["name"] for a in page["artifacts"]] == ["note 4", "note 3"]
    await agent.create("note 5", "added while paging")
    await agent.call("PUT", f"/artifacts/{made[2]['artifact_id']}", json={"content": "v2"})
    seen = [a["name"] for a in page["artifacts"]]
    cursor = page["next_cursor"]
    while cursor:
        page = await agent.call("GET", "/artifacts", params={"limit": 2, "cursor": cursor})
        seen += [a["name"] for a in page["artifacts"]]
        cursor = page["next_cursor"]
    assert seen == ["note 4", "note 3", "note 2", "note 1", "note 0"]
    assert page["has_more"] is False
    code = await agent.call("GET", "/artifacts", params={"types": "code"})
    assert sorted(a["name"] for a in code["artifacts"]) == ["note 3", "note 4"]
    both = await agent.call("GET", "/artifacts", params={"types": "code, note"})
    assert both["total"] == 5  # "note 5" is a document
    thread = await agent.call("GET", "/threads/t1/artifacts")
    assert sorted(a["name"] for a in thread["artifacts"]) == ["note 1", "note 3"]
    assert (await agent.call("GET", "/artifacts", params={"thread_id": "t2"}))["total"] == 3


async def test_ttl_and_expiry(agent: Agent, services: Services) -> None:
    short = await agent.create("Short lived", "bye", ttl_seconds=60)
    pinned = await agent.create("Pinned", "stays", ttl_seconds=60, is_pinned=True)
    with services.database.write() as db:
        for item in (short, pinned):
            record = db.get(AgentRecord, uuid.UUID(item["artifact_id"]))
            assert record is not None
            record.expires_at = utcnow() - timedelta(seconds=5)
    listed = await agent.call("GET", "/artifacts")
    assert [a["name"] for a in listed["artifacts"]] == ["Pinned"]
    everything = await agent.call("GET", "/artifacts", params={"include_expired": "true"})
    assert everything["total"] == 2
    expired = await agent.call("GET", f"/artifacts/{short['artifact_id']}")
    assert expired["is_expired"] is True
    assert sweep_expired(services.database, grace=timedelta(hours=1)) == 0
    assert sweep_expired(services.database, grace=timedelta(0)) == 1
    await agent.call("GET", f"/artifacts/{short['artifact_id']}", expect=404)
    await agent.call("GET", f"/artifacts/{pinned['artifact_id']}")


async def test_download_links(agent: Agent, client: httpx.AsyncClient) -> None:
    inline = await agent.create("Readme", "hello there")
    link = await agent.call("GET", f"/artifacts/{inline['artifact_id']}/download")
    assert link["expires_in"] == 3600 and link["file_name"].endswith(".txt")
    assert link["content_type"].startswith("text/plain") and link["file_size_bytes"] == 11
    body = await client.get(link["download_url"])
    assert body.status_code == 200 and body.content == b"hello there"

    data = os.urandom(100_000)
    filed = await agent.upload("Blob", data, "blob.bin", "application/octet-stream")
    link = await agent.call(
        "GET", f"/artifacts/{filed['artifact_id']}/download", params={"expires_in": 60}
    )
    assert link["expires_in"] == 60 and link["file_size_bytes"] == len(data)
    assert (await client.get(link["download_url"])).content == data

    parts = urlsplit(link["download_url"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}

    def url(**changes: str) -> str:
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**query, **changes})}"

    assert (await client.get(url(signature="f" * 64))).status_code == 403
    assert (await client.get(url(expires="1"))).status_code == 403
    other = await agent.call("GET", f"/artifacts/{inline['artifact_id']}/download")
    swapped = other["download_url"].split("?")[0] + "?" + parts.query
    assert (await client.get(swapped)).status_code == 403
    await agent.call(
        "GET", f"/artifacts/{filed['artifact_id']}/download", expect=422, params={"expires_in": 59}
    )
    await agent.call(
        "GET",
        f"/artifacts/{filed['artifact_id']}/download",
        expect=422,
        params={"expires_in": 86401},
    )


async def test_semantic_query_finds_meaning(agent: Agent, services: Services) -> None:
    await agent.create(
        "Feline nutrition",
        "Cats are obligate carnivores. A healthy diet for a domestic feline is"
        " built on animal protein, with taurine from meat.",
        thread_id="pets",
    )
    await agent.create(
        "Tax filing checklist",
        "Gather your income statements and receipts before the April deadline"
        " and submit the return online.",
        thread_id="admin",
        artifact_type="checklist",
    )
    await agent.create(
        "Deployment runbook",
        "Roll out the new service with a canary release, watch error rates,"
        " then promote to all regions.",
        thread_id="ops",
    )
    assert index(services) == 3
    answer = await agent.call("POST", "/artifacts/query", json={"query": "what does the cat eat"})
    assert answer["query"] == "what does the cat eat"
    assert answer["total_results"] == len(answer["results"]) == 3
    top = answer["results"][0]
    assert top["artifact"]["name"] == "Feline nutrition"
    assert 0 < top["score"] <= 1 and "carnivores" in top["matched_chunk"]
    assert answer["combined_context"].startswith("## Feline nutrition\n")
    limited = await agent.call(
        "POST", "/artifacts/query", json={"query": "what does the cat eat", "limit": 1}
    )
    assert [r["artifact"]["name"] for r in limited["results"]] == ["Feline nutrition"]
    strict = await agent.call(
        "POST", "/artifacts/query", json={"query": "what does the cat eat", "min_score": 0.3}
    )
    assert [r["artifact"]["name"] for r in strict["results"]] == ["Feline nutrition"]
    thread = await agent.call(
        "POST", "/artifacts/query", json={"query": "what does the cat eat", "thread_id": "ops"}
    )
    assert [r["artifact"]["name"] for r in thread["results"]] == ["Deployment runbook"]
    typed = await agent.call(
        "POST", "/artifacts/query", json={"query": "deadline", "types": ["checklist"]}
    )
    assert [r["artifact"]["name"] for r in typed["results"]] == ["Tax filing checklist"]
    await agent.call("POST", "/artifacts/query", expect=422, json={"query": "x", "limit": 51})
    await agent.call("POST", "/artifacts/query", expect=422, json={"query": ""})


async def test_query_sees_only_latest_unexpired_versions(agent: Agent, services: Services) -> None:
    first = await agent.create("Recipe", "Bake the bread at 220 degrees for forty minutes.")
    await agent.call(
        "PUT",
        f"/artifacts/{first['artifact_id']}",
        json={"content": "Steam the dumplings for twelve minutes."},
    )
    index(services)
    answer = await agent.call("POST", "/artifacts/query", json={"query": "baking bread"})
    assert [r["artifact"]["version"] for r in answer["results"]] == [2]
    assert "dumplings" in answer["results"][0]["matched_chunk"]


async def test_promote(
    agent: Agent, client: httpx.AsyncClient, world: World, services: Services
) -> None:
    created = await agent.create("Style guide", "Write short sentences. Prefer active voice.")
    promoted = await agent.call("POST", f"/artifacts/{created['artifact_id']}/promote", json={})
    assert promoted["artifact_id"] == created["artifact_id"]
    assert promoted["source_name"] == "Style guide" and promoted["message"]
    again = await agent.call("POST", f"/artifacts/{created['artifact_id']}/promote")
    assert again["source_id"] == promoted["source_id"]
    record = await agent.call("GET", f"/artifacts/{created['artifact_id']}")
    assert record["promoted_to_source_id"] == promoted["source_id"]
    index(services)
    sources = await client.get(
        "/api/v1/orgs/acme/spaces/ml/namespaces/research/sources", headers=world.auth("bob")
    )
    [source] = sources.json()
    assert source["id"] == promoted["source_id"] and source["is_indexed"] is True
    assert source["chunk_count"] >= 1 and source["origin_artifact_id"] == created["artifact_id"]
    bob = Agent(client, world, "bob")
    await bob.call("POST", f"/artifacts/{created['artifact_id']}/promote", expect=403)


async def test_delete(agent: Agent) -> None:
    created = await agent.create("Temp", "x")
    await agent.call("PUT", f"/artifacts/{created['artifact_id']}", json={"content": "y"})
    assert await agent.call("DELETE", f"/artifacts/{created['artifact_id']}", expect=204) is None
    await agent.call("GET", f"/artifacts/{created['artifact_id']}", expect=404)
    assert (await agent.call("GET", "/artifacts"))["total"] == 0


async def test_native_namespaces(client: httpx.AsyncClient, world: World) -> None:
    url = "/api/v1/orgs/acme/spaces/ml/namespaces"
    made = await client.post(url, json={"name": "support"}, headers=world.auth("alice"))
    assert made.status_code == 201
    assert (
        await client.post(url, json={"name": "support"}, headers=world.auth("alice"))
    ).status_code == 409
    assert (
        await client.post(url, json={"name": "x"}, headers=world.auth("bob"))
    ).status_code == 403
    listed = await client.get(url, headers=world.auth("bob"))
    assert [n["name"] for n in listed.json()] == ["support"]
