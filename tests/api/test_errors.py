"""The error body of every status Depot's error tree maps to, pinned."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from depot.api.errors import install_error_handlers
from depot.errors import (
    Conflict,
    DepotError,
    DigestMismatch,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    SizeMismatch,
    Unauthenticated,
    Unavailable,
)

pytestmark = pytest.mark.anyio

CASES: list[tuple[DepotError, int, object]] = [
    (NotFound("model acme/ml/x not found"), 404, "model acme/ml/x not found"),
    (Conflict("name taken"), 409, "name taken"),
    (Forbidden("editor role required"), 403, "editor role required"),
    (Unauthenticated("invalid token"), 401, "invalid token"),
    (PayloadTooLarge("too big"), 413, "too big"),
    (Unavailable("database down"), 503, "database down"),
    (
        Invalid("bad value", loc=("body", "name")),
        422,
        [{"loc": ["body", "name"], "msg": "bad value", "type": "invalid"}],
    ),
    (
        DigestMismatch("sha256 mismatch"),
        422,
        [{"loc": ["body"], "msg": "sha256 mismatch", "type": "digest_mismatch"}],
    ),
    (SizeMismatch("short"), 422, [{"loc": ["body"], "msg": "short", "type": "size_mismatch"}]),
    (RangeNotSatisfiable("offset past end", size=10), 416, "offset past end"),
]


def raising_app(exc: DepotError) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    @app.get("/typed/{number}")
    def typed(number: int) -> dict[str, int]:
        return {"number": number}

    return app


@pytest.mark.parametrize(("exc", "status", "detail"), CASES)
async def test_error_bodies(exc: DepotError, status: int, detail: object) -> None:
    transport = httpx.ASGITransport(app=raising_app(exc))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == status
    assert response.json() == {"detail": detail}
    if status == 416:
        assert response.headers["content-range"] == "bytes */10"


async def test_request_validation_keeps_fastapi_shape() -> None:
    transport = httpx.ASGITransport(app=raising_app(NotFound("x")))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/typed/abc")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["path", "number"] and {"msg", "type"} <= problem.keys()
