from __future__ import annotations

import uuid

import httpx
import pytest

from depot.blobs.s3 import S3BlobStore
from tests.blobs.conformance import BlobStoreConformance, sha
from tests.seaweedfs import SeaweedFS

pytestmark = pytest.mark.postgres  # runs with the scale-out configuration's services


def make_store(seaweedfs: SeaweedFS, bucket: str, **options: object) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        f"conformance-{uuid.uuid4().hex[:12]}",
        endpoint_url=seaweedfs.endpoint_url,
        access_key=seaweedfs.access_key,
        secret_key=seaweedfs.secret_key,
        region=seaweedfs.region,
        **options,
    )  # type: ignore[arg-type]


class TestS3BlobStore(BlobStoreConformance):
    part_size = 5 * 1024 * 1024

    @pytest.fixture
    def store(self, seaweedfs: SeaweedFS, s3_bucket: str) -> S3BlobStore:
        return make_store(seaweedfs, s3_bucket)


def test_presigned_urls_serve_the_blob(seaweedfs: SeaweedFS, s3_bucket: str) -> None:
    # SeaweedFS refuses to sign response-* parameters, so they stay off here.
    store = make_store(seaweedfs, s3_bucket, response_headers=False)
    digest = store.put([b"fetch me straight from the store"]).sha256
    url = store.presigned_url(
        digest, expires_in=60, file_name="note.txt", content_type="text/plain"
    )
    assert url is not None and url.startswith(seaweedfs.endpoint_url)
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"fetch me straight from the store"
    tampered = httpx.get(url.replace("Signature=", "Signature=0"))
    assert tampered.status_code == 403
    assert (
        make_store(seaweedfs, s3_bucket, redirect_downloads=False).presigned_url(
            digest, expires_in=60
        )
        is None
    )


def test_large_uploads_go_in_parts(seaweedfs: SeaweedFS, s3_bucket: str) -> None:
    store = make_store(seaweedfs, s3_bucket)
    block = bytes(range(256)) * 4096  # 1 MiB
    data = block * 37
    info = store.put(block for _ in range(37))
    assert info.sha256 == sha(data) and info.size == len(data)
    assert b"".join(store.open(info.sha256, offset=len(data) - 10)) == data[-10:]
    assert store.uri(info.sha256).startswith(f"s3://{s3_bucket}/")
