"""Moving bytes for ML API versions: signed URLs, single PUTs, S3-style multipart, file listing.

Signed URLs are served by Depot itself and authorised by an HMAC and an expiry in
their query, so the clients send no Authorization header. Every byte goes through
the upload engine into the blob store.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import posixpath
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.service import Principal
from depot.access.signing import Signer
from depot.catalog.models import File, Version, VersionStatus
from depot.catalog.service import add_file, check_path
from depot.db.base import parse_integer
from depot.db.engine import Database
from depot.errors import Invalid, NotFound
from depot.ml.versions import version_for_transfer
from depot.uploads.service import UploadService

__all__ = [
    "READ_URL_SECONDS",
    "FileEntry",
    "Multipart",
    "complete_multipart",
    "file_resource",
    "list_files",
    "readable_file",
    "receive_file",
    "receive_part",
    "signed_urls",
    "start_multipart",
]

SURFACE = "ml"
READ_URL_SECONDS = 6 * 3600
_MAX_FINALIZE_XML = 2 * 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory listing: a file or a directory."""

    path: str
    is_dir: bool
    size: int | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Multipart:
    """A multipart upload: where each part goes and where to finalize."""

    upload_id: uuid.UUID
    part_urls: list[str]
    finalize_url: str


def file_resource(version_id: str, path: str) -> str:
    """The signed resource of one file of a version."""
    return f"files/{version_id}/{path}"


def _url(base: str, resource: str, query: str) -> str:
    return f"{base}/signed/{quote(resource, safe='/')}?{query}"


def signed_urls(
    db: Session,
    principal: Principal,
    signer: Signer,
    base: str,
    version_id: str,
    paths: list[str],
    operation: str,
    *,
    write_seconds: int,
) -> list[tuple[str, str]]:
    """One signed URL per path, in the order given: PUT to write, GET to read.

    Raises:
        NotFound: no such version, or not visible.
        Forbidden: writing needs editor.
        Invalid: a path is not a valid relative path, or writing to a finalized version.
    """
    write = operation == "WRITE"
    version_for_transfer(db, principal, version_id, write=write)
    method = "PUT" if write else "GET"
    seconds = write_seconds if write else READ_URL_SECONDS
    urls = []
    for path in paths:
        resource = file_resource(version_id, check_path(path))
        urls.append(
            (path, _url(base, resource, signer.query(method, resource, expires_in=seconds)))
        )
    return urls


def _staged_version(db: Session, version_id: str) -> Version:
    try:
        version = db.get(Version, uuid.UUID(version_id))
    except ValueError:
        version = None
    if version is None:
        raise NotFound(f"version {version_id} not found")
    if version.status != VersionStatus.STAGED:
        raise Invalid("files can only be written to a staged version")
    return version


def receive_file(
    database: Database,
    uploads: UploadService,
    version_id: str,
    path: str,
    body: Iterable[bytes],
    *,
    size: int | None,
    content_type: str | None,
) -> str:
    """Store the body of a signed PUT as file ``path`` of a staged version; returns its sha256."""
    path = check_path(path)
    with database.read() as db:
        _staged_version(db, version_id)
    blob = uploads.upload_blob(body, size=size)
    with database.write() as db:
        version = _staged_version(db, version_id)
        add_file(db, version, path, blob.sha256, content_type=_content_type(path, content_type))
    return blob.sha256


def _content_type(path: str, given: str | None) -> str:
    if given and given not in ("application/x-www-form-urlencoded",):
        return given
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def readable_file(db: Session, version_id: str, path: str) -> File:
    """A file of a staged or finalized version, for a signed GET.

    Raises:
        NotFound: no such version or file.
    """
    try:
        version = db.get(Version, uuid.UUID(version_id))
    except ValueError:
        version = None
    if version is None or version.status == VersionStatus.FAILED:
        raise NotFound(f"version {version_id} not found")
    file = db.scalar(
        select(File).where(File.version_id == version.id, File.path == check_path(path))
    )
    if file is None:
        raise NotFound(f"file {path} not found")
    return file


def start_multipart(
    db: Session,
    principal: Principal,
    uploads: UploadService,
    signer: Signer,
    base: str,
    version_id: str,
    path: str,
    num_parts: int,
    *,
    write_seconds: int,
) -> Multipart:
    """Open an upload session for one large file of a staged version, S3 multipart style."""
    record = version_for_transfer(db, principal, version_id, write=True)
    path = check_path(path)
    view = uploads.start_upload(
        space_id=record.space.id,
        created_by_id=principal.user_id,
        free_parts=True,
        part_count=num_parts,
        context={
            "surface": SURFACE,
            "version_id": version_id,
            "path": path,
            "num_parts": num_parts,
        },
    )
    parts = []
    for number in range(1, num_parts + 1):
        resource = f"parts/{view.id}/{number}"
        parts.append(_url(base, resource, signer.query("PUT", resource, expires_in=write_seconds)))
    resource = f"complete/{view.id}"
    finalize = _url(base, resource, signer.query("POST", resource, expires_in=write_seconds))
    return Multipart(view.id, parts, finalize)


def _multipart_context(uploads: UploadService, upload_id: uuid.UUID) -> dict[str, Any]:
    return _check_surface(upload_id, uploads.get_context(upload_id))


def _check_surface(upload_id: uuid.UUID, context: dict[str, Any]) -> dict[str, Any]:
    if context.get("surface") != SURFACE:
        raise NotFound(f"multipart upload {upload_id} not found")
    return context


def receive_part(
    uploads: UploadService,
    upload_id: uuid.UUID,
    number: int,
    body: Iterable[bytes],
    *,
    size: int | None,
) -> str:
    """Store part ``number`` (1-based) of a multipart upload; returns its ETag."""

    def check(context: dict[str, Any]) -> None:
        # Read with the session in the service's one statement, not in a read of its own.
        _check_surface(upload_id, context)
        if not 1 <= number <= int(str(context["num_parts"])):
            raise Invalid(
                f"part number must be between 1 and {context['num_parts']}",
                loc=("path", "part_number"),
            )

    part = uploads.receive_part(
        upload_id, number - 1, body, content_length=size, check_context=check
    )
    return part.etag


def _parse_parts(xml: bytes) -> dict[int, str]:
    if len(xml) > _MAX_FINALIZE_XML:
        raise Invalid("CompleteMultipartUpload document is too large")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise Invalid(f"CompleteMultipartUpload is not valid XML: {exc}") from None
    parts: dict[int, str] = {}
    for part in root.iter():
        if part.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in part}
        number = fields.get("PartNumber", "")
        if not number.isdigit() or "ETag" not in fields:
            raise Invalid("each Part needs a PartNumber and an ETag")
        parts[int(number)] = fields["ETag"].strip('"')
    return parts


def complete_multipart(
    database: Database,
    uploads: UploadService,
    upload_id: uuid.UUID,
    xml: bytes,
) -> str:
    """Check the parts the client lists against those received, then commit the file.

    Raises:
        Invalid: a part is missing, unknown, or its ETag is not the one it was given.
    """
    context = _multipart_context(uploads, upload_id)
    listed = _parse_parts(xml)
    view = uploads.get_upload(upload_id)
    if view.status == "completed":
        return view.blob_sha256 or ""
    expected = int(str(context["num_parts"]))
    if sorted(listed) != list(range(1, expected + 1)):
        raise Invalid(f"CompleteMultipartUpload must list parts 1 to {expected} once each")
    for number, etag in listed.items():
        if view.etags.get(number - 1) != etag:
            raise Invalid(f"part {number} was not received with ETag {etag}")
    done = uploads.complete_upload(upload_id)
    with database.write() as db:
        version = _staged_version(db, str(context["version_id"]))
        path = str(context["path"])
        add_file(db, version, path, done.blob_sha256 or "", content_type=_content_type(path, None))
    return done.blob_sha256 or ""


def list_files(
    db: Session,
    principal: Principal,
    version_id: str,
    path: str | None,
    *,
    limit: int,
    page_token: str | None,
) -> tuple[list[FileEntry], str | None]:
    """One directory level of a version, with a token for the next page (or ``None``)."""
    record = version_for_transfer(db, principal, version_id, write=False)
    prefix = check_path(path.strip("/")) + "/" if path and path.strip("/") not in ("", ".") else ""
    files = db.scalars(select(File).where(File.version_id == record.version.id).order_by(File.path))
    entries: dict[str, FileEntry] = {}
    for file in files:
        if not file.path.startswith(prefix):
            continue
        rest = file.path[len(prefix) :]
        head, _, tail = rest.partition("/")
        full = posixpath.join(prefix, head) if prefix else head
        if tail:
            entries.setdefault(full, FileEntry(full, True))
        else:
            entries[full] = FileEntry(full, False, file.size, file.created_at)
    ordered = [entries[key] for key in sorted(entries)]
    start = _decode_token(page_token)
    page = ordered[start : start + limit]
    following = start + limit
    return page, _encode_token(following) if following < len(ordered) else None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    with contextlib.suppress(ValueError):
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        offset = parse_integer(value)
        if kind == "offset" and offset is not None:
            return offset
    raise Invalid("pageToken is not one this server gave out", loc=("body", "pageToken"))
