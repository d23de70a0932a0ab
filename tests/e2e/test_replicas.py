"""Scale-out: PostgreSQL + SeaweedFS + two `depot serve` replicas, one of them killed mid-upload."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Replica, depot
from tests.e2e.test_serve import scratch_postgres_database
from tests.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CHUNK = 5 * 1024 * 1024


@pytest.fixture
def cluster_env(seaweedfs: SeaweedFS, s3_bucket: str) -> Iterator[dict[str, str]]:
    """The environment every replica and admin command of one cluster shares."""
    with scratch_postgres_database() as url:
        yield {
            **os.environ,
            "DEPOT_DATABASE_URL": url,
            "DEPOT_STORAGE_URL": f"s3://{s3_bucket}/cluster-{uuid.uuid4().hex[:8]}",
            "DEPOT_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
            "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
            "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
            "AWS_REGION": seaweedfs.region,
            "DEPOT_S3_RESPONSE_HEADERS": "false",  # SeaweedFS will not sign them
            "DEPOT_UPLOAD_CHUNK_SIZE": str(CHUNK),
        }


def test_two_replicas_share_an_upload_and_survive_a_crash(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    depot("db", "upgrade", env=cluster_env)
    first = Replica(tmp_path / "a", env=cluster_env)
    second = Replica(tmp_path / "b", env=cluster_env)
    restarted = None
    try:
        # Only the first replica to start made the admin; the other found it there.
        admin = (tmp_path / "a" / "admin.token").read_text().strip()
        assert not (tmp_path / "b" / "admin.token").exists()
        depot("admin", "create-org", "acme", "--data-dir", str(tmp_path / "a"), env=cluster_env)
        depot(
            "admin",
            "create-space",
            "acme",
            "ml",
            "--data-dir",
            str(tmp_path / "a"),
            env=cluster_env,
        )

        def api(replica: Replica) -> httpx.Client:
            return httpx.Client(
                base_url=f"{replica.url}/api/v1.0",
                timeout=60,
                headers={"Authorization": f"Bearer {admin}"},
            )

        product = (
            api(first)
            .post("/catalog/spaces/ml/model-repository/models", json={"name": "Shared"})
            .json()["id"]
        )
        data = os.urandom(4 * CHUNK + 12345)
        digest = hashlib.sha256(data).hexdigest()
        base = f"/catalog/products/{product}/model-artifacts/uploads"
        session = (
            api(second)
            .post(
                base,
                json={
                    "file_name": "model.bin",
                    "content_type": "application/octet-stream",
                    "total_size_bytes": len(data),
                    "sha256": digest,
                },
            )
            .json()
        )
        assert session["chunk_size_bytes"] == CHUNK

        def put(replica: Replica, index: int) -> None:
            response = api(replica).put(
                f"{base}/{session['id']}/chunks/{index}",
                content=data[index * CHUNK : (index + 1) * CHUNK],
                headers={"content-type": "application/octet-stream"},
            )
            assert response.status_code == 200, response.text

        # Chunks alternate between the replicas; then the first one crashes.
        put(first, 0)
        put(second, 1)
        put(first, 2)
        first.kill()
        put(second, 3)
        put(second, 4)
        done = api(second).post(f"{base}/{session['id']}/complete", json={})
        assert done.status_code == 200, done.text
        artifact = done.json()
        assert artifact["sha256"] == digest and artifact["storage_backend"] == "s3"

        # A replica restarted on the first one's data directory serves the download:
        # a redirect to the store, which hands out the bytes.
        restarted = Replica(tmp_path / "a", env=cluster_env)
        response = api(restarted).get(
            f"/catalog/products/{product}/model-artifacts/{artifact['id']}/download"
        )
        assert response.status_code == 307
        assert response.headers["location"].startswith(cluster_env["DEPOT_S3_ENDPOINT_URL"])
        fetched = httpx.get(response.headers["location"], timeout=60)
        assert hashlib.sha256(fetched.content).hexdigest() == digest
    finally:
        for replica in (first, second, restarted):
            if replica is not None:
                replica.stop()
