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
    raise ValueError(f"storage backend {url.scheme!r} is not available yet")
