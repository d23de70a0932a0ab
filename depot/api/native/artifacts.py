"""Native API: artifacts of a space and their versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require
from depot.api.deps import CurrentPrincipal, ReadDb, WriteDb
from depot.catalog import service as catalog
from depot.catalog.models import Artifact, Version
from depot.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["artifacts"])
ARTIFACT = "/orgs/{org}/spaces/{space}/artifacts/{name}"


class VersionCreate(BaseModel):
    """A release: a version recorded now, without files of its own."""

    label: str | None = Field(default=None, max_length=128)
    description: str = Field(default="", max_length=20_000)
    release_type: str | None = Field(
        default=None, max_length=64, description='For example "major", "minor" or "patch".'
    )
    released_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class VersionOut(BaseModel):
    id: uuid.UUID
    artifact_id: uuid.UUID
    number: int | None
    status: str
    label: str | None
    description: str
    release_type: str | None
    released_at: datetime | None
    metadata: dict[str, Any]
    commit_id: str
    created_at: datetime


def _version_out(version: Version) -> VersionOut:
    return VersionOut(
        id=version.id,
        artifact_id=version.artifact_id,
        number=version.number,
        status=version.status,
        label=version.label,
        description=version.description,
        release_type=version.release_type,
        released_at=version.released_at,
        metadata=version.metadata_,
        commit_id=version.commit_id,
        created_at=version.created_at,
    )


def _artifact(
    db: Session, principal: Principal, org: str, space: str, name: str, role: Role
) -> Artifact:
    row = catalog.get_space(db, org, space)
    require(principal, row, Role.VIEWER, what=f"space {org}/{space}")
    try:
        artifact = catalog.get_artifact(db, row, name)
    except NotFound:
        raise NotFound(f"artifact {org}/{space}/{name} not found") from None
    require(principal, row, role, artifact_id=artifact.id, what=f"artifact {org}/{space}/{name}")
    return artifact


@router.get(f"{ARTIFACT}/versions", response_model=list[VersionOut])
def list_versions(
    org: str, space: str, name: str, principal: CurrentPrincipal, db: ReadDb
) -> list[VersionOut]:
    """The artifact's finalized versions, newest first."""
    artifact = _artifact(db, principal, org, space, name, Role.VIEWER)
    return [_version_out(version) for version in catalog.list_versions(db, artifact)]


@router.post(f"{ARTIFACT}/versions", status_code=201, response_model=VersionOut)
def create_version(
    org: str, space: str, name: str, body: VersionCreate, principal: CurrentPrincipal, db: WriteDb
) -> VersionOut:
    """Record a release of the artifact (the next version number, no files of its own)."""
    artifact = _artifact(db, principal, org, space, name, Role.EDITOR)
    version = catalog.create_release(
        db,
        artifact,
        created_by_id=principal.user_id,
        label=body.label,
        description=body.description,
        release_type=body.release_type,
        released_at=body.released_at,
        metadata=body.metadata,
    )
    return _version_out(version)
