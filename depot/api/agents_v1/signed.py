"""Download links handed out by the agent artifacts API: an HMAC and an expiry, no token."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from depot.api.deps import Svc
from depot.api.download import blob_response
from depot.api.routing import OneHopRoute
from depot.catalog.models import File
from depot.errors import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=OneHopRoute)


@router.api_route("/signed/agent-files/{file_id}", methods=["GET", "HEAD"])
def download(file_id: uuid.UUID, request: Request, svc: Svc) -> Response:
    svc.verify_signed(request.query_params, "GET", f"agent-files/{file_id}")
    with svc.database.read() as db:
        file = db.get(File, file_id)
        if file is None:
            raise NotFound("file not found")
        sha256, size, path, content_type = file.blob_sha256, file.size, file.path, file.content_type
    return blob_response(
        request,
        svc.store,
        sha256=sha256,
        size=size,
        file_name=path,
        content_type=content_type,
        missing="file not found",
    )
