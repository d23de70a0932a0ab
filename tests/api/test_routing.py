from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import text

from depot.api.deps import ReadDb
from depot.api.errors import install_error_handlers
from depot.api.routing import OneHopRoute, short_read
from depot.app import create_app
from depot.errors import NotFound
from depot.services import Services
from depot.settings import Settings

pytestmark = pytest.mark.anyio


class Answer(BaseModel):
    value: int
    thread: int


def make_app(route_class: type[APIRoute]) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.get("/answer/{value}", response_model=Answer)
    def answer(value: int) -> dict[str, Any]:
        """A plain def handler; the extra key is dropped by the response model."""
        return {"value": value, "thread": threading.get_ident(), "extra": "dropped"}

    app = FastAPI()
    app.include_router(router)
    return app


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    """Every function handed to the thread pool during the test."""
    handed: list[Callable[..., Any]] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        handed.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return handed


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_a_plain_handler_crosses_to_the_thread_pool_once(
    hops: list[Callable[..., Any]],
) -> None:
    response = await get(make_app(OneHopRoute), "/answer/42")
    assert response.status_code == 200
    assert response.json()["value"] == 42
    assert "extra" not in response.json()  # the response model still applies
    assert response.json()["thread"] != threading.get_ident()
    assert len(hops) == 1


async def test_fastapis_own_route_crosses_twice(hops: list[Callable[..., Any]]) -> None:
    # What OneHopRoute saves: FastAPI validates a plain handler's result in the pool again.
    response = await get(make_app(APIRoute), "/answer/42")
    assert response.status_code == 200
    assert len(hops) == 2


async def test_a_one_hop_route_keeps_its_parameters_validated() -> None:
    response = await get(make_app(OneHopRoute), "/answer/not-a-number")
    assert response.status_code == 422


def test_every_surface_is_in_the_openapi_document(tmp_path: Any) -> None:
    # Requests reach the surfaces through mounts; the document comes from the included routes.
    app = create_app(Settings(data_dir=tmp_path), background_jobs=False)
    paths = app.openapi()["paths"]
    app.state.services.close()
    for prefix in ("/api/v1/", "/api/v1.0/", "/api/svc/v1/", "/api/ml/v1/", "/v1/", "/hf/{org}/"):
        assert any(path.startswith(prefix) for path in paths), prefix


def make_reading_app(services: Services) -> FastAPI:
    app = FastAPI()
    app.state.services = services
    install_error_handlers(app)

    @app.get("/answer/{value}")
    @short_read
    def answer(value: int, db: ReadDb) -> dict[str, int]:
        """Reads on its session; records the thread it ran in."""
        if value < 0:
            raise NotFound("no negative answers")
        return {
            "value": db.execute(text("SELECT :v"), {"v": value}).scalar_one(),
            "thread": threading.get_ident(),
        }

    return app


async def test_a_short_read_runs_on_the_loop_on_sqlite_and_in_a_thread_otherwise(
    services: Services,
) -> None:
    transport = httpx.ASGITransport(app=make_reading_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/answer/42")
        missing = await client.get("/answer/-1")
    assert response.status_code == 200
    assert response.json()["value"] == 42
    on_loop = response.json()["thread"] == threading.get_ident()
    assert on_loop == services.database.is_sqlite
    # Errors travel as from any handler, and the parameters keep their validation.
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no negative answers"}


async def test_a_short_read_keeps_its_parameters_validated(services: Services) -> None:
    transport = httpx.ASGITransport(app=make_reading_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/answer/not-a-number")
    assert response.status_code == 422
