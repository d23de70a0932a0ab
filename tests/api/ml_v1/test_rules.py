"""The ML API's validation, paging, lookups, aliases, tags, permissions and signed URLs."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from depot.services import Services
from tests.api.ml_v1.test_flow import SVC, Ml
from tests.conftest import World

pytestmark = pytest.mark.anyio

BASE_MANIFEST: dict[str, Any] = {
    "name": "thing",
    "metadata": {},
    "ml_repo": "tfy-repo",
    "type": "artifact-version",
    "source": {"type": "truefoundry"},
}


@pytest.fixture
async def ml(client: httpx.AsyncClient, world: World) -> Ml:
    helper = Ml(client, world)
    await helper.repo()
    return helper


async def stage_status(ml: Ml, **changes: Any) -> httpx.Response:
    manifest = {**BASE_MANIFEST, **changes}
    return await ml.client.post(
        f"{SVC}/artifact-versions/stage", json={"manifest": manifest}, headers=ml.auth
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "has space"},
        {"name": "x" * 257},
        {"ml_repo": "1repo"},
        {"ml_repo": "r"},
        {"ml_repo": "repo-"},
        {"version": 0},
        {"version_alias": "1.0"},
        {"version_alias": "v1-"},
        {"version_alias": "v" + "1" * 128},
        {"description": "d" * 513},
        {"metadata": None},
        {"metadata": "not an object"},
        {"step": -1},
        {"type": "dataset-version"},
        {"source": {"type": "truefoundry", "uri": "http://not-a-bucket/x"}},
        {"source": {"type": "external"}},
        {"source": {"type": "ftp"}},
        {"type": "model-version", "framework": {"type": "caffe"}},
        {"type": "model-version", "framework": {"type": "sklearn", "serialization_format": "npy"}},
        {
            "type": "model-version",
            "framework": {
                "type": "xgboost",
                "model_schema": {"infer_method_name": "predict_proba", "inputs": [], "outputs": []},
            },
        },
        {"type": "model-version", "framework": {"type": "transformers", "library_name": "jax"}},
        {"type": "model-version", "environment": {"python_version": "three"}},
        {
            "type": "agent-skill",
            "name": "claude-helper",
            "source": {"type": "inline", "skill_md": "---\nname: a\ndescription: b\n---\n"},
        },
        {
            "type": "agent-skill",
            "name": "Upper",
            "source": {"type": "inline", "skill_md": "---\nname: a\ndescription: b\n---\n"},
        },
        {"type": "agent-skill", "name": "ok-skill", "source": {"type": "inline", "skill_md": ""}},
        {
            "type": "agent-skill",
            "name": "ok-skill",
            "source": {"type": "inline", "skill_md": "---\nname: ok-skill\n---\nno description"},
        },
        {
            "type": "agent-skill",
            "name": "ok-skill",
            "source": {"type": "blob-storage", "description": "", "uri": "s3://x"},
        },
    ],
)
async def test_stage_validation(ml: Ml, changes: dict[str, Any]) -> None:
    response = await stage_status(ml, **changes)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize(
    "framework",
    [
        {
            "type": "transformers",
            "library_name": "sentence-transformers",
            "pipeline_tag": "feature-extraction",
            "base_model": "bert-base-uncased",
        },
        {"type": "tensorflow"},
        {"type": "pytorch"},
        {"type": "keras"},
        {"type": "lightgbm"},
        {"type": "fastai"},
        {"type": "h2o"},
        {"type": "onnx"},
        {"type": "spacy"},
        {"type": "statsmodels"},
        {"type": "gluon"},
        {"type": "paddle"},
        {
            "type": "sklearn",
            "model_filepath": "m.pkl",
            "serialization_format": "pickle",
            "model_schema": {
                "infer_method_name": "predict_proba",
                "inputs": [{"name": "x"}],
                "outputs": [{"name": "y"}],
            },
        },
        {
            "type": "xgboost",
            "serialization_format": "json",
            "model_filepath": "m.json",
            "model_schema": {"infer_method_name": "predict", "inputs": [], "outputs": []},
        },
    ],
)
async def test_every_framework_stages(ml: Ml, framework: dict[str, Any]) -> None:
    response = await stage_status(
        ml,
        type="model-version",
        name=f"m-{framework['type']}",
        framework=framework,
        environment={"python_version": "3.11.4", "pip_packages": ["numpy==2.0"]},
    )
    assert response.status_code == 200, response.text


async def test_local_and_external_sources_are_not_staged(ml: Ml) -> None:
    local = await stage_status(ml, source={"type": "local", "paths": [{"src": "/tmp/x"}]})
    assert local.status_code == 422 and "truefoundry" in local.json()["message"]
    external = await stage_status(ml, source={"type": "external", "uri": "s3://b/k"})
    assert external.status_code == 422


async def test_nulls_are_absent(ml: Ml) -> None:
    response = await stage_status(ml, description=None, run_id=None, version_alias=None, step=None)
    assert response.status_code == 200, response.text


async def test_apply_rules(ml: Ml) -> None:
    staged = await ml.stage("applied")
    no_uri = await ml.client.put(
        f"{SVC}/artifact-versions",
        headers=ml.auth,
        json={"manifest": {**BASE_MANIFEST, "name": "applied"}},
    )
    assert no_uri.status_code == 422 and "storage_root" in no_uri.json()["message"]
    wrong_root = await ml.client.put(
        f"{SVC}/artifact-versions",
        headers=ml.auth,
        json={
            "manifest": {
                **BASE_MANIFEST,
                "name": "applied",
                "source": {
                    "type": "truefoundry",
                    "uri": staged["storage_root"].replace("s3://depot/", "s3://depot/9"),
                },
            }
        },
    )
    assert wrong_root.status_code == 404
    as_model = await ml.client.put(
        f"{SVC}/model-versions",
        headers=ml.auth,
        json={
            "manifest": {
                **BASE_MANIFEST,
                "name": "applied",
                "source": {"type": "truefoundry", "uri": staged["storage_root"]},
            }
        },
    )
    assert as_model.status_code == 422
    first = await ml.finalize("applied", staged["storage_root"])
    again = await ml.finalize("applied", staged["storage_root"])
    assert again["id"] == first["id"] and again["manifest"]["version"] == 1

    external = await ml.call(
        "PUT",
        "/artifact-versions",
        json={
            "manifest": {
                **BASE_MANIFEST,
                "name": "applied",
                "source": {"type": "external", "uri": "gs://b/x/"},
            }
        },
    )
    assert external["data"]["manifest"]["version"] == 2
    assert external["data"]["manifest"]["source"] == {"type": "external", "uri": "gs://b/x/"}
    files = await ml.call("POST", "/artifact-versions/files", json={"id": external["data"]["id"]})
    assert files["data"] == []


async def test_staged_and_failed_versions_are_never_listed(ml: Ml) -> None:
    staged = await ml.stage("hidden")
    failed = await ml.stage("hidden")
    await ml.call("POST", "/artifact-versions/mark-stage-failure", json={"id": failed["id"]})
    await ml.call("POST", "/artifact-versions/mark-stage-failure", json={"id": failed["id"]})
    listed = await ml.call(
        "GET", "/artifact-versions", params={"artifact_id": staged["artifact_id"]}
    )
    assert listed["data"] == [] and listed["pagination"]["total"] == 0
    await ml.call("GET", f"/artifact-versions/{staged['id']}", expect=404)
    finalize_failed = await ml.client.put(
        f"{SVC}/artifact-versions",
        headers=ml.auth,
        json={
            "manifest": {
                **BASE_MANIFEST,
                "name": "hidden",
                "source": {"type": "truefoundry", "uri": failed["storage_root"]},
            }
        },
    )
    assert finalize_failed.status_code == 422
    container = (await ml.call("GET", f"/artifacts/{staged['artifact_id']}"))["data"]
    assert container["latest_version"] is None
    nonempty = await ml.call("GET", "/artifacts", params={"include_empty_artifacts": "false"})
    assert nonempty["data"] == []


async def test_numbers_aliases_and_offset_paging(ml: Ml) -> None:
    ids = []
    for alias in ("v1", "v2", None):
        staged = await ml.stage("seq")
        extra = {"version_alias": alias} if alias else {}
        ids.append((await ml.finalize("seq", staged["storage_root"], **extra))["id"])
    other = await ml.stage("other")
    assert (await ml.finalize("other", other["storage_root"]))["manifest"]["version"] == 1

    pages, offset = [], 0
    while True:
        page = await ml.call(
            "GET", "/artifact-versions", params={"name": "seq", "limit": 2, "offset": offset}
        )
        assert page["pagination"]["total"] == 3
        if not page["data"]:
            break
        pages += [v["manifest"]["version"] for v in page["data"]]
        offset += len(page["data"])
    assert pages == [3, 2, 1]

    clash = await ml.client.put(
        f"{SVC}/artifact-versions",
        headers=ml.auth,
        json={
            "manifest": {
                **BASE_MANIFEST,
                "name": "seq",
                "version": 3,
                "version_alias": "v1",
                "source": {"type": "truefoundry"},
            }
        },
    )
    assert clash.status_code == 400 and clash.json()["statusCode"] == 400
    by_alias = await ml.call(
        "GET", "/artifact-versions", params={"fqn": "artifact:acme/tfy-repo/seq:v2"}
    )
    assert [v["id"] for v in by_alias["data"]] == [ids[1]]
    moved = await ml.finalize("seq", "s3://depot/x", version=2, version_alias="v2-final")
    assert moved["manifest"]["version_alias"] == "v2-final"
    assert (
        await ml.call("GET", "/artifact-versions", params={"fqn": "artifact:acme/tfy-repo/seq:v2"})
    )["data"] == []


async def test_fqn_lookups(ml: Ml) -> None:
    staged = await ml.stage("named")
    version = await ml.finalize("named", staged["storage_root"])
    for fqn in (
        "artifact:acme/tfy-repo/named:1",
        "artifact:acme/tfy-repo/named:latest",
        "artifact:acme/tfy-repo/named",
    ):
        found = await ml.call("GET", "/artifact-versions", params={"fqn": fqn, "limit": 1})
        assert [v["id"] for v in found["data"]] == [version["id"]], fqn
    for fqn in (
        "model:acme/tfy-repo/named:1",
        "artifact:acme/tfy-repo/named:2",
        "artifact:globex/tfy-repo/named:1",
        "artifact:acme/nope/named:1",
    ):
        found = await ml.call("GET", "/artifact-versions", params={"fqn": fqn})
        assert found["data"] == [], fqn
    bad = await ml.client.get(
        f"{SVC}/artifact-versions", params={"fqn": "not an fqn"}, headers=ml.auth
    )
    assert bad.status_code == 422
    containers = await ml.call("GET", "/artifacts", params={"fqn": "artifact:acme/tfy-repo/named"})
    assert [c["name"] for c in containers["data"]] == ["named"]


async def test_tags(ml: Ml) -> None:
    first = await ml.finalize("tagged", (await ml.stage("tagged"))["storage_root"])
    second = await ml.finalize("tagged", (await ml.stage("tagged"))["storage_root"])
    await ml.call(
        "PUT",
        "/artifact-versions/tags",
        json={"artifact_version_id": first["id"], "tags": ["prod", "reviewed"], "force": False},
    )
    clash = await ml.client.put(
        f"{SVC}/artifact-versions/tags",
        headers=ml.auth,
        json={"artifact_version_id": second["id"], "tags": ["prod"], "force": False},
    )
    assert clash.status_code == 400
    await ml.call(
        "PUT",
        "/artifact-versions/tags",
        json={"artifact_version_id": second["id"], "tags": ["prod"], "force": True},
    )
    assert (await ml.call("GET", f"/artifact-versions/{first['id']}"))["data"]["tags"] == [
        "reviewed"
    ]
    assert (await ml.call("GET", f"/artifact-versions/{second['id']}"))["data"]["tags"] == ["prod"]


async def test_both_prefixes_serve_the_same_api(client: httpx.AsyncClient, world: World) -> None:
    svc = Ml(client, world, prefix="/api/svc/v1")
    ml = Ml(client, world, prefix="/api/ml/v1")
    repo = await ml.repo()
    assert (await svc.call("GET", f"/ml-repos/{repo['id']}"))["data"]["manifest"]["name"] == (
        "tfy-repo"
    )
    staged = await ml.stage("prefixed")
    urls = (
        await ml.call(
            "POST",
            "/artifact-versions/signed-urls",
            json={"id": staged["id"], "paths": ["f.txt"], "operation": "WRITE"},
        )
    )["data"]
    assert urls[0]["signed_url"].startswith("http://depot.test/api/ml/v1/signed/")


async def test_ml_repos(ml: Ml, client: httpx.AsyncClient, world: World) -> None:
    await ml.repo("second-repo")
    exact = await ml.call("GET", "/ml-repos", params={"name": "tfy-repo", "limit": 1})
    assert [r["manifest"]["name"] for r in exact["data"]] == ["tfy-repo"]
    assert (await ml.call("GET", "/ml-repos", params={"name": "tfy"}))["data"] == []
    updated = await ml.call(
        "PUT",
        "/ml-repos",
        json={
            "manifest": {
                "type": "ml-repo",
                "name": "tfy-repo",
                "description": "changed",
                "storage_integration_fqn": "depot:default",
            }
        },
    )
    assert updated["data"]["manifest"]["description"] == "changed"
    bob = Ml(client, world, who="bob")  # viewer of acme
    # Every space of the tenant is an ML repo, whatever surface made it.
    assert [r["manifest"]["name"] for r in (await bob.call("GET", "/ml-repos"))["data"]] == [
        "ml",
        "web",
        "tfy-repo",
        "second-repo",
    ]
    denied = await client.put(
        f"{SVC}/ml-repos",
        headers=world.auth("bob"),
        json={"manifest": {"type": "ml-repo", "name": "bobs", "storage_integration_fqn": "x"}},
    )
    assert denied.status_code == 403
    unknown = await ml.client.put(
        f"{SVC}/ml-repos",
        headers=ml.auth,
        json={
            "manifest": {
                "type": "ml-repo",
                "name": "collab",
                "storage_integration_fqn": "x",
                "collaborators": [
                    {"subject": "user:nobody@example.com", "role_id": "mlf-project-admin"}
                ],
            }
        },
    )
    assert unknown.status_code == 422
    shared = await ml.call(
        "PUT",
        "/ml-repos",
        json={
            "manifest": {
                "type": "ml-repo",
                "name": "shared",
                "storage_integration_fqn": "x",
                "collaborators": [
                    {"subject": "user:dave@users.depot.invalid", "role_id": "mlf-project-editor"}
                ],
            }
        },
    )
    dave = Ml(client, world, who="dave")
    assert (await dave.call("GET", f"/ml-repos/{shared['data']['id']}"))["data"]
    second = (await ml.call("GET", "/ml-repos", params={"name": "second-repo"}))["data"][0]
    await ml.call("DELETE", f"/ml-repos/{second['id']}")
    await ml.call("GET", f"/ml-repos/{second['id']}", expect=404)
    await ml.call("GET", f"/ml-repos/{'9' * 30}", expect=404)


async def test_permissions(ml: Ml, client: httpx.AsyncClient, world: World) -> None:
    staged = await ml.stage("guarded")
    version = await ml.finalize("guarded", staged["storage_root"])
    bob = Ml(client, world, who="bob")  # viewer
    assert (await bob.call("GET", f"/artifact-versions/{version['id']}"))["data"]
    denied = await client.post(
        f"{SVC}/artifact-versions/stage",
        headers=world.auth("bob"),
        json={"manifest": {**BASE_MANIFEST, "name": "nope"}},
    )
    assert denied.status_code == 403
    dave = await client.get(f"{SVC}/artifact-versions/{version['id']}", headers=world.auth("dave"))
    assert dave.status_code == 404
    anonymous = await client.get(f"{SVC}/artifact-versions/{version['id']}")
    assert anonymous.status_code == 401
    write_urls = await client.post(
        f"{SVC}/artifact-versions/signed-urls",
        headers=world.auth("bob"),
        json={"id": version["id"], "paths": ["x"], "operation": "WRITE"},
    )
    assert write_urls.status_code in (403, 422)


async def test_part_urls_check_signature_number_and_session(ml: Ml, services: Services) -> None:
    staged = await ml.stage("parts-checked")
    plan = await ml.multipart(staged["id"], "p.bin", 2)
    first = plan["part_signed_urls"][0]["signed_url"]
    upload_id = urlsplit(first).path.split("/")[-2]
    tampered = first.replace("signature=", "signature=0")
    assert (await ml.client.put(tampered, content=b"a" * 10)).status_code == 403
    assert services.uploads.get_upload(uuid.UUID(upload_id)).received_chunks == []

    def signed_part(session: str, number: int) -> str:
        resource = f"parts/{session}/{number}"
        query = services.signer().query("PUT", resource, expires_in=60)
        return f"{first.split('/signed/')[0]}/signed/{resource}?{query}"

    beyond = await ml.client.put(signed_part(upload_id, 3), content=b"c")
    assert beyond.status_code == 422 and "between 1 and 2" in beyond.text
    other = services.uploads.start_upload(
        space_id=None, created_by_id=None, free_parts=True, context={"surface": "native"}
    )
    assert (await ml.client.put(signed_part(str(other.id), 1), content=b"c")).status_code == 404
    assert services.uploads.get_upload(uuid.UUID(upload_id)).received_chunks == []
    assert services.uploads.get_upload(other.id).received_chunks == []
    assert (await ml.client.put(first, content=b"a" * 10)).status_code == 200
    assert services.uploads.get_upload(uuid.UUID(upload_id)).received_chunks == [0]


async def test_signed_urls_refuse_tampering_and_expiry(ml: Ml) -> None:
    staged = await ml.stage("signed")
    [entry] = (
        await ml.call(
            "POST",
            "/artifact-versions/signed-urls",
            json={"id": staged["id"], "paths": ["f.txt"], "operation": "WRITE"},
        )
    )["data"]
    url = entry["signed_url"]
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert set(query) == {"expires", "key", "signature"}

    def with_query(**changes: str) -> str:
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**query, **changes})}"

    assert (await ml.client.put(with_query(signature="0" * 64), content=b"x")).status_code == 403
    assert (
        await ml.client.put(with_query(expires=str(int(time.time()) + 99999)), content=b"x")
    ).status_code == 403
    assert (await ml.client.get(url)).status_code in (403, 404, 405)  # a PUT URL, not a GET one
    assert (await ml.client.put(url.split("?")[0], content=b"x")).status_code == 403
    expired_query = dict(query)
    expired = await ml.client.put(
        f"{parts.scheme}://{parts.netloc}{parts.path}?"
        f"{urlencode({**expired_query, 'expires': '1'})}",
        content=b"x",
    )
    assert expired.status_code == 403
    ok = await ml.client.put(url, content=b"content")
    assert ok.status_code == 200 and ok.headers["etag"]
    finalized = await ml.finalize("signed", staged["storage_root"])
    late = await ml.client.put(url, content=b"too late")
    assert late.status_code == 422 and finalized["id"] == staged["id"]


async def test_multipart_errors(ml: Ml) -> None:
    staged = await ml.stage("parts")
    plan = await ml.multipart(staged["id"], "p.bin", 2)
    one = await ml.client.put(plan["part_signed_urls"][0]["signed_url"], content=b"a" * 10)
    finalize = plan["finalize_signed_url"]["signed_url"]
    missing = (
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        f"<ETag>{one.headers['etag']}</ETag></Part></CompleteMultipartUpload>"
    )
    assert (await ml.client.post(finalize, content=missing)).status_code == 422
    await ml.client.put(plan["part_signed_urls"][1]["signed_url"], content=b"b" * 3)
    wrong = missing.replace(
        "</CompleteMultipartUpload>",
        '<Part><PartNumber>2</PartNumber><ETag>"nope"</ETag></Part></CompleteMultipartUpload>',
    )
    assert (await ml.client.post(finalize, content=wrong)).status_code == 422
    assert (await ml.client.post(finalize, content=b"<not xml")).status_code == 422
