"""GET /api/v1/whoami: who the token belongs to and what it may do."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from depot.access.service import list_grants
from depot.api.deps import CurrentPrincipal, ReadDb
from depot.api.routing import OneHopRoute
from depot.catalog.service import list_orgs

__all__ = ["router"]

router = APIRouter(tags=["access"], route_class=OneHopRoute)


class OrgRef(BaseModel):
    slug: str
    name: str


class RoleGrant(BaseModel):
    role: str
    scope: str


class Whoami(BaseModel):
    username: str
    is_superuser: bool
    orgs: list[OrgRef]
    roles: list[RoleGrant]


@router.get("/whoami", response_model=Whoami)
def whoami(principal: CurrentPrincipal, db: ReadDb) -> Whoami:
    """The caller's user name, the orgs they belong to and every role they hold."""
    return Whoami(
        username=principal.username,
        is_superuser=principal.is_superuser,
        orgs=[OrgRef(slug=org.slug, name=org.name) for org in list_orgs(db, principal)],
        roles=[
            RoleGrant(role=role.value, scope=scope) for role, scope in list_grants(db, principal)
        ],
    )
