"""Native API: artifacts of a space, their versions, files and aliases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, SpaceKey, require
from depot.api.deps import CurrentPrincipal, ReadDb, Svc, WriteDb
from depot.api.download import blob_response
from depot.api.routing import OneHopRoute, short_read
from depot.catalog import browse
from depot.catalog import service as catalog
from depot.catalog.models import Alias, Artifact, Space, Version
from depot.db.columns import execute_columns
from depot.errors import NotFound

__all__ = ["ArtifactPageOut", "ArtifactOut", "router", "summary_out"]

router = APIRouter(tags=["artifacts"], route_class=OneHopRoute)
SPACE = "/orgs/{org}/spaces/{space}"
ARTIFACT = f"{SPACE}/artifacts/{{name}}"


class ArtifactOut(BaseModel):
    id: uuid.UUID
    org: str
    space: str
    name: str
    kind: str
    description: str
    latest_version: int | None = Field(description="Number of the newest version, if any.")
    version_count: int
    aliases: dict[str, int] = Field(description="Alias name to version number.")
    created_at: datetime | None
    updated_at: datetime | None


class ArtifactPageOut(BaseModel):
    items: list[ArtifactOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ArtifactCreate(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    kind: str = Field(default="artifact", description="model, artifact, agent_skill or document.")
    description: str = Field(default="", max_length=20_000)
    metadata: dict[str, Any] = Field(default_factory=dict)


class VersionCreate(BaseModel):
    """A release: a version recorded now, without files of its own."""

    label: str | None = Field(default=None, max_length=128)
    description: str = Field(default="", max_length=20_000)
    release_type: str | None = Field(
        default=None, max_length=64, description='For example "major", "minor" or "patch".'
    )
    released_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileOut(BaseModel):
    path: str
    size: int
    sha256: str
    content_type: str


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
    aliases: list[str] = Field(default_factory=list)
    created_at: datetime


class VersionDetailOut(VersionOut):
    org: str
    space: str
    name: str
    kind: str
    size: int = Field(description="Total bytes of the version's files.")
    files: list[FileOut]


class AliasSet(BaseModel):
    version: str = Field(description="A version number, alias, label or `latest`.")


def summary_out(summary: browse.ArtifactSummary) -> ArtifactOut:
    return ArtifactOut(**summary.__dict__)


def version_out(
    version: Version | catalog.VersionRow, aliases: list[str] | None = None
) -> VersionOut:
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
        aliases=aliases or [],
        created_at=version.created_at,
    )


_ALIASES = (
    select(Alias.version_id, Alias.name)
    .where(Alias.artifact_id == bindparam("artifact_id"))
    .order_by(Alias.name)
)


def _aliases_by_version(db: Session, artifact_id: uuid.UUID) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    for version_id, name in execute_columns(db, _ALIASES, {"artifact_id": artifact_id}):
        found.setdefault(version_id, []).append(name)
    return found


def _space(db: Session, principal: Principal, org: str, space: str, role: Role) -> Space:
    row = catalog.get_space(db, org, space)
    require(principal, row, role, what=f"space {org}/{space}")
    return row


def load_artifact(
    db: Session, principal: Principal, org: str, space: str, name: str, role: Role
) -> Artifact:
    """The artifact ``org/space/name`` if the caller holds ``role`` on it."""
    row, artifact = catalog.get_space_and_artifact(db, org, space, name)
    return _required(principal, row, artifact, role, f"{org}/{space}", name)


def read_artifact(
    db: Session, principal: Principal, org: str, space: str, name: str
) -> catalog.ArtifactRow:
    """The artifact ``org/space/name`` as a plain row, if the caller may view it."""
    row, artifact = catalog.read_artifact(db, org, space, name)
    return _required(principal, row, artifact, Role.VIEWER, f"{org}/{space}", name)


_Loaded = TypeVar("_Loaded", Artifact, catalog.ArtifactRow)


def _required(
    principal: Principal,
    space_row: SpaceKey,
    artifact: _Loaded | None,
    role: Role,
    space: str,
    name: str,
) -> _Loaded:
    """``artifact`` (``name`` in space ``org/space``) if it exists for the caller, who
    must see the space and hold ``role`` on the artifact."""
    require(principal, space_row, Role.VIEWER, what=f"space {space}")
    if artifact is None:
        raise NotFound(f"artifact {space}/{name} not found")
    require(principal, space_row, role, artifact_id=artifact.id, what=f"artifact {space}/{name}")
    return artifact


def _summary(
    db: Session, artifact: Artifact | catalog.ArtifactRow, org: str, space: str
) -> ArtifactOut:
    return summary_out(browse.summarize(db, [(artifact, org, space)])[0])


@router.get(f"{SPACE}/artifacts", response_model=ArtifactPageOut)
def list_artifacts(
    org: str,
    space: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    kind: str | None = None,
    q: Annotated[str | None, Query(description="Words to find in names and descriptions.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> ArtifactPageOut:
    """The space's artifacts by name, a page at a time."""
    row = _space(db, principal, org, space, Role.VIEWER)
    page = browse.list_artifacts(
        db, principal, space=row, kind=kind, query=q, limit=limit, cursor=cursor
    )
    return ArtifactPageOut(
        items=[summary_out(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.post(f"{SPACE}/artifacts", status_code=201, response_model=ArtifactOut)
def create_artifact(
    org: str, space: str, body: ArtifactCreate, principal: CurrentPrincipal, db: WriteDb
) -> ArtifactOut:
    """Create an empty artifact (editors); pushing to a new name creates one too."""
    row = _space(db, principal, org, space, Role.EDITOR)
    artifact = catalog.create_artifact(
        db,
        row,
        body.name,
        body.kind,
        description=body.description,
        metadata=body.metadata,
        created_by_id=principal.user_id,
    )
    return _summary(db, artifact, org, row.slug)


@router.get(ARTIFACT, response_model=ArtifactOut)
@short_read
def get_artifact(
    org: str, space: str, name: str, principal: CurrentPrincipal, db: ReadDb
) -> ArtifactOut:
    """One artifact with its latest version number, version count and aliases."""
    return _summary(db, read_artifact(db, principal, org, space, name), org, space)


@router.delete(ARTIFACT, status_code=204, response_class=Response)
def delete_artifact(
    org: str, space: str, name: str, principal: CurrentPrincipal, db: WriteDb
) -> Response:
    """Delete the artifact and every version of it (editors); bytes go at the next gc."""
    artifact = load_artifact(db, principal, org, space, name, Role.EDITOR)
    browse.delete_artifact(db, artifact)
    return Response(status_code=204)


@router.get(f"{ARTIFACT}/versions", response_model=list[VersionOut])
def list_versions(
    org: str, space: str, name: str, principal: CurrentPrincipal, db: ReadDb
) -> list[VersionOut]:
    """The artifact's finalized versions, newest first."""
    artifact = load_artifact(db, principal, org, space, name, Role.VIEWER)
    aliases = _aliases_by_version(db, artifact.id)
    return [
        version_out(version, aliases.get(version.id))
        for version in catalog.list_versions(db, artifact)
    ]


@router.post(f"{ARTIFACT}/versions", status_code=201, response_model=VersionOut)
def create_version(
    org: str, space: str, name: str, body: VersionCreate, principal: CurrentPrincipal, db: WriteDb
) -> VersionOut:
    """Record a release of the artifact (the next version number, no files of its own)."""
    artifact = load_artifact(db, principal, org, space, name, Role.EDITOR)
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
    return version_out(version)


@router.get(f"{ARTIFACT}/versions/{{ref}}", response_model=VersionDetailOut)
@short_read
def get_version(
    org: str, space: str, name: str, ref: str, principal: CurrentPrincipal, db: ReadDb
) -> VersionDetailOut:
    """A version by number, alias, label or `latest`, with its files."""
    artifact = read_artifact(db, principal, org, space, name)
    version = catalog.read_version(db, artifact, ref)
    files = catalog.read_files(db, version.id)
    base = version_out(version, _aliases_by_version(db, artifact.id).get(version.id))
    return VersionDetailOut(
        **base.model_dump(),
        org=org,
        space=space,
        name=artifact.name,
        kind=artifact.kind,
        size=sum(file.size for file in files),
        files=[_file_out(file) for file in files],
    )


def _file_out(file: catalog.FileRow) -> FileOut:
    return FileOut(
        path=file.path, size=file.size, sha256=file.blob_sha256, content_type=file.content_type
    )


@router.delete(f"{ARTIFACT}/versions/{{ref}}", status_code=204, response_class=Response)
def delete_version(
    org: str, space: str, name: str, ref: str, principal: CurrentPrincipal, db: WriteDb
) -> Response:
    """Delete one version with its files and aliases (editors)."""
    artifact = load_artifact(db, principal, org, space, name, Role.EDITOR)
    catalog.delete_version(db, catalog.resolve_version(db, artifact, ref))
    return Response(status_code=204)


@router.get(f"{ARTIFACT}/versions/{{ref}}/files/{{path:path}}", response_class=Response)
@router.head(
    f"{ARTIFACT}/versions/{{ref}}/files/{{path:path}}",
    response_class=Response,
    operation_id="head_file",
)
def download_file(
    org: str,
    space: str,
    name: str,
    ref: str,
    path: str,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    svc: Svc,
) -> Response:
    """A file's bytes (byte ranges allowed), or a 307 to the store's URL for them."""
    artifact = read_artifact(db, principal, org, space, name)
    version = catalog.read_version(db, artifact, ref)
    file = catalog.read_file(db, version.id, catalog.check_path(path))
    if file is None:
        raise NotFound(f"file {path} not found in version {version.number} of {name}")
    return blob_response(
        request,
        svc.store,
        sha256=file.blob_sha256,
        size=file.size,
        file_name=file.path.rsplit("/", 1)[-1],
        content_type=file.content_type,
        missing=f"the bytes of {path} are missing from storage",
    )


@router.put(f"{ARTIFACT}/aliases/{{alias}}", response_model=VersionOut)
def put_alias(
    org: str,
    space: str,
    name: str,
    alias: str,
    body: AliasSet,
    principal: CurrentPrincipal,
    db: WriteDb,
) -> VersionOut:
    """Point an alias at a version, moving it if it pointed elsewhere (editors)."""
    artifact = load_artifact(db, principal, org, space, name, Role.EDITOR)
    version = catalog.resolve_version(db, artifact, body.version)
    catalog.set_alias(db, artifact, alias, version)
    return version_out(version, _aliases_by_version(db, artifact.id).get(version.id))


@router.delete(f"{ARTIFACT}/aliases/{{alias}}", status_code=204, response_class=Response)
def delete_alias(
    org: str, space: str, name: str, alias: str, principal: CurrentPrincipal, db: WriteDb
) -> Response:
    """Remove an alias (editors); the version stays."""
    artifact = load_artifact(db, principal, org, space, name, Role.EDITOR)
    catalog.remove_alias(db, artifact, alias)
    return Response(status_code=204)
