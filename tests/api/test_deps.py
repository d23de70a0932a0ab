from __future__ import annotations

import threading

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from depot.api.deps import ReadDb, short_read
from depot.api.errors import install_error_handlers
from depot.errors import NotFound
from depot.services import Services

pytestmark = pytest.mark.anyio


def make_app(services: Services) -> FastAPI:
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
    transport = httpx.ASGITransport(app=make_app(services))
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
    transport = httpx.ASGITransport(app=make_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/answer/not-a-number")
    assert response.status_code == 422
