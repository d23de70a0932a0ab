"""Serving a blob to a client: a redirect to the store, a file by path, or a stream."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from depot.blobs.direct import in_page_cache
from depot.blobs.store import BlobStore
from depot.errors import NotFound, RangeNotSatisfiable

__all__ = ["blob_response"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _BlobFileResponse(FileResponse):
    # Starlette's 64 KiB blocks cost servers without `pathsend` (uvicorn) most of their speed.
    chunk_size = 1024 * 1024


def blob_response(
    request: Request,
    store: BlobStore,
    *,
    sha256: str,
    size: int,
    file_name: str,
    content_type: str,
    missing: str = "file not found",
    expires_in: int = 3600,
) -> Response:
    """The response that delivers a blob, with ``ETag`` (its sha256) and ``Content-Disposition``.

    A store with pre-signed URLs gets a 307 to one. A whole local file in the page cache
    goes out by path (``pathsend``: granian reads and sends it in Rust). Otherwise the store's bytes
    are streamed, honouring a single ``Range`` (and ``If-Range``); a HEAD gets the headers.

    Why not every local file by path: for a blob not in the cache, the local store reads
    past the cache, a few blocks ahead; on the VM of docs/performance.md the first
    download of a 1 GiB blob just uploaded went at 910 MB/s with 1.0 s of server CPU that
    way, against 325 MB/s and 3.2 s by ``pathsend``, which fills fresh page cache. From
    the cache, ``pathsend`` went 2.1–2.3 GB/s and the stream 1.7–1.9 GB/s.

    Raises:
        NotFound: the bytes are missing from the store (``missing`` is the message).
        RangeNotSatisfiable: the range lies outside the blob.
    """
    url = store.presigned_url(
        sha256, expires_in=expires_in, file_name=file_name, content_type=content_type
    )
    if url is not None:
        return RedirectResponse(url, status_code=307)
    etag = f'"{sha256}"'
    headers = {
        "etag": etag,
        "content-disposition": _disposition(file_name),
        "accept-ranges": "bytes",
    }
    path = store.local_path(sha256)
    whole = request.method == "GET" and "range" not in request.headers
    if path is not None and whole and in_page_cache(path):
        return _BlobFileResponse(path, media_type=content_type, headers=headers)
    if path is None and not store.exists(sha256):
        raise NotFound(missing)
    offset, length, status = 0, size, 200
    requested = None
    if request.headers.get("if-range", etag).strip() == etag:  # else the blob has changed
        requested = _parse_range(request.headers.get("range"), size)
    if requested is not None:
        offset, length = requested
        status = 206
        headers["content-range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, media_type=content_type, headers=headers)
    chunks = store.open(sha256, offset=offset, length=length) if length else iter(())
    return StreamingResponse(
        iterate_in_threadpool(chunks), status_code=status, media_type=content_type, headers=headers
    )


def _disposition(file_name: str) -> str:
    quoted = quote(file_name)
    if quoted != file_name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{file_name}"'


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(offset, length) of a single ``bytes=`` range, or ``None`` to send everything."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # several ranges or another unit: answer with the whole blob
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = min(int(last), size)
        if length == 0:
            raise RangeNotSatisfiable(f"range {header} selects no bytes of {size}", size=size)
        return size - length, length
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range is ignored (RFC 9110 14.2): answer with the whole blob
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiable(f"range {header} is outside the {size} bytes", size=size)
    return start, end - start + 1
