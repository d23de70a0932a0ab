from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from depot.api.body import consume_body_in_thread
from depot.blobs.store import BLOCK_SIZE

pytestmark = pytest.mark.anyio


def make_app() -> FastAPI:
    app = FastAPI()

    @app.put("/sink")
    async def sink(request: Request) -> dict[str, object]:
        def consume(blocks: Iterator[bytes]) -> dict[str, object]:
            hasher = hashlib.sha256()
            sizes = []
            for block in blocks:
                hasher.update(block)
                sizes.append(len(block))
            return {
                "sha256": hasher.hexdigest(),
                "largest": max(sizes, default=0),
                "thread": threading.current_thread() is not threading.main_thread(),
            }

        return await consume_body_in_thread(request, consume)

    return app


async def test_the_body_reaches_the_thread_whole_and_in_bounded_blocks() -> None:
    data = os.urandom(5 * BLOCK_SIZE + 123)

    async def body() -> AsyncIterator[bytes]:
        for pos in range(0, len(data), 65536):
            yield data[pos : pos + 65536]

    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.put("/sink", content=body())
    result = response.json()
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["largest"] < BLOCK_SIZE + 65536
    assert result["thread"] is True


async def test_an_empty_body() -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.put("/sink", content=b"")
    assert response.json()["sha256"] == hashlib.sha256(b"").hexdigest()
