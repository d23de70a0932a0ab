"""Native API: finding artifacts across every space the caller may view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from depot.access.service import require_org_visible
from depot.api.deps import CurrentPrincipal, ReadDb
from depot.api.native.artifacts import ArtifactPageOut, summary_out
from depot.api.routing import OneHopRoute
from depot.catalog import browse
from depot.catalog.service import get_org

__all__ = ["router"]

router = APIRouter(tags=["search"], route_class=OneHopRoute)


@router.get("/search", response_model=ArtifactPageOut)
def search(
    principal: CurrentPrincipal,
    db: ReadDb,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words to find.")],
    kind: str | None = None,
    org: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> ArtifactPageOut:
    """Artifacts whose name, display name or description holds every word of `q`."""
    org_row = None
    if org is not None:
        org_row = get_org(db, org)
        require_org_visible(db, principal, org_row)
    page = browse.list_artifacts(
        db, principal, org=org_row, kind=kind, query=q, limit=limit, cursor=cursor
    )
    return ArtifactPageOut(
        items=[summary_out(item) for item in page.items], next_cursor=page.next_cursor
    )
