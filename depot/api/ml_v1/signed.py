"""The signed URLs the ML API hands out: no Authorization header, an HMAC in the query."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from depot.api.body import consume_body_in_thread
from depot.api.deps import Svc
from depot.api.download import blob_response
from depot.api.routing import OneHopRoute
from depot.catalog.service import check_path
from depot.ml import transfers
from depot.services import Services

__all__ = ["router"]

router = APIRouter(tags=["ml api signed urls"], include_in_schema=False, route_class=OneHopRoute)


def _verify(request: Request, services: Services, method: str, resource: str) -> None:
    """Check the URL's signature. An upload checks it in the thread that takes the body, one
    hop for both; a refused upload leaves its body unread but the few MiB read ahead."""
    services.verify_signed(request.query_params, method, resource)


def _length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared and declared.isdigit() else None


@router.put("/signed/files/{version_id}/{path:path}")
async def put_file(version_id: str, path: str, request: Request, svc: Svc) -> Response:
    """A single-PUT upload of one file of a staged version."""
    resource = transfers.file_resource(version_id, check_path(path))

    def receive(blocks: Iterator[bytes]) -> str:
        _verify(request, svc, "PUT", resource)
        return transfers.receive_file(
            svc.database,
            svc.uploads,
            version_id,
            path,
            blocks,
            size=_length(request),
            content_type=request.headers.get("content-type"),
        )

    sha256 = await consume_body_in_thread(request, receive)
    return Response(status_code=200, headers={"ETag": f'"{sha256}"'})


@router.api_route("/signed/files/{version_id}/{path:path}", methods=["GET", "HEAD"])
def get_file(version_id: str, path: str, request: Request, svc: Svc) -> Response:
    """Download one file of a version."""
    resource = transfers.file_resource(version_id, check_path(path))
    _verify(request, svc, "GET", resource)
    with svc.database.read() as db:
        file = transfers.readable_file(db, version_id, path)
    return blob_response(
        request,
        svc.store,
        sha256=file.blob_sha256,
        size=file.size,
        file_name=file.path.rsplit("/", 1)[-1],
        content_type=file.content_type,
        missing="file not found",
    )


@router.put("/signed/parts/{upload_id}/{number}")
async def put_part(upload_id: uuid.UUID, number: int, request: Request, svc: Svc) -> Response:
    """One part of a multipart upload; answers with the part's ETag."""

    def receive(blocks: Iterator[bytes]) -> str:
        _verify(request, svc, "PUT", f"parts/{upload_id}/{number}")
        return transfers.receive_part(svc.uploads, upload_id, number, blocks, size=_length(request))

    etag = await consume_body_in_thread(request, receive)
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


@router.post("/signed/complete/{upload_id}")
async def complete(upload_id: uuid.UUID, request: Request, svc: Svc) -> Response:
    """Finalize a multipart upload from its <CompleteMultipartUpload> document."""
    await run_in_threadpool(_verify, request, svc, "POST", f"complete/{upload_id}")
    xml = await request.body()
    sha256 = await run_in_threadpool(
        transfers.complete_multipart, svc.database, svc.uploads, upload_id, xml
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f'<ETag>"{sha256}"</ETag></CompleteMultipartUploadResult>'
    )
    return Response(body, media_type="application/xml")
