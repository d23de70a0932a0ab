"""The one interface every blob backend satisfies.

Blobs are addressed by the lowercase hex SHA-256 of their bytes. Upload
sessions stage parts under an upload id and commit them to a content address
once the digest is known. Backends translate their native errors into
:mod:`depot.errors` at the edge; nothing above this package sees an ``OSError``
or a botocore error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from depot.errors import Invalid

__all__ = [
    "BLOCK_SIZE",
    "BlobInfo",
    "BlobStore",
    "StagedPart",
    "StagingInfo",
    "check_sha256",
]

# Bytes moved per read or write. Large enough that per-call overhead vanishes,
# small enough that memory per transfer stays bounded.
BLOCK_SIZE = 1024 * 1024

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_sha256(value: str, *, loc: Sequence[str | int] = ()) -> str:
    """Return ``value`` lowercased if it is a hex SHA-256, else raise :class:`Invalid`."""
    lowered = value.lower()
    if not _SHA256.match(lowered):
        raise Invalid("sha256 must be 64 hexadecimal characters", loc=loc)
    return lowered


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its address, its length and when it was written (if known)."""

    sha256: str
    size: int
    modified_at: datetime | None = None


@dataclass(frozen=True)
class StagedPart:
    """One staged part of an upload.

    ``offset`` is the part's position in the final blob when the session has a
    fixed chunk size (the backend may then write all parts into one place);
    ``None`` means the part stands alone until commit.
    """

    index: int
    size: int
    etag: str
    offset: int | None = None


@dataclass(frozen=True)
class StagingInfo:
    """Bytes staged for an upload id, as found by a scan of the store.

    ``token`` is the backend's handle for them when it has one (an S3 multipart
    upload id), so that bytes no session knows about can still be dropped.
    """

    upload_id: str
    modified_at: datetime
    token: str = ""


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed blob storage with staged multi-part uploads."""

    backend: str
    """Short name of the backend: ``file``, ``memory`` or ``s3``."""

    reads_parts_early: bool
    """True if staged parts can be read back before :meth:`assemble_staging`.

    Local disks can; S3 cannot read the parts of an unfinished multipart upload, so
    the upload engine hashes early parts only after assembly there."""

    def uri(self, sha256: str) -> str:
        """Where the blob lives, as a URI for people and metadata (``file:///...``, ``s3://...``)."""
        ...

    def exists(self, sha256: str) -> bool:
        """True if the blob is stored."""
        ...

    def stat(self, sha256: str) -> BlobInfo:
        """Size of a stored blob.

        Raises:
            NotFound: the blob is not stored.
        """
        ...

    def open(self, sha256: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the blob's bytes from ``offset``, at most ``length`` of them, in bounded blocks.

        The iterator holds a file or connection open until it is exhausted or closed.

        Raises:
            NotFound: the blob is not stored.
            RangeNotSatisfiable: ``offset`` is past the end (an empty blob allows offset 0).
        """
        ...

    def put(
        self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None
    ) -> BlobInfo:
        """Store a stream, hashing it on the way; a no-op if the content is already stored.

        Args:
            chunks: the bytes, in blocks of any size.
            sha256: the digest the bytes must have, if the caller knows it.
            size: the length the bytes must have, if the caller knows it.

        Raises:
            DigestMismatch: the bytes do not hash to ``sha256``; nothing is stored.
            SizeMismatch: the bytes are not ``size`` long; nothing is stored.
        """
        ...

    def delete(self, sha256: str) -> None:
        """Remove the blob. Deleting a blob that is not stored does nothing."""
        ...

    def presigned_url(
        self,
        sha256: str,
        *,
        expires_in: int,
        file_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A URL that serves the blob to anyone holding it until it expires.

        Returns ``None`` when the backend has no such URLs: the caller then
        serves the bytes itself (via :meth:`local_path` or :meth:`open`).
        """
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob's path on local disk, for ``sendfile``; ``None`` if it is not on local disk."""
        ...

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order (used by garbage collection)."""
        ...

    # -- staging, for upload sessions -------------------------------------------------

    def start_staging(self, upload_id: str) -> str:
        """Prepare to receive parts for ``upload_id``; returns a token to pass back later.

        The token is the backend's handle (an S3 multipart upload id); it is
        stored with the session so any server replica can continue the upload.
        """
        ...

    def write_part(
        self,
        upload_id: str,
        token: str,
        index: int,
        chunks: Iterable[bytes],
        *,
        offset: int | None = None,
        read_back_soon: bool = False,
        size: int | None = None,
    ) -> StagedPart:
        """Stage one part, streaming ``chunks`` to storage and making it durable.

        Writing the same index again replaces the part. If ``chunks`` raises,
        the exception propagates and the part counts as not written.

        Args:
            offset: the part's position in the final blob, when the session
                has a fixed chunk size; ``None`` for free-sized parts.
            read_back_soon: the caller will read the part back before the upload
                completes (to hash it); a backend that can keep such bytes at hand
                (the local store, in the page cache) does.
            size: the part's size, when the caller knows it before the bytes come.
        """
        ...

    def assemble_staging(self, upload_id: str, token: str, parts: Sequence[StagedPart]) -> None:
        """Join the staged parts (in index order) into one staged object, readable in full.

        Called once every part is there, before the bytes are read back for their
        digest and committed. Backends that read parts in place do nothing. Assembling
        twice does nothing.
        """
        ...

    def read_parts(
        self, upload_id: str, token: str, parts: Sequence[StagedPart]
    ) -> Iterator[bytes]:
        """Stream the staged bytes of ``parts``, in the order given.

        Where :attr:`reads_parts_early` is false, only after :meth:`assemble_staging`,
        and each part's ``offset`` is its position in the assembled object.

        Raises:
            NotFound: a part is not staged.
        """
        ...

    def commit_staging(
        self, upload_id: str, token: str, parts: Sequence[StagedPart], sha256: str
    ) -> BlobInfo:
        """Join ``parts`` (in index order) into the blob ``sha256`` and drop the staging area.

        Parts written at an offset and parts staged on their own may be mixed. The
        caller has checked the digest. If the blob is already stored the
        staged bytes are discarded and the existing blob is kept.
        """
        ...

    def abort_staging(self, upload_id: str, token: str) -> None:
        """Drop everything staged for ``upload_id``. Aborting twice does nothing."""
        ...

    def iter_staging(self) -> Iterator[StagingInfo]:
        """Upload ids that still have staged bytes (used to clean up after crashes)."""
        ...
