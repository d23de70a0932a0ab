"""The Model Repository API against a real `depot serve`, as a new user would drive it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import depot, serving

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_a_new_user_uploads_and_downloads_a_model(tmp_path: Path, server: str) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "DEPOT_UPLOAD_CHUNK_SIZE": str(5 * 1024 * 1024)}
    with serving(data_dir, "--server", server, env=env) as (url, _log):
        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        depot("admin", "create-space", "acme", "ml-platform", "--data-dir", str(data_dir))
        token = depot("admin", "create-user", "maria", "--data-dir", str(data_dir)).split()[-1]
        depot(
            "admin",
            "grant",
            "maria",
            "editor",
            "space:acme/ml-platform",
            "--data-dir",
            str(data_dir),
        )
        api = httpx.Client(
            base_url=f"{url}/api/v1.0", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

        model = api.post(
            "/catalog/spaces/ml-platform/model-repository/models",
            json={"name": "Churn Prediction Model", "model_family": "traditional_ml"},
        )
        assert model.status_code == 201, model.text
        product = model.json()["id"]

        data = os.urandom(12 * 1024 * 1024 + 321)
        digest = hashlib.sha256(data).hexdigest()
        session = api.post(
            f"/catalog/products/{product}/model-artifacts/uploads",
            json={
                "file_name": "churn.onnx",
                "content_type": "application/octet-stream",
                "total_size_bytes": len(data),
                "sha256": digest,
                "is_current": True,
            },
        ).json()
        size = session["chunk_size_bytes"]
        for index in (2, 0, 1):
            chunk = data[index * size : (index + 1) * size]
            response = api.put(
                f"/catalog/products/{product}/model-artifacts/uploads/{session['id']}"
                f"/chunks/{index}",
                content=chunk,
                headers={"content-type": "application/octet-stream"},
            )
            assert response.status_code == 200, response.text
        done = api.post(
            f"/catalog/products/{product}/model-artifacts/uploads/{session['id']}/complete", json={}
        )
        assert done.status_code == 200, done.text
        artifact = done.json()
        assert artifact["sha256"] == digest and artifact["size_bytes"] == len(data)

        download = api.get(f"/catalog/products/{product}/model-artifacts/{artifact['id']}/download")
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == digest
        assert download.headers["etag"] == f'"{digest}"'
        ranged = api.get(
            f"/catalog/products/{product}/model-artifacts/{artifact['id']}/download",
            headers={"range": "bytes=100-199"},
        )
        assert ranged.status_code == 206 and ranged.content == data[100:200]

        listing = api.get("/catalog/spaces/ml-platform/model-repository/models")
        assert listing.headers["x-total-count"] == "1"
        assert listing.json()[0]["current_artifact_sha256"] == digest
        assert (
            api.delete(f"/catalog/products/{product}/model-artifacts/{artifact['id']}").status_code
            == 204
        )
