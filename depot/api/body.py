"""Feeding a request body, which arrives on the event loop, to synchronous services in a thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import anyio.to_thread
from starlette.requests import Request

from depot.blobs.store import BLOCK_SIZE

__all__ = ["consume_body_in_thread"]

T = TypeVar("T")

# Blocks read ahead of the consumer: the socket keeps draining while the thread
# hashes and writes, and memory stays bounded at a few MiB per request.
_READ_AHEAD = 4
_END = object()


async def _batches(request: Request) -> AsyncIterator[list[bytes]]:
    """The body as lists of pieces of about 1 MiB in all.

    Servers hand the body over in pieces of a few KiB to a few hundred KiB; batching
    them makes each hop to the worker thread carry enough to be cheap. The pieces are
    not joined: the consumer hashes and copies them where they go anyway, and a join
    would copy every byte once more.
    """
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        if not piece:
            continue
        pieces.append(piece)
        size += len(piece)
        if size >= BLOCK_SIZE:
            yield pieces
            pieces, size = [], 0
    if pieces:
        yield pieces


async def consume_body_in_thread(request: Request, consume: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``consume(blocks)`` in a worker thread while the event loop reads the body ahead.

    ``blocks`` yields the body in the server's pieces, handed over ~1 MiB at a time;
    at most a few MiB are buffered, so memory stays bounded whatever the body's size.
    A client that disconnects makes the iterator raise inside ``consume``; if
    ``consume`` stops early the rest of the body is left unread.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=_READ_AHEAD)

    async def read_ahead() -> None:
        try:
            async for batch in _batches(request):
                await queue.put(batch)
            await queue.put(_END)
        except Exception as exc:  # the client went away, say: hand it to the consumer
            await queue.put(exc)

    def blocks() -> Iterator[bytes]:
        while True:
            item = asyncio.run_coroutine_threadsafe(queue.get(), loop).result()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, list)
            yield from item

    reader = asyncio.create_task(read_ahead())
    try:
        return await anyio.to_thread.run_sync(consume, blocks())
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
