"""The one place where Depot's errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from depot.errors import (
    Conflict,
    DepotError,
    EntryNotFound,
    Forbidden,
    Invalid,
    MissingCredentials,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RepoNotFound,
    RevisionNotFound,
    Unauthenticated,
    Unavailable,
    Unsupported,
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
    (Unsupported, 501),
)


def status_for(exc: DepotError) -> int:
    """The HTTP status code of a Depot error."""
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


# Surfaces whose clients expect TrueFoundry's error body, and retry 409s (so conflicts are 400).
ML_PREFIXES = ("/api/svc/v1", "/api/ml/v1")
# The Hugging Face surface: huggingface_hub picks its exception class from X-Error-Code
# alone on a plain-http endpoint, and its message from X-Error-Message and {"error": ...}.
HF_PREFIX = "/hf/"
HF_ERROR_CODES: tuple[tuple[type[DepotError], str], ...] = (
    (RepoNotFound, "RepoNotFound"),
    (RevisionNotFound, "RevisionNotFound"),
    (EntryNotFound, "EntryNotFound"),
    # As huggingface.co answers anonymous requests for a private repo.
    (MissingCredentials, "RepoNotFound"),
)


def _hf_error(exc: DepotError, status: int, headers: dict[str, str]) -> Response:
    code = next((code for cls, code in HF_ERROR_CODES if isinstance(exc, cls)), None)
    if code is not None:
        headers["X-Error-Code"] = code
    message = exc.message
    if isinstance(exc, Unauthenticated) and not isinstance(exc, MissingCredentials):
        message = f"Invalid credentials in Authorization header ({exc.message})"
    headers["X-Error-Message"] = message
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def error_response(exc: DepotError, path: str = "") -> Response:
    """Render an error: validation problems in FastAPI's list shape, others as a message.

    On the ML API the body also carries ``statusCode``, ``message`` and ``code``, as
    TrueFoundry's clients read them, and a conflict is a 400 (their SDK retries 409s).
    """
    status = status_for(exc)
    ml = path.startswith(ML_PREFIXES)
    if ml and isinstance(exc, Conflict):
        status = 400
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if path.startswith(HF_PREFIX):
        # The Hub answers a bad request with 400 (the client's BadRequestError), never 422.
        return _hf_error(exc, 400 if status == 422 else status, headers)
    if status == 422:
        detail: object = [{"loc": list(exc.loc) or ["body"], "msg": exc.message, "type": exc.code}]
    else:
        detail = exc.message
    body: dict[str, object] = {"detail": detail}
    if ml:
        body.update(statusCode=status, message=exc.message, code=exc.code)
    return JSONResponse(body, status_code=status, headers=headers)


async def _handle_depot_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DepotError)
    if isinstance(exc, Unavailable):
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc, request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handler for the whole :class:`DepotError` tree on ``app``."""
    # Starlette looks handlers up along the exception's class hierarchy, so one suffices.
    app.add_exception_handler(DepotError, _handle_depot_error)
