"""Blobs in any S3-compatible store (AWS S3, MinIO, Ceph, SeaweedFS, GCS's S3 endpoint).

Keys follow :mod:`depot.blobs.layout` under ``bucket/prefix``. An upload session is an
S3 multipart upload whose id is the session's storage token, so any server replica can
add a part and any can finish. Multipart uploads cannot be read before they are
completed, so :meth:`S3BlobStore.assemble_staging` completes them into a staged object
that is read back (if the digest needs it) and then copied to its content address.
botocore errors are translated here; nothing above this module sees one.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from depot.blobs import layout
from depot.blobs.meter import Meter, verify
from depot.blobs.store import BLOCK_SIZE, BlobInfo, StagedPart, StagingInfo, check_sha256
from depot.errors import Invalid, NotFound, RangeNotSatisfiable, Unavailable

__all__ = ["S3BlobStore"]

# Parts of single-shot puts; S3 wants at least 5 MiB for every part but the last.
_PUT_PART = 16 * 1024 * 1024
# A part is spooled to memory up to this size, to disk beyond: S3 needs its length.
_SPOOL_IN_MEMORY = 16 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


def _unavailable(exc: Exception, what: str) -> Unavailable:
    return Unavailable(f"object store error while {what}: {exc}")


class S3BlobStore:
    """Content-addressed blobs in one bucket, under one key prefix.

    Args:
        bucket: the bucket (it must exist).
        prefix: a key prefix, without leading or trailing slash ("" for none).
        endpoint_url: an S3-compatible endpoint; ``None`` for AWS.
        redirect_downloads: hand out pre-signed GET URLs (307s) rather than letting
            Depot stream the bytes itself.
        response_headers: have pre-signed GETs set the file's Content-Type and
            Content-Disposition (``response-*`` parameters); some S3-compatible stores,
            SeaweedFS among them, refuse to sign these.
    """

    backend = "s3"
    reads_parts_early = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        redirect_downloads: bool = True,
        response_headers: bool = True,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.redirect_downloads = redirect_downloads
        self.response_headers = response_headers
        config = Config(
            s3={"addressing_style": "path"} if endpoint_url else {},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            # Checksums that need the body read twice buy nothing here: Depot hashes it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            config=config,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _blob_key(self, sha256: str) -> str:
        return self._key(layout.blob_key(check_sha256(sha256)))

    def _staged_key(self, upload_id: str) -> str:
        return self._key(layout.upload_data_key(upload_id))

    # -- blobs --------------------------------------------------------------------------

    def uri(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{self._blob_key(sha256)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise _unavailable(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"reading {key}") from exc
        return head

    def exists(self, sha256: str) -> bool:
        return self._head(self._blob_key(sha256)) is not None

    def stat(self, sha256: str) -> BlobInfo:
        head = self._head(self._blob_key(sha256))
        if head is None:
            raise NotFound(f"blob {sha256} is not stored")
        return BlobInfo(sha256.lower(), int(head["ContentLength"]), head.get("LastModified"))

    def open(self, sha256: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        size = self.stat(sha256).size
        if offset < 0 or (offset >= size and not (offset == 0 and size == 0)):
            raise RangeNotSatisfiable(f"offset {offset} is outside the blob", size=size)
        remaining = size - offset if length is None else min(length, size - offset)
        return self._read(self._blob_key(sha256), offset, remaining)

    def _read(self, key: str, offset: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            body = response["Body"]
            try:
                yield from body.iter_chunks(BLOCK_SIZE)
            finally:
                body.close()
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"{key} is not stored") from None
            raise _unavailable(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"reading {key}") from exc

    def put(
        self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None
    ) -> BlobInfo:
        expected = check_sha256(sha256) if sha256 is not None else None
        meter = Meter(chunks, hasher=hashlib.sha256(), limit=size)
        if expected is not None and self.exists(expected):
            meter.drain()  # already stored: check the bytes, send nothing
            verify(
                sha256=expected, size=size, actual_sha256=meter.hexdigest(), actual_size=meter.size
            )
            return self.stat(expected)
        upload_id = str(uuid.uuid4())
        token = self.start_staging(upload_id)
        try:
            parts = []
            for index, piece in enumerate(_pieces(meter, _PUT_PART)):
                parts.append(self.write_part(upload_id, token, index, [piece]))
            if not parts:
                parts.append(self.write_part(upload_id, token, 0, []))
            digest = meter.hexdigest()
            verify(sha256=expected, size=size, actual_sha256=digest, actual_size=meter.size)
            self.assemble_staging(upload_id, token, parts)
            return self.commit_staging(upload_id, token, parts, digest)
        finally:
            self.abort_staging(upload_id, token)

    def delete(self, sha256: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._blob_key(sha256))
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, f"deleting blob {sha256}") from exc

    def presigned_url(
        self,
        sha256: str,
        *,
        expires_in: int,
        file_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        if not self.redirect_downloads:
            return None
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._blob_key(sha256)}
        if file_name and self.response_headers:
            params["ResponseContentDisposition"] = (
                f"attachment; filename*=utf-8''{quote(file_name)}"
            )
        if content_type and self.response_headers:
            params["ResponseContentType"] = content_type
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return url

    def local_path(self, sha256: str) -> Path | None:
        return None

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                yield from page.get("Contents", [])
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, f"listing {prefix}") from exc

    def iter_blobs(self) -> Iterator[BlobInfo]:
        strip = len(self._key(""))
        for item in self._list(layout.BLOBS_PREFIX):
            sha256 = layout.sha256_from_blob_key(item["Key"][strip:])
            if sha256 is not None:
                yield BlobInfo(sha256, int(item["Size"]), item.get("LastModified"))

    # -- staging ------------------------------------------------------------------------

    def start_staging(self, upload_id: str) -> str:
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._staged_key(upload_id)
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, "starting a multipart upload") from exc
        return str(created["UploadId"])

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
        # S3 needs a part's length up front: spool it (memory first, then disk).
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            for block in chunks:
                spool.write(block)
                size += len(block)
            spool.seek(0)
            try:
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=self._staged_key(upload_id),
                    UploadId=token,
                    PartNumber=index + 1,
                    Body=spool,
                    ContentLength=size,
                )
            except ClientError as exc:
                if _missing(exc):
                    raise NotFound(f"upload {upload_id} has no staging area") from None
                raise _unavailable(exc, f"storing part {index} of upload {upload_id}") from exc
            except BotoCoreError as exc:
                raise _unavailable(exc, f"storing part {index} of upload {upload_id}") from exc
        return StagedPart(
            index=index, size=size, etag=str(response["ETag"]).strip('"'), offset=offset
        )

    def assemble_staging(self, upload_id: str, token: str, parts: Sequence[StagedPart]) -> None:
        key = self._staged_key(upload_id)
        ordered = sorted(parts, key=lambda part: part.index)
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=token,
                MultipartUpload={
                    "Parts": [{"PartNumber": part.index + 1, "ETag": part.etag} for part in ordered]
                },
            )
        except ClientError as exc:
            # Completed already (a retried completion): the staged object is there.
            if _missing(exc) and self._head(key) is not None:
                return
            if exc.response.get("Error", {}).get("Code") == "EntityTooSmall":
                raise Invalid(
                    "every part but the last must be at least 5 MiB on this object store"
                ) from None
            raise _unavailable(exc, f"assembling upload {upload_id}") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"assembling upload {upload_id}") from exc

    def read_parts(
        self, upload_id: str, token: str, parts: Sequence[StagedPart]
    ) -> Iterator[bytes]:
        # After assembly, each part's offset is its place in the staged object.
        for part in parts:
            if part.offset is None:
                raise ValueError("S3 reads staged parts by their offset in the assembled object")
            yield from self._read(self._staged_key(upload_id), part.offset, part.size)

    def commit_staging(
        self, upload_id: str, token: str, parts: Sequence[StagedPart], sha256: str
    ) -> BlobInfo:
        target = self._blob_key(sha256)
        total = sum(part.size for part in parts)
        if self._head(target) is None:
            try:
                # A managed copy: server side, in parts when the object is large.
                self.client.copy(
                    {"Bucket": self.bucket, "Key": self._staged_key(upload_id)}, self.bucket, target
                )
            except ClientError as exc:
                if _missing(exc):
                    raise NotFound(f"upload {upload_id} is missing staged bytes") from None
                raise _unavailable(exc, f"committing blob {sha256}") from exc
            except BotoCoreError as exc:
                raise _unavailable(exc, f"committing blob {sha256}") from exc
        self.abort_staging(upload_id, token)
        return BlobInfo(sha256, total, datetime.now(UTC))

    def abort_staging(self, upload_id: str, token: str) -> None:
        key = self._staged_key(upload_id)
        try:
            if token:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=token)
                except ClientError as exc:
                    if not _missing(exc):
                        raise
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, f"dropping upload {upload_id}") from exc

    def iter_staging(self) -> Iterator[StagingInfo]:
        strip = len(self._key(layout.UPLOADS_PREFIX))
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._key(layout.UPLOADS_PREFIX)
            )
            found = [
                (upload["Key"], upload.get("Initiated"), str(upload["UploadId"]))
                for page in pages
                for upload in page.get("Uploads", [])
            ]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, "listing multipart uploads") from exc
        found += [
            (item["Key"], item.get("LastModified"), "")
            for item in self._list(layout.UPLOADS_PREFIX)
        ]
        for key, when, token in found:
            try:
                upload_id = str(uuid.UUID(key[strip:].split("/", 1)[0]))
            except ValueError:
                continue
            yield StagingInfo(upload_id, when or datetime.now(UTC), token)


def _pieces(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of ``size`` bytes (the last may be shorter)."""
    buffer: list[bytes] = []
    held = 0
    for block in blocks:
        buffer.append(block)
        held += len(block)
        if held >= size:
            joined = b"".join(buffer)
            for start in range(0, len(joined) - len(joined) % size, size):
                yield joined[start : start + size]
            rest = joined[len(joined) - len(joined) % size :]
            buffer, held = ([rest], len(rest)) if rest else ([], 0)
    if held:
        yield b"".join(buffer)
