"""Where everything lives inside a blob store, written down once.

::

    <root>/
      blobs/sha256/<h0h1>/<h2h3>/<sha256>     a stored blob, named by its digest
      uploads/<upload-id>/data                 fixed-size chunks, each at its offset
      uploads/<upload-id>/part-<index>         parts staged on their own, one object each
      uploads/<upload-id>/joined               parts copied together when they could not
                                               be joined in place (local backend only)

A single-shot put stages under a fresh upload id of its own before its rename,
so one rule finds every byte left behind by a crash.

``root`` is the data directory for the local backend and ``bucket/prefix`` for
S3. Garbage collection only ever deletes under ``blobs/``; the upload sweeper
only under ``uploads/``. Keep docs/storage.md in step with this.
"""

from __future__ import annotations

import re
import uuid

__all__ = [
    "BLOBS_PREFIX",
    "UPLOADS_PREFIX",
    "blob_key",
    "sha256_from_blob_key",
    "upload_data_key",
    "upload_joined_key",
    "upload_part_key",
    "upload_prefix",
]

BLOBS_PREFIX = "blobs/sha256/"
UPLOADS_PREFIX = "uploads/"

_BLOB_KEY = re.compile(r"^blobs/sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


def blob_key(sha256: str) -> str:
    """Key of the blob with this (already validated) digest."""
    return f"{BLOBS_PREFIX}{sha256[0:2]}/{sha256[2:4]}/{sha256}"


def sha256_from_blob_key(key: str) -> str | None:
    """The digest a blob key names, or ``None`` if ``key`` is not a well-formed blob key."""
    match = _BLOB_KEY.match(key)
    if match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
        return None
    return match.group(3)


def upload_prefix(upload_id: str) -> str:
    """Folder (or key prefix) of everything staged for one upload."""
    return f"{UPLOADS_PREFIX}{uuid.UUID(upload_id)}/"


def upload_data_key(upload_id: str) -> str:
    """The single object that fixed-size chunks are written into."""
    return upload_prefix(upload_id) + "data"


def upload_part_key(upload_id: str, index: int) -> str:
    """The object holding one free-sized part."""
    if index < 0:
        raise ValueError("part index must not be negative")
    return upload_prefix(upload_id) + f"part-{index}"


def upload_joined_key(upload_id: str) -> str:
    """Where the local backend copies parts together when they cannot be joined in place."""
    return upload_prefix(upload_id) + "joined"
