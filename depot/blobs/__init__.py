"""Content-addressed blob storage: one Protocol, several backends."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from depot.blobs.store import BlobInfo, BlobStore, StagedPart, StagingInfo, check_sha256
from depot.settings import Settings

__all__ = [
    "BlobInfo",
    "BlobStore",
    "StagedPart",
    "StagingInfo",
    "check_sha256",
    "open_store",
]


def open_store(settings: Settings) -> BlobStore:
    """The blob store that ``settings.storage_url`` names."""
    url = urlparse(settings.effective_storage_url)
    if url.scheme == "file":
        from depot.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(unquote(url.path)))
    if url.scheme == "memory":
        from depot.blobs.memory import MemoryBlobStore

        return MemoryBlobStore()
    if url.scheme == "s3":
        from depot.blobs.s3 import S3BlobStore

        if not url.netloc:
            raise ValueError("storage_url must name a bucket: s3://bucket/prefix")
        return S3BlobStore(
            url.netloc,
            url.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.aws_access_key_id,
            secret_key=settings.aws_secret_access_key,
            region=settings.aws_region,
            redirect_downloads=settings.s3_downloads == "redirect",
            response_headers=settings.s3_response_headers,
        )
    raise ValueError(f"unknown storage backend {url.scheme!r}")
