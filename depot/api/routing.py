"""Where handlers run: the route class every router uses, and the wrappers it builds on."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from anyio import to_thread
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

__all__ = ["OneHopRoute", "in_thread", "short_read"]

P = ParamSpec("P")
T = TypeVar("T")


def in_thread(handler: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``handler`` as a coroutine function that runs it in the thread pool."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await to_thread.run_sync(functools.partial(handler, *args, **kwargs))

    return run


def short_read(handler: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run a read-only handler on the event loop on SQLite, in the thread pool otherwise.

    For handlers that only run a few indexed queries on their ``ReadDb`` session (the
    metadata GETs, a page of a space's model records). On SQLite such a read is CPU work
    in this process (WAL readers never wait for a lock), so the hop to the thread pool
    FastAPI makes for a plain ``def`` handler is pure cost: about 0.8 ms of a 3 ms
    artifact GET, measured. On PostgreSQL a query waits on the network, and waiting on
    the loop would stall every other request, so there the handler keeps its thread.
    Never for handlers that reach the blob store, embed text or write.
    """

    threaded = in_thread(handler)

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        db = next(value for value in kwargs.values() if isinstance(value, Session))
        if db.get_bind().dialect.name == "sqlite":
            return handler(*args, **kwargs)
        return await threaded(*args, **kwargs)

    return run


class OneHopRoute(APIRoute):
    """A route whose plain ``def`` handler crosses to the thread pool once per request.

    FastAPI runs a plain ``def`` handler in the thread pool and then validates what it
    returned in the thread pool again: two hand-offs (~0.2 ms each) per request. Wrapped in
    ``in_thread`` the handler takes one, and the validation runs on the loop, where the
    JSON encoding already runs (both hold the GIL wherever they run).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not (
            inspect.iscoroutinefunction(endpoint)
            or inspect.isgeneratorfunction(endpoint)
            or inspect.isasyncgenfunction(endpoint)
        ):
            endpoint = in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)
