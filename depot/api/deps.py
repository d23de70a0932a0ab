"""Request dependencies shared by every surface: services, sessions, the caller.

They are ``async`` on purpose. FastAPI runs each plain ``def`` dependency in the thread
pool, one hand-off (~0.2 ms of a 2-core budget) per dependency and two per ``yield``:
that, not the queries, capped metadata GETs at a few hundred a second. Here nothing
blocks the event loop: a session is only created (it connects on its first query, in
the handler's thread), the cached principal is a dict lookup, and what does touch the
database (authenticating a new token, ending a transaction) goes to the thread pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import replace
from typing import Annotated

from anyio import CancelScope, to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from depot.access.cache import current_generation
from depot.access.service import Principal, authenticate, record_token_use
from depot.db.base import utcnow
from depot.services import Services

__all__ = [
    "CurrentPrincipal",
    "ReadDb",
    "Svc",
    "WriteDb",
    "bearer_token",
    "get_services",
]


async def get_services(request: Request) -> Services:
    """The services of the app handling ``request``."""
    return _services(request)


def _services(request: Request) -> Services:
    # The dependencies below read the services here rather than depend on get_services:
    # FastAPI solves a sub-dependency's own parameters on every request even when its
    # value is cached, and the two it saved cost 5 % of an artifact GET's instructions.
    services: Services = request.app.state.services
    return services


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer <token>``, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@asynccontextmanager
async def _transaction(
    scope: AbstractContextManager[Session], *, leave_on_loop: bool = False
) -> AsyncIterator[Session]:
    """Enter ``scope`` on the loop (it only makes a Session object, which connects on its
    first query, in the handler's thread) and leave it in a thread: leaving commits or
    rolls back and returns the connection, which may wait on the database. Leaving is
    shielded, so a client hanging up cannot leak the connection. ``leave_on_loop``: the
    leaving cannot wait (a read on SQLite), so it skips the thread hop."""
    session = scope.__enter__()
    try:
        yield session
    except BaseException as exc:
        if leave_on_loop:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        with CancelScope(shield=True):
            await to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__)
        raise
    if leave_on_loop:
        scope.__exit__(None, None, None)
        return
    with CancelScope(shield=True):
        await to_thread.run_sync(scope.__exit__, None, None, None)


async def read_db(request: Request) -> AsyncIterator[Session]:
    """A read-only session for the request."""
    services = _services(request)
    # Ending a read on SQLite is a rollback in this process: nothing to wait for.
    leave_on_loop = services.database.is_sqlite
    async with _transaction(services.database.read(), leave_on_loop=leave_on_loop) as session:
        yield session


async def write_db(request: Request) -> AsyncIterator[Session]:
    """A session whose transaction commits when the handler returns without error."""
    services = _services(request)
    async with _transaction(services.database.write()) as session:
        yield session


def _authenticate(services: Services, token: str | None) -> Principal:
    generation = current_generation()
    with services.database.read() as db:
        principal = authenticate(db, token)
    if principal.token_use_is_stale and principal.token_id is not None:
        with services.database.write() as db:
            record_token_use(db, principal.token_id)
        principal = replace(principal, token_last_used_at=utcnow())
    if token is not None:
        services.principals.put(token, principal, generation)
    return principal


async def current_principal(request: Request) -> Principal:
    """The authenticated caller; 401 without a valid token."""
    services = _services(request)
    token = bearer_token(request)
    cached = services.principals.get(token) if token else None
    if cached is not None:
        return cached
    return await to_thread.run_sync(_authenticate, services, token)


Svc = Annotated[Services, Depends(get_services)]
# scope="function": the transaction ends when the handler returns, before the response is
# sent, so a client never hears of a write that is not committed yet (FastAPI's default
# would commit after sending, and a client's next request could miss the change).
ReadDb = Annotated[Session, Depends(read_db, scope="function")]
WriteDb = Annotated[Session, Depends(write_db, scope="function")]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
