"""Native API: the orgs a caller belongs to and their spaces."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from depot.access.models import Role
from depot.access.service import require_org, require_org_visible
from depot.api.deps import CurrentPrincipal, ReadDb, WriteDb
from depot.api.routing import OneHopRoute
from depot.catalog.models import Space
from depot.catalog.service import create_space, get_org, list_orgs, list_spaces

__all__ = ["router"]

router = APIRouter(tags=["orgs and spaces"], route_class=OneHopRoute)


class OrgOut(BaseModel):
    slug: str
    name: str
    created_at: datetime


class SpaceCreate(BaseModel):
    slug: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=20_000)


class SpaceOut(BaseModel):
    org: str
    slug: str
    name: str
    description: str
    created_at: datetime


def _space_out(space: Space, org: str) -> SpaceOut:
    return SpaceOut(
        org=org,
        slug=space.slug,
        name=space.name,
        description=space.description,
        created_at=space.created_at,
    )


@router.get("/orgs", response_model=list[OrgOut])
def get_orgs(principal: CurrentPrincipal, db: ReadDb) -> list[OrgOut]:
    """The orgs the caller has a role in, by slug."""
    return [
        OrgOut(slug=org.slug, name=org.name, created_at=org.created_at)
        for org in list_orgs(db, principal)
    ]


@router.get("/orgs/{org}/spaces", response_model=list[SpaceOut])
def get_spaces(org: str, principal: CurrentPrincipal, db: ReadDb) -> list[SpaceOut]:
    """The org's spaces the caller may view, by slug."""
    row = get_org(db, org)
    require_org_visible(db, principal, row)
    return [_space_out(space, row.slug) for space in list_spaces(db, principal, org=row)]


@router.post("/orgs/{org}/spaces", status_code=201, response_model=SpaceOut)
def post_space(org: str, body: SpaceCreate, principal: CurrentPrincipal, db: WriteDb) -> SpaceOut:
    """Create a space (admins of the org)."""
    row = get_org(db, org)
    require_org(db, principal, row, Role.ADMIN)
    space = create_space(db, row, body.slug, name=body.name, description=body.description)
    space.created_by_id = principal.user_id
    return _space_out(space, row.slug)
