"""Who the caller is, and the side requests stock clients make, with the real client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from tests.api.huggingface.conftest import hf_env
from tests.conftest import World

HF_BIN = Path(sys.executable).with_name("hf")


def test_whoami_names_the_tokens_user_and_orgs(hf_endpoint: str, world: World) -> None:
    me = HfApi(endpoint=hf_endpoint, token=world.tokens["bob"]).whoami()
    assert me["name"] == "bob" and me["type"] == "user"
    assert [org["name"] for org in me["orgs"]] == ["acme"]
    assert me["auth"]["accessToken"]["role"] == "write"


def test_whoami_refuses_a_bad_token(hf_endpoint: str, world: World) -> None:
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(endpoint=hf_endpoint, token=world.tokens["bob"] + "x").whoami()
    assert caught.value.response.status_code == 401


def test_hf_auth_whoami(hf_endpoint: str, world: World, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(HF_BIN), "auth", "whoami"],
        env=hf_env(hf_endpoint, world.tokens["alice"], tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alice" in result.stdout


def test_agent_harnesses_answer_anonymously(hf_endpoint: str) -> None:
    response = httpx.get(f"{hf_endpoint}/api/agent-harnesses")
    assert response.status_code == 200
    assert response.json() == {"standardEnvVars": [], "harnesses": {}}


def test_xet_tokens_are_refused_with_the_way_out(hf_endpoint: str, world: World) -> None:
    response = httpx.get(
        f"{hf_endpoint}/api/models/ml/tiny/xet-write-token/main",
        headers={"Authorization": f"Bearer {world.tokens['alice']}"},
    )
    assert response.status_code == 501
    assert "HF_HUB_DISABLE_XET=1" in response.headers["X-Error-Message"]
    assert "HF_HUB_DISABLE_XET=1" in response.json()["error"]


def test_a_version_made_with_the_ml_api_downloads_here(
    server_url: str, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    # The ML API's own flow (as the truefoundry clients run it): repo, stage, signed PUT,
    # finalize. The version is then an ordinary Hub repo `tfy-repo/weights`.
    auth = {"Authorization": f"Bearer {world.tokens['carol']}"}
    svc = f"{server_url}/api/svc/v1"
    data = b"ml api bytes" * 100

    def call(method: str, path: str, body: object) -> dict[str, object]:
        response = httpx.request(method, f"{svc}{path}", json=body, headers=auth)
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result

    repo = {"type": "ml-repo", "name": "tfy-repo", "storage_integration_fqn": "depot:default"}
    call("PUT", "/ml-repos", {"manifest": repo})
    manifest = {
        "name": "weights",
        "metadata": {},
        "ml_repo": "tfy-repo",
        "type": "artifact-version",
        "source": {"type": "truefoundry"},
    }
    staged = call("POST", "/artifact-versions/stage", {"manifest": manifest})
    [url] = call(
        "POST",
        "/artifact-versions/signed-urls",
        {"id": staged["id"], "paths": ["model.bin"], "operation": "WRITE"},
    )["data"]  # type: ignore[misc]
    assert httpx.put(url["signed_url"], content=data).status_code == 200
    source = {"type": "truefoundry", "uri": staged["storage_root"]}
    call("PUT", "/artifact-versions", {"manifest": manifest | {"source": source}})

    local = hf_hub_download(
        "tfy-repo/weights",
        "model.bin",
        endpoint=hf_endpoint,
        token=world.tokens["bob"],
        cache_dir=tmp_path / "hf",
    )
    assert Path(local).read_bytes() == data
