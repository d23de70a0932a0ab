"""Model artifacts: the three-step chunked upload, listing, download and delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from starlette.concurrency import run_in_threadpool

from depot.access.models import Role
from depot.api.body import consume_body_in_thread
from depot.api.deps import CurrentPrincipal, ReadDb, Svc, WriteDb
from depot.api.download import blob_response
from depot.api.routing import OneHopRoute
from depot.db.base import utcnow
from depot.model_records import service as records
from depot.model_records import uploads as model_uploads
from depot.model_records.schemas import (
    ModelFileOut,
    UploadCompletion,
    UploadSessionOut,
    UploadStart,
)
from depot.model_records.service import ModelFileView
from depot.services import Services
from depot.uploads.schemas import UploadView

__all__ = ["router"]

router = APIRouter(route_class=OneHopRoute)
PRODUCT = "/catalog/products/{product_id}/model-artifacts"


def session_out(view: UploadView) -> UploadSessionOut:
    """The engine's session in the document's words (statuses included)."""
    status = view.status
    if status == "completing":
        status = "uploading"
    elif status == "aborted":
        status = "failed"
    elif (
        status in ("initialized", "uploading")
        and view.expires_at is not None
        and (view.expires_at <= utcnow())
    ):
        status = "expired"
    context = view.context
    return UploadSessionOut(
        id=view.id,
        product_id=uuid.UUID(context["product_id"]),
        file_name=context["file_name"],
        content_type=context["content_type"],
        total_size_bytes=view.expected_size or 0,
        chunk_size_bytes=view.chunk_size or 0,
        expected_sha256=view.expected_sha256,
        received_bytes=view.received_bytes,
        received_chunks=view.received_chunks,
        status=status,
        expires_at=view.expires_at or utcnow(),
        created_at=view.created_at or utcnow(),
        completed_at=view.completed_at,
    )


def file_out(services: Services, view: ModelFileView) -> ModelFileOut:
    file, info = view.file, view.info
    return ModelFileOut(
        id=file.id,
        product_id=info.artifact_id,
        product_version_id=info.version_id,
        training_run_id=info.training_run_id,
        artifact_kind=info.artifact_kind,
        version_label=info.version_label,
        file_name=file.path,
        content_type=file.content_type,
        size_bytes=file.size,
        sha256=file.blob_sha256,
        storage_backend=services.store.backend,
        storage_uri=services.store.uri(file.blob_sha256),
        external_uri=info.external_uri,
        status="available",
        is_current=info.is_current,
        metadata=view.metadata,
        uploaded_by_id=info.uploaded_by_id,
        uploaded_at=info.uploaded_at,
        created_at=file.created_at,
        updated_at=file.updated_at,
    )


@router.get(PRODUCT, response_model=list[ModelFileOut])
def list_artifacts(
    product_id: uuid.UUID, principal: CurrentPrincipal, db: ReadDb, svc: Svc
) -> list[ModelFileOut]:
    """Every model artifact attached to the product, newest first."""
    artifact, _space = records.load_model(db, principal, product_id, Role.VIEWER)
    return [file_out(svc, view) for view in records.list_model_files(db, artifact)]


@router.post(f"{PRODUCT}/uploads", status_code=201, response_model=UploadSessionOut)
def initiate_upload(
    product_id: uuid.UUID, body: UploadStart, principal: CurrentPrincipal, svc: Svc
) -> UploadSessionOut:
    """Open an upload session; send chunks of `chunk_size_bytes` next."""
    view = model_uploads.start_model_upload(svc.database, svc.uploads, principal, product_id, body)
    return session_out(view)


@router.put(
    f"{PRODUCT}/uploads/{{upload_id}}/chunks/{{chunk_index}}", response_model=UploadSessionOut
)
async def upload_chunk(
    product_id: uuid.UUID,
    upload_id: uuid.UUID,
    chunk_index: int,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> UploadSessionOut:
    """Store one chunk (raw bytes in the body, zero-based index); returns the session."""
    await run_in_threadpool(
        model_uploads.check_model_upload,
        svc.database,
        svc.uploads,
        principal,
        product_id,
        upload_id,
    )
    declared = request.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None
    view = await consume_body_in_thread(
        request,
        lambda blocks: svc.uploads.receive_chunk(
            upload_id, chunk_index, blocks, content_length=length
        ),
    )
    return session_out(view)


@router.post(f"{PRODUCT}/uploads/{{upload_id}}/complete", response_model=ModelFileOut)
def complete_upload(
    product_id: uuid.UUID,
    upload_id: uuid.UUID,
    principal: CurrentPrincipal,
    svc: Svc,
    body: Annotated[UploadCompletion | None, Body()] = None,
) -> ModelFileOut:
    """Check size and SHA-256, then store the artifact; nothing is stored on a mismatch."""
    view = model_uploads.complete_model_upload(
        svc.database, svc.uploads, principal, product_id, upload_id, body or UploadCompletion()
    )
    return file_out(svc, view)


@router.get(f"{PRODUCT}/{{artifact_id}}/download", response_class=Response)
def download_artifact(
    product_id: uuid.UUID,
    artifact_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    svc: Svc,
) -> Response:
    """The artifact's bytes (ranges allowed), or a 307 to the store's URL for them."""
    artifact, _space = records.load_model(db, principal, product_id, Role.VIEWER)
    view = records.get_model_file(db, artifact, artifact_id)
    return blob_response(
        request,
        svc.store,
        sha256=view.file.blob_sha256,
        size=view.file.size,
        file_name=view.file.path.rsplit("/", 1)[-1],
        content_type=view.file.content_type,
        missing="Artifact file not found",
    )


@router.delete(f"{PRODUCT}/{{artifact_id}}", status_code=204, response_class=Response)
def delete_artifact(
    product_id: uuid.UUID,
    artifact_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: WriteDb,
) -> Response:
    """Delete the artifact record; its bytes go once nothing else references them."""
    artifact, _space = records.load_model(db, principal, product_id, Role.EDITOR)
    records.delete_model_file(db, artifact, artifact_id)
    return Response(status_code=204)
