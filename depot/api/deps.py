"""Request dependencies shared by every surface: services, sessions, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from depot.access.service import Principal, authenticate, record_token_use
from depot.services import Services

__all__ = ["CurrentPrincipal", "ReadDb", "Svc", "WriteDb", "bearer_token", "get_services"]


def get_services(request: Request) -> Services:
    """The services of the app handling ``request``."""
    services: Services = request.app.state.services
    return services


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer <token>``, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def read_db(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    """A read-only session for the request."""
    with services.database.read() as db:
        yield db


def write_db(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    """A session whose transaction commits when the handler returns without error."""
    with services.database.write() as db:
        yield db


def current_principal(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Principal:
    """The authenticated caller; 401 without a valid token."""
    token = bearer_token(request)
    with services.database.read() as db:
        principal = authenticate(db, token)
    if principal.token_use_is_stale and principal.token_id is not None:
        with services.database.write() as db:
            record_token_use(db, principal.token_id)
    return principal


Svc = Annotated[Services, Depends(get_services)]
ReadDb = Annotated[Session, Depends(read_db)]
WriteDb = Annotated[Session, Depends(write_db)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
