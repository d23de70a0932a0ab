"""Native API: the caller's own API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from depot.access import service as access
from depot.access.models import ApiToken, User
from depot.api.deps import CurrentPrincipal, ReadDb, WriteDb
from depot.api.routing import OneHopRoute
from depot.db.base import utcnow
from depot.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["tokens"], route_class=OneHopRoute)


class TokenCreate(BaseModel):
    name: str = Field(default="", max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="The token itself; shown this once.")


def _token_out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _user(db: ReadDb, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: CurrentPrincipal, db: ReadDb) -> list[TokenOut]:
    """The caller's tokens, newest first, revoked ones included."""
    return [_token_out(row) for row in access.list_tokens(db, _user(db, principal.user_id))]


@router.post("/tokens", status_code=201, response_model=NewTokenOut)
def create_token(body: TokenCreate, principal: CurrentPrincipal, db: WriteDb) -> NewTokenOut:
    """Issue a token for the caller; the response is the only time it is shown."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = access.create_token(
        db, _user(db, principal.user_id), name=body.name, expires_at=expires
    )
    return NewTokenOut(**_token_out(row).model_dump(), token=token)


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: str, principal: CurrentPrincipal, db: WriteDb) -> Response:
    """Revoke one of the caller's tokens; requests with it fail from now on."""
    access.revoke_token(db, token_id, user=_user(db, principal.user_id))
    return Response(status_code=204)
