"""Native API: the namespaces of a space, and the knowledge sources in them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from depot.access.models import Role
from depot.access.service import require
from depot.agents import service as agents
from depot.api.deps import CurrentPrincipal, ReadDb, WriteDb
from depot.api.routing import OneHopRoute
from depot.catalog.models import Namespace
from depot.catalog.service import get_space
from depot.knowledge.service import list_sources

__all__ = ["router"]

router = APIRouter(tags=["namespaces"], route_class=OneHopRoute)
SPACE = "/orgs/{org}/spaces/{space}"


class NamespaceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)


class NamespaceOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime


class SourceOut(BaseModel):
    id: str
    name: str
    description: str
    origin_artifact_id: str | None
    mime_type: str | None
    is_indexed: bool
    chunk_count: int
    created_at: datetime


def _namespace_out(namespace: Namespace) -> NamespaceOut:
    return NamespaceOut(
        id=str(namespace.id),
        name=namespace.name,
        description=namespace.description,
        created_at=namespace.created_at,
    )


@router.get(f"{SPACE}/namespaces", response_model=list[NamespaceOut])
def list_namespaces(
    org: str, space: str, principal: CurrentPrincipal, db: ReadDb
) -> list[NamespaceOut]:
    """The space's namespaces, by name."""
    row = get_space(db, org, space)
    require(principal, row, Role.VIEWER, what=f"space {org}/{space}")
    return [_namespace_out(namespace) for namespace in agents.list_namespaces(db, row)]


@router.post(f"{SPACE}/namespaces", status_code=201, response_model=NamespaceOut)
def create_namespace(
    org: str, space: str, body: NamespaceCreate, principal: CurrentPrincipal, db: WriteDb
) -> NamespaceOut:
    """Create a namespace (editors of the space)."""
    row = get_space(db, org, space)
    require(principal, row, Role.VIEWER, what=f"space {org}/{space}")
    return _namespace_out(agents.create_namespace(db, principal, row, body.name, body.description))


@router.get(f"{SPACE}/namespaces/{{namespace}}/sources", response_model=list[SourceOut])
def list_knowledge_sources(
    org: str, space: str, namespace: str, principal: CurrentPrincipal, db: ReadDb
) -> list[SourceOut]:
    """Knowledge sources promoted into the namespace, newest first."""
    _space, ns = agents.resolve(db, principal, org, space, namespace, Role.VIEWER)
    return [
        SourceOut(
            id=str(source.id),
            name=source.name,
            description=source.description,
            origin_artifact_id=str(source.origin_version_id) if source.origin_version_id else None,
            mime_type=source.mime_type,
            is_indexed=source.is_indexed,
            chunk_count=source.chunk_count,
            created_at=source.created_at,
        )
        for source in list_sources(db, ns)
    ]
