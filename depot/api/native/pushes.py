"""Native API: pushing a version (announce files, send the missing ones in chunks, finalize)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from depot.access.models import Role
from depot.access.service import Principal, require
from depot.api.body import consume_body_in_thread
from depot.api.deps import CurrentPrincipal, Svc
from depot.api.native.artifacts import VersionOut, version_out
from depot.api.routing import OneHopRoute
from depot.catalog import push
from depot.catalog.models import Space, Version
from depot.catalog.service import get_space
from depot.errors import NotFound
from depot.services import Services
from depot.uploads.schemas import UploadView

__all__ = ["router"]

router = APIRouter(tags=["push"], route_class=OneHopRoute)


class FileOffer(BaseModel):
    path: str = Field(min_length=1, max_length=1024, description="Where the file goes.")
    size: int = Field(ge=0)
    sha256: str | None = Field(
        default=None,
        min_length=64,
        max_length=64,
        description="The file's SHA-256 if known now; if not, give it when completing.",
    )
    content_type: str = Field(default="application/octet-stream", max_length=255)


class PushCreate(BaseModel):
    kind: str | None = Field(
        default=None,
        description="model, artifact, agent_skill or document; for a new artifact, artifact.",
    )
    description: str = Field(default="", max_length=20_000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    files: list[FileOffer] = Field(max_length=100_000)


class UploadOut(BaseModel):
    id: uuid.UUID
    status: str
    size: int | None
    chunk_size: int | None
    chunk_count: int | None
    received_chunks: list[int]
    missing_chunks: list[int]


class PushFileOut(BaseModel):
    path: str
    size: int
    sha256: str | None = Field(description="As announced; null if it was not.")
    status: str = Field(description="`present` (nothing to send) or `upload`.")
    upload: UploadOut | None


class PushOut(BaseModel):
    version_id: uuid.UUID
    status: str
    number: int | None
    files: list[PushFileOut]


class CompleteBody(BaseModel):
    sha256: str | None = Field(
        default=None,
        min_length=64,
        max_length=64,
        description="The file's SHA-256: required if the push did not announce it, else"
        " checked against the announced one.",
    )


class FinalizeBody(BaseModel):
    alias: str | None = Field(default=None, max_length=128)


def upload_out(view: UploadView) -> UploadOut:
    return UploadOut(
        id=view.id,
        status=view.status,
        size=view.expected_size,
        chunk_size=view.chunk_size,
        chunk_count=view.chunk_count,
        received_chunks=view.received_chunks,
        missing_chunks=view.missing_chunks,
    )


def _push_out(version: Version, files: list[push.PushFile]) -> PushOut:
    return PushOut(
        version_id=version.id,
        status=version.status,
        number=version.number,
        files=[
            PushFileOut(
                path=item.path,
                size=item.size,
                sha256=item.sha256,
                status="present" if item.upload is None else "upload",
                upload=upload_out(item.upload) if item.upload is not None else None,
            )
            for item in files
        ],
    )


@router.post("/orgs/{org}/spaces/{space}/artifacts/{name}/pushes", status_code=201)
def begin_push(
    org: str, space: str, name: str, body: PushCreate, principal: CurrentPrincipal, svc: Svc
) -> PushOut:
    """Stage a new version from a list of files; say which ones to upload.

    Files whose content the caller can already write elsewhere are linked at once
    (`present`); every other file gets an upload session to send chunks to.
    The artifact is created on the first push.
    """
    with svc.database.read() as db:
        row = get_space(db, org, space)
    version, files = push.begin_push(
        svc.database,
        svc.uploads,
        principal,
        row,
        name,
        [push.FileOffer(f.path, f.size, f.sha256, f.content_type) for f in body.files],
        kind=body.kind,
        description=body.description,
        metadata=body.metadata,
    )
    return _push_out(version, files)


@router.get("/pushes/{version_id}")
def get_push(version_id: uuid.UUID, principal: CurrentPrincipal, svc: Svc) -> PushOut:
    """Where a push stands: each file present or its upload with the chunks received."""
    version, files = push.push_files(svc.database, svc.uploads, principal, version_id)
    return _push_out(version, files)


@router.post("/pushes/{version_id}/finalize")
def finalize_push(
    version_id: uuid.UUID, principal: CurrentPrincipal, svc: Svc, body: FinalizeBody | None = None
) -> VersionOut:
    """Number the version once every file is in; optionally point an alias at it."""
    version = push.finalize_push(
        svc.database, svc.uploads, principal, version_id, alias=(body or FinalizeBody()).alias
    )
    return version_out(version, [body.alias] if body and body.alias else None)


def _check_upload(svc: Services, principal: Principal, upload_id: uuid.UUID) -> UploadView:
    """The push upload ``upload_id`` if the caller may write its space."""
    view = svc.uploads.get_upload(upload_id)
    if view.context.get("surface") != push.SURFACE or view.space_id is None:
        raise NotFound(f"upload {upload_id} not found")
    with svc.database.read() as db:
        space = db.get(Space, view.space_id)
        if space is None:
            raise NotFound(f"upload {upload_id} not found")
        require(principal, space, Role.EDITOR, what=f"upload {upload_id}")
    return view


@router.get("/uploads/{upload_id}")
def get_upload(upload_id: uuid.UUID, principal: CurrentPrincipal, svc: Svc) -> UploadOut:
    """An upload of a push, with the chunks received so far."""
    return upload_out(_check_upload(svc, principal, upload_id))


@router.put("/uploads/{upload_id}/chunks/{index}")
async def put_chunk(
    upload_id: uuid.UUID, index: int, request: Request, principal: CurrentPrincipal, svc: Svc
) -> UploadOut:
    """Store one chunk (the raw bytes; zero-based index). Re-sending a chunk replaces it."""
    await run_in_threadpool(_check_upload, svc, principal, upload_id)
    declared = request.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None
    view = await consume_body_in_thread(
        request,
        lambda blocks: svc.uploads.receive_chunk(upload_id, index, blocks, content_length=length),
    )
    return upload_out(view)


@router.post("/uploads/{upload_id}/complete")
def complete_upload(
    upload_id: uuid.UUID, principal: CurrentPrincipal, svc: Svc, body: CompleteBody | None = None
) -> UploadOut:
    """Check the bytes against the size and SHA-256 and put the file in its version.

    A file announced without its SHA-256 must be given it here: a push that sends while it
    hashes reads each byte once, and the bytes still go in only if they match.
    """
    view = _check_upload(svc, principal, upload_id)
    sha256 = body.sha256 if body is not None else None
    return upload_out(push.complete_upload(svc.database, svc.uploads, view, sha256=sha256))
