"""Model files arriving through upload sessions: start, check, complete into an attached file."""

from __future__ import annotations

import uuid

from depot.access.models import Role
from depot.access.service import Principal
from depot.catalog.models import Artifact
from depot.db.engine import Database
from depot.errors import Conflict, DigestMismatch, NotFound
from depot.model_records.schemas import UploadCompletion, UploadStart
from depot.model_records.service import (
    ModelFileView,
    attach_model_file,
    check_release,
    find_uploaded_file,
    load_model,
)
from depot.uploads.schemas import UploadView
from depot.uploads.service import UploadService

__all__ = ["SURFACE", "check_model_upload", "complete_model_upload", "start_model_upload"]

# Marks sessions opened by this surface, so one surface cannot drive another's uploads.
SURFACE = "model_repository"


def start_model_upload(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    product_id: uuid.UUID,
    body: UploadStart,
) -> UploadView:
    """Open an upload session for a new file of model ``product_id`` (editors only)."""
    with database.read() as db:
        artifact, space = load_model(db, principal, product_id, Role.EDITOR)
        check_release(db, artifact, body.product_version_id)
    context = body.model_dump(mode="json", exclude={"sha256", "total_size_bytes"})
    context.update(surface=SURFACE, product_id=str(product_id))
    return uploads.start_upload(
        space_id=space.id,
        created_by_id=principal.user_id,
        size=body.total_size_bytes,
        sha256=body.sha256,
        context=context,
    )


def check_model_upload(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    product_id: uuid.UUID,
    upload_id: uuid.UUID,
) -> None:
    """Check that ``upload_id`` is a session of model ``product_id`` and the caller may edit it.

    Raises:
        NotFound: no such model or session, or the session belongs to another model.
        Forbidden: the caller may not edit the model.
    """
    with database.read() as db:
        load_model(db, principal, product_id, Role.EDITOR)
    context = uploads.get_context(upload_id)
    if context.get("surface") != SURFACE or context.get("product_id") != str(product_id):
        raise NotFound(f"upload session {upload_id} not found")


def complete_model_upload(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    product_id: uuid.UUID,
    upload_id: uuid.UUID,
    body: UploadCompletion,
) -> ModelFileView:
    """Verify the session's bytes and attach them to the model as a new model file.

    Completing again returns the file made the first time.

    Raises:
        Invalid: chunks are missing, or the session failed or expired.
        SizeMismatch, DigestMismatch: the bytes are not what was announced; nothing is stored.
    """
    check_model_upload(database, uploads, principal, product_id, upload_id)
    with database.read() as db:
        made = find_uploaded_file(db, upload_id)
    if made is not None:
        if body.sha256 and body.sha256.lower() != made.file.blob_sha256:
            raise DigestMismatch(
                f"sha256 mismatch: the upload completed as {made.file.blob_sha256}"
            )
        return made
    done = uploads.complete_upload(upload_id, sha256=body.sha256)
    context = done.context
    version_id = context.get("product_version_id")
    run_id = context.get("training_run_id")
    with database.write() as db:
        artifact = db.get(Artifact, product_id)
        if artifact is None:
            raise NotFound(f"product {product_id} not found")
        try:
            return attach_model_file(
                db,
                artifact,
                done.blob_sha256 or "",
                file_name=context["file_name"],
                content_type=context["content_type"],
                artifact_kind=context["artifact_kind"],
                version_label=context.get("version_label"),
                version_id=uuid.UUID(version_id) if version_id else None,
                training_run_id=uuid.UUID(run_id) if run_id else None,
                external_uri=context.get("external_uri"),
                is_current=body.is_current
                if body.is_current is not None
                else bool(context.get("is_current")),
                metadata=context.get("metadata") or {},
                upload_id=upload_id,
                uploaded_by_id=principal.user_id,
            )
        except Conflict:
            # Another request completed the same upload a moment ago.
            made = find_uploaded_file(db, upload_id)
            if made is None:
                raise
            return made
