"""The one place where Depot's errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from depot.errors import (
    Conflict,
    DepotError,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    Unauthenticated,
    Unavailable,
)

__all__ = ["STATUS_CODES", "error_response", "install_error_handlers", "status_for"]

log = logging.getLogger(__name__)

# Most specific first; an error takes the status of the first class it is an instance of.
STATUS_CODES: tuple[tuple[type[DepotError], int], ...] = (
    (RangeNotSatisfiable, 416),
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
    (PayloadTooLarge, 413),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Unavailable, 503),
)


def status_for(exc: DepotError) -> int:
    """The HTTP status code of a Depot error."""
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: DepotError) -> Response:
    """Render an error: validation problems in FastAPI's list shape, others as a message."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if status == 422:
        detail: object = [{"loc": list(exc.loc) or ["body"], "msg": exc.message, "type": exc.code}]
    else:
        detail = exc.message
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _handle_depot_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DepotError)
    if isinstance(exc, Unavailable):
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handler for the whole :class:`DepotError` tree on ``app``."""
    # Starlette looks handlers up along the exception's class hierarchy, so one suffices.
    app.add_exception_handler(DepotError, _handle_depot_error)
