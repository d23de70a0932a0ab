"""Feeding a request body, which arrives on the event loop, to synchronous services in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from depot.blobs.store import BLOCK_SIZE

__all__ = ["consume_body_in_thread"]

T = TypeVar("T")


async def _next_block(stream: AsyncIterator[bytes]) -> bytes | None:
    """Gather pieces of the body until a block is full; ``None`` at the end.

    Servers hand the body over in pieces of a few KiB to a few hundred KiB; joining
    them into ~1 MiB blocks makes the hop to the worker thread rare and cheap.
    """
    pieces: list[bytes] = []
    size = 0
    while size < BLOCK_SIZE:
        piece = await anext(stream, None)
        if piece is None:
            break
        if piece:
            pieces.append(piece)
            size += len(piece)
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def consume_body_in_thread(request: Request, consume: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``consume(blocks)`` in a worker thread while the event loop reads the body.

    ``blocks`` yields the body in blocks of about 1 MiB, read only as fast as
    ``consume`` takes them, so memory stays bounded whatever the body's size.
    A client that disconnects makes the iterator raise inside ``consume``.
    """
    stream = request.stream().__aiter__()

    def blocks() -> Iterator[bytes]:
        while True:
            block = anyio.from_thread.run(_next_block, stream)
            if block is None:
                return
            yield block

    return await anyio.to_thread.run_sync(consume, blocks())
