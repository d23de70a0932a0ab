"""Objects of the git-lfs protocol as the Hugging Face client sends them, on the upload engine.

:func:`lfs_batch` answers which objects need bytes: none for a blob the caller may already
read (another tenant's content is never revealed by a skipped upload), an upload session
and a signed, short-lived URL bound to that session, digest and size for the others (the
PUT carries no token). :func:`receive_object` streams the PUT into the session, which checks
size and sha256; :func:`verify_object` confirms it before a commit names it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, visible_spaces
from depot.access.signing import Signer
from depot.blobs.models import Blob
from depot.blobs.store import check_sha256
from depot.catalog.models import Artifact, File, Space
from depot.db.engine import Database
from depot.errors import (
    DepotError,
    DigestMismatch,
    Invalid,
    NotFound,
    SizeMismatch,
)
from depot.huggingface.repos import load_repo
from depot.uploads.models import UploadSession, UploadStatus
from depot.uploads.service import UploadService

__all__ = [
    "SURFACE",
    "LfsAnswer",
    "LfsObject",
    "lfs_batch",
    "receive_object",
    "upload_href",
    "upload_resource",
    "usable_blob",
    "verify_object",
]

# Marks the upload sessions opened by the LFS batch.
SURFACE = "huggingface"


@dataclass(frozen=True)
class LfsObject:
    """An object the client offers: its sha256 and size."""

    oid: str
    size: int


@dataclass(frozen=True)
class LfsAnswer:
    """What to do with one object: nothing (no session), send it (a session), or an error."""

    oid: str
    size: int
    session_id: uuid.UUID | None = None
    error: DepotError | None = None


def usable_blob(db: Session, principal: Principal, sha256: str) -> Blob | None:
    """The blob, if the caller may build on it without sending its bytes.

    That is when the caller uploaded it themselves, or a file they may read holds it:
    answering "present" for bytes only another tenant holds would tell the caller that
    the content exists there.
    """
    blob = db.get(Blob, sha256)
    if blob is None:
        return None
    uploaded = db.scalar(
        select(UploadSession.id)
        .where(
            UploadSession.blob_sha256 == sha256,
            UploadSession.created_by_id == principal.user_id,
            UploadSession.status == UploadStatus.COMPLETED,
        )
        .limit(1)
    )
    if uploaded is not None:
        return blob
    readable = db.scalar(
        select(File.id)
        .join(Artifact, Artifact.id == File.artifact_id)
        .join(Space, Space.id == Artifact.space_id)
        .where(File.blob_sha256 == sha256, visible_spaces(principal))
        .limit(1)
    )
    return blob if readable is not None else None


def lfs_batch(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    org: str,
    space: str,
    name: str,
    operation: str,
    objects: list[LfsObject],
) -> list[LfsAnswer]:
    """Decide, per object, whether its bytes are needed, and open a session for those.

    Raises:
        RepoNotFound, Forbidden: the caller may not write the repo.
        Invalid: an operation other than upload.
    """
    if operation != "upload":
        raise Invalid(
            "only the LFS upload operation is served; download files with /resolve",
            loc=("body", "operation"),
        )
    with database.read() as db:
        repo = load_repo(db, principal, org, space, name, Role.EDITOR)
        present: set[tuple[str, int]] = set()
        for item in objects:
            blob = usable_blob(db, principal, item.oid.lower())
            if blob is not None and blob.size == item.size:
                present.add((item.oid.lower(), item.size))
    answers: list[LfsAnswer] = []
    for item in objects:
        if (item.oid.lower(), item.size) in present:
            answers.append(LfsAnswer(item.oid, item.size))
            continue
        try:
            view = uploads.start_upload(
                space_id=repo.space.id,
                created_by_id=principal.user_id,
                size=item.size,
                sha256=item.oid,
                context={"surface": SURFACE, "repo": repo.repo_id, "oid": item.oid.lower()},
            )
        except DepotError as exc:  # a malformed digest, a size over the limit
            answers.append(LfsAnswer(item.oid, item.size, error=exc))
            continue
        answers.append(LfsAnswer(item.oid, item.size, session_id=view.id))
    return answers


def upload_resource(session_id: uuid.UUID, oid: str, size: int) -> str:
    """The signed resource of one object's PUT: its session, digest and size."""
    return f"hf/lfs/{session_id}/{oid}/{size}"


def upload_href(signer: Signer, endpoint: str, answer: LfsAnswer, *, expires_in: int) -> str:
    """The self-authorising URL the client PUTs the object to."""
    assert answer.session_id is not None
    oid = answer.oid.lower()
    resource = upload_resource(answer.session_id, oid, answer.size)
    query = signer.query("PUT", resource, expires_in=expires_in)
    return f"{endpoint}/_lfs/{answer.session_id}/{oid}/{answer.size}?{query}"


class _Slices:
    """A body that arrives in blocks of any size, read as consecutive slices of set lengths."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._pending = b""

    def _fill(self) -> bool:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return False
            self._pending = block
        return True

    def take(self, length: int) -> Iterator[bytes]:
        """The next ``length`` bytes (fewer if the body ends first), in blocks."""
        left = length
        while left > 0 and self._fill():
            if len(self._pending) <= left:
                piece, self._pending = self._pending, b""
            else:
                piece, self._pending = self._pending[:left], self._pending[left:]
            left -= len(piece)
            yield piece

    def exhausted(self) -> bool:
        """True when nothing is left of the body."""
        return not self._fill()


def receive_object(
    uploads: UploadService,
    session_id: uuid.UUID,
    oid: str,
    size: int,
    blocks: Iterable[bytes],
    *,
    declared: int | None,
) -> None:
    """Stream a PUT into its session, chunk by chunk, and complete it.

    A retry of a PUT that already completed is accepted when it carries the same bytes.

    Raises:
        NotFound: no such session for this object.
        SizeMismatch, DigestMismatch: the bytes are not the announced ones; nothing is
            stored and the session is closed.
    """
    view = uploads.get_upload(session_id)
    if (
        view.context.get("surface") != SURFACE
        or view.expected_sha256 != oid
        or view.expected_size != size
    ):
        raise NotFound(f"upload {session_id} not found")
    if declared is not None and declared != size:
        raise SizeMismatch(f"the object is {size} bytes, the request declares {declared}")
    if view.status == UploadStatus.COMPLETED:
        _check_retry(blocks, oid, size)
        return
    body = _Slices(blocks)
    chunk_size = view.chunk_size or size
    try:
        for index in range(view.chunk_count or 1):
            length = min(chunk_size, size - index * chunk_size)
            uploads.receive_part(session_id, index, body.take(length), content_length=length)
        if not body.exhausted():
            raise SizeMismatch(f"the object is {size} bytes, more were sent")
    except SizeMismatch:
        uploads.abort_upload(session_id)
        raise
    uploads.complete_upload(session_id)


def _check_retry(blocks: Iterable[bytes], oid: str, size: int) -> None:
    hasher, received = hashlib.sha256(), 0
    for block in blocks:
        hasher.update(block)
        received += len(block)
    if received != size:
        raise SizeMismatch(f"the object is {size} bytes, received {received}")
    if not hmac.compare_digest(hasher.hexdigest(), oid):
        raise DigestMismatch(f"sha256 mismatch: the object is {oid}")


def verify_object(
    db: Session, principal: Principal, org: str, space: str, name: str, oid: str, size: int
) -> None:
    """Confirm that an object is stored and the caller may commit it.

    Raises:
        RepoNotFound, Forbidden: the caller may not write the repo.
        Invalid: the object was not uploaded (completely), or has another size.
    """
    load_repo(db, principal, org, space, name, Role.EDITOR)
    blob = usable_blob(db, principal, check_sha256(oid, loc=("body", "oid")))
    if blob is None or blob.size != size:
        raise Invalid(f"LFS object {oid} ({size} bytes) has not been uploaded")
