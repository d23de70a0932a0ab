from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from tests.conftest import World

pytestmark = pytest.mark.anyio

SVC = "/api/svc/v1"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Ml:
    def __init__(
        self, client: httpx.AsyncClient, world: World, who: str = "carol", prefix: str = SVC
    ) -> None:
        self.client = client
        self.auth = world.auth(who)
        self.prefix = prefix

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(
            method, f"{self.prefix}{path}", headers=self.auth, **kwargs
        )
        assert response.status_code == expect, response.text
        return response.json()

    async def repo(self, name: str = "tfy-repo") -> dict[str, Any]:
        body = {
            "manifest": {
                "type": "ml-repo",
                "name": name,
                "description": "d",
                "storage_integration_fqn": "depot:default",
                "collaborators": [],
            },
            "dryRun": False,
        }
        result: dict[str, Any] = (await self.call("PUT", "/ml-repos", json=body))["data"]
        return result

    async def stage(
        self, name: str, kind: str = "artifact-version", **extra: Any
    ) -> dict[str, Any]:
        manifest = {
            "name": name,
            "metadata": {},
            "ml_repo": "tfy-repo",
            "type": kind,
            "description": "desc",
            "source": {"type": "truefoundry"},
            "step": 0,
            "run_id": None,
            **extra,
        }
        result: dict[str, Any] = await self.call(
            "POST", "/artifact-versions/stage", json={"manifest": manifest}
        )
        return result

    async def multipart(self, version_id: str, path: str, num_parts: int) -> dict[str, Any]:
        """The signed part and finalize URLs of a multipart upload of ``path``."""
        plan: dict[str, Any] = (
            await self.call(
                "POST",
                "/artifact-versions/signed-urls/multipart",
                json={"id": version_id, "path": path, "num_parts": num_parts},
            )
        )["data"]
        return plan

    async def put_files(self, version_id: str, files: dict[str, bytes]) -> None:
        urls = (
            await self.call(
                "POST",
                "/artifact-versions/signed-urls",
                json={"id": version_id, "paths": list(files), "operation": "WRITE"},
            )
        )["data"]
        assert [u["path"] for u in urls] == list(files)
        for entry in urls:
            assert entry["signed_url"].startswith("http://depot.test/api/svc/v1/signed/")
            response = await self.client.put(entry["signed_url"], content=files[entry["path"]])
            assert response.status_code == 200, response.text

    async def finalize(
        self,
        name: str,
        root: str,
        kind: str = "artifact-version",
        endpoint: str = "/artifact-versions",
        **extra: Any,
    ) -> dict[str, Any]:
        manifest = {
            "name": name,
            "metadata": {"k": "v"},
            "ml_repo": "tfy-repo",
            "type": kind,
            "description": "final",
            "source": {"type": "truefoundry", "uri": root},
            "step": 0,
            **extra,
        }
        result: dict[str, Any] = (await self.call("PUT", endpoint, json={"manifest": manifest}))[
            "data"
        ]
        return result


@pytest.fixture
def ml(client: httpx.AsyncClient, world: World) -> Ml:
    return Ml(client, world)


async def test_artifact_lifecycle(ml: Ml, world: World) -> None:
    repo = await ml.repo()
    assert repo["id"].isdigit() and repo["tenant_name"] == "acme"
    staged = await ml.stage("my-art")
    assert staged["storage_root"].startswith("s3://depot/")
    files = {"a.bin": os.urandom(1000), "sub/b.txt": b"hello", "empty.txt": b""}
    await ml.put_files(staged["id"], files)
    version = await ml.finalize("my-art", staged["storage_root"])
    assert version["fqn"] == "artifact:acme/tfy-repo/my-art:1"
    assert version["id"] == staged["id"] and version["artifact_id"] == staged["artifact_id"]
    assert version["manifest"]["source"]["uri"] == staged["storage_root"]
    assert version["manifest"]["version"] == 1

    found = await ml.call(
        "GET",
        "/artifact-versions",
        params={
            "fqn": version["fqn"],
            "limit": 1,
            "offset": 0,
            "include_internal_metadata": "false",
        },
    )
    assert [v["id"] for v in found["data"]] == [version["id"]]
    listing = await ml.call(
        "POST", "/artifact-versions/files", json={"id": version["id"], "path": ""}
    )
    assert sorted((e["path"], e["is_dir"]) for e in listing["data"]) == [
        ("a.bin", False),
        ("empty.txt", False),
        ("sub", True),
    ]
    sub = await ml.call(
        "POST", "/artifact-versions/files", json={"id": version["id"], "path": "sub"}
    )
    assert [e["path"] for e in sub["data"]] == ["sub/b.txt"]
    reads = (
        await ml.call(
            "POST",
            "/artifact-versions/signed-urls",
            json={
                "id": version["id"],
                "paths": ["sub/b.txt", "a.bin", "empty.txt"],
                "operation": "READ",
            },
        )
    )["data"]
    for entry in reads:
        response = await ml.client.get(entry["signed_url"])
        assert response.status_code == 200
        assert response.content == files[entry["path"]]
    tampered = reads[0]["signed_url"].replace("b.txt", "c.txt")
    assert (await ml.client.get(tampered)).status_code == 403
    container = (await ml.call("GET", f"/artifacts/{version['artifact_id']}"))["data"]
    assert container["type"] == "artifact" and container["latest_version"]["id"] == version["id"]

    updated = await ml.finalize(
        "my-art",
        staged["storage_root"],
        version=1,
        version_alias="v1-prod",
        description="new words",
    )
    assert updated["manifest"]["description"] == "new words"
    assert updated["manifest"]["version_alias"] == "v1-prod"
    assert (
        await ml.call(
            "GET", "/artifact-versions", params={"fqn": "artifact:acme/tfy-repo/my-art:v1-prod"}
        )
    )["data"][0]["id"] == version["id"]

    await ml.call("DELETE", f"/artifact-versions/{version['id']}")
    assert (await ml.call("GET", "/artifact-versions", params={"fqn": version["fqn"]}))[
        "data"
    ] == []
    await ml.call("GET", f"/artifact-versions/{version['id']}", expect=404)


async def test_multipart(ml: Ml) -> None:
    await ml.repo()
    staged = await ml.stage("big")
    data = os.urandom(12 * 1024 * 1024 + 77)
    part = 5 * 1024 * 1024
    plan = await ml.multipart(staged["id"], "x/big.bin", 3)
    assert plan["storage_provider"] == "S3_COMPATIBLE" and len(plan["part_signed_urls"]) == 3
    etags = {}
    for index in (2, 0, 1):
        response = await ml.client.put(
            plan["part_signed_urls"][index]["signed_url"],
            content=data[index * part : (index + 1) * part],
        )
        assert response.status_code == 200, response.text
        etags[index + 1] = response.headers["etag"]
    xml = (
        "<CompleteMultipartUpload>\n"
        + "".join(
            f"  <Part>\n    <PartNumber>{n}</PartNumber>\n    <ETag>{etags[n]}</ETag>\n  </Part>\n"
            for n in sorted(etags)
        )
        + "</CompleteMultipartUpload>"
    )
    done = await ml.client.post(plan["finalize_signed_url"]["signed_url"], content=xml)
    assert done.status_code == 200, done.text
    version = await ml.finalize("big", staged["storage_root"])
    reads = (
        await ml.call(
            "POST",
            "/artifact-versions/signed-urls",
            json={"id": version["id"], "paths": ["x/big.bin"], "operation": "READ"},
        )
    )["data"]
    body = (await ml.client.get(reads[0]["signed_url"])).content
    assert sha(body) == sha(data)


async def test_model_and_skill(ml: Ml) -> None:
    await ml.repo()
    framework = {
        "type": "sklearn",
        "model_filepath": "model.joblib",
        "serialization_format": None,
        "model_schema": None,
    }
    staged = await ml.stage(
        "clf",
        kind="model-version",
        framework=framework,
        environment={"python_version": "3.11", "pip_packages": ["x==1"]},
    )
    await ml.put_files(staged["id"], {"model.joblib": b"model bytes"})
    model = await ml.finalize(
        "clf",
        staged["storage_root"],
        kind="model-version",
        endpoint="/model-versions",
        framework=framework,
    )
    assert model["fqn"] == "model:acme/tfy-repo/clf:1" and model["model_id"]
    assert model["manifest"]["framework"]["type"] == "sklearn"

    skill_md = "---\nname: my-skill\ndescription: Does things.\n---\n# My skill\n"
    manifest = {
        "name": "my-skill",
        "metadata": {},
        "ml_repo": "tfy-repo",
        "type": "agent-skill",
        "source": {"type": "inline", "skill_md": skill_md},
    }
    staged = await ml.call("POST", "/artifact-versions/stage", json={"manifest": manifest})
    await ml.put_files(
        staged["id"], {"my-skill/SKILL.md": skill_md.encode(), "my-skill/tool.py": b"print(1)"}
    )
    applied = await ml.call(
        "PUT",
        "/apply",
        json={
            "manifest": {
                **manifest,
                "source": {
                    "type": "blob-storage",
                    "description": "Does things.",
                    "uri": staged["storage_root"],
                },
            },
            "dryRun": False,
        },
    )
    assert "existingManifest" in applied
    found = (
        await ml.call(
            "GET",
            "/agent-skill-versions",
            params={"fqn": "agent-skill:acme/tfy-repo/my-skill:1", "limit": 1},
        )
    )["data"]
    assert found and found[0]["agent_skill_id"]
    bad = {**manifest, "source": {"type": "inline", "skill_md": "# no front matter"}}
    response = await ml.client.post(
        f"{SVC}/artifact-versions/stage", json={"manifest": bad}, headers=ml.auth
    )
    assert response.status_code == 422


async def test_bootstrap_and_errors(ml: Ml, client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get(f"{SVC}/min-cli-version")).json()["minVersion"] == "0.0.0"
    assert (
        "auth_server_url" in (await client.get(f"{SVC}/tenant-id", params={"hostName": "x"})).json()
    )
    session = await ml.call("GET", "/session")
    assert session["user"]["tenantName"] == "acme" and session["user"]["email"]
    missing = await client.get(
        f"{SVC}/artifact-versions/00000000-0000-4000-8000-000000000000", headers=ml.auth
    )
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == 404 and missing.json()["message"]
    paged = await ml.call("GET", "/ml-repos", params={"limit": 10, "offset": 5})
    assert paged["data"] == []


async def test_an_ml_repo_reads_the_same_from_every_route(ml: Ml) -> None:
    created = await ml.repo()
    by_id = (await ml.call("GET", f"/ml-repos/{created['id']}"))["data"]
    listed = (await ml.call("GET", "/ml-repos", params={"name": "tfy-repo"}))["data"]
    assert by_id == created and listed == [created]
    assert created["tenant_name"] == "acme" and created["account_id"].isdigit()
    assert created["manifest"]["name"] == "tfy-repo"
    assert created["manifest"]["description"] == "d"
    assert created["manifest"]["storage_integration_fqn"] == "depot:default"
    assert created["created_by_subject"]["subjectSlug"] == "carol"
    assert created["created_by_subject"]["subjectType"] == "user"
    assert created["created_at"].endswith("Z") and created["updated_at"].endswith("Z")
    await ml.call("GET", "/ml-repos/nope", expect=404)
    await ml.call("GET", f"/ml-repos/{int(created['id']) + 1000}", expect=404)
