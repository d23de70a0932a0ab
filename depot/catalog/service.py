"""Orgs, spaces, artifacts, versions, aliases and files: the catalog every surface shares."""

from __future__ import annotations

import hashlib
import posixpath
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from depot.access.service import Principal, visible_org_ids, visible_spaces
from depot.blobs.models import Blob
from depot.catalog.models import (
    Alias,
    Artifact,
    ArtifactKind,
    File,
    Org,
    Space,
    Version,
    VersionStatus,
)
from depot.db.base import add_unique, parse_integer, utcnow
from depot.db.columns import execute_columns
from depot.errors import Invalid, NotFound

__all__ = [
    "ArtifactRow",
    "FileRow",
    "SpaceRef",
    "VersionRow",
    "add_file",
    "check_path",
    "create_artifact",
    "create_org",
    "create_release",
    "create_space",
    "create_version",
    "delete_file",
    "delete_version",
    "fail_version",
    "finalize_version",
    "get_artifact",
    "get_org",
    "get_space",
    "get_space_and_artifact",
    "list_files",
    "list_orgs",
    "list_versions",
    "list_spaces",
    "read_artifact",
    "read_file",
    "read_files",
    "read_version",
    "remove_alias",
    "resolve_version",
    "set_alias",
]

_ORG_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Spaces double as ML repos, whose names may hold capitals.
_SPACE_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9_])?$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,127}$")

_Found = TypeVar("_Found")
_AnySelect = Select[*tuple[Any, ...]]


def _check(pattern: re.Pattern[str], value: str, what: str, rule: str) -> None:
    if not pattern.match(value) or ".." in value:
        raise Invalid(f"{what} {value!r} is not valid: {rule}", loc=(what.split()[-1],))


# -- orgs and spaces ----------------------------------------------------------------------


def create_org(db: Session, slug: str, *, name: str | None = None) -> Org:
    """Create an org.

    Raises:
        Invalid: the slug is not 1-64 lowercase letters, digits and dashes.
        Conflict: the slug is taken.
    """
    _check(_ORG_SLUG, slug, "org slug", "use 1-64 lowercase letters, digits and '-'")
    org = Org(slug=slug, name=name or slug, created_at=utcnow())
    add_unique(db, org, f"org {slug!r} already exists")
    return org


def get_org(db: Session, slug: str) -> Org:
    """The org called ``slug``.

    Raises:
        NotFound: no such org.
    """
    org = db.scalar(select(Org).where(Org.slug == slug))
    if org is None:
        raise NotFound(f"org {slug!r} not found")
    return org


def list_orgs(db: Session, principal: Principal) -> list[Org]:
    """The orgs the principal has any role in, by slug."""
    ids = visible_org_ids(principal, db)
    query = select(Org).order_by(Org.slug)
    if ids is not None:
        query = query.where(Org.id.in_(ids))
    return list(db.scalars(query))


def create_space(
    db: Session, org: Org, slug: str, *, name: str | None = None, description: str = ""
) -> Space:
    """Create a space in ``org``.

    Raises:
        Invalid: the slug is not 1-100 letters, digits, '.', '-' or '_'.
        Conflict: the org already has a space with that slug.
    """
    _check(
        _SPACE_SLUG,
        slug,
        "space slug",
        "use 1-100 letters, digits, '.', '-' or '_', starting and ending with a letter or digit",
    )
    now = utcnow()
    space = Space(
        org_id=org.id,
        slug=slug,
        name=name or slug,
        description=description,
        created_at=now,
        updated_at=now,
    )
    add_unique(db, space, f"space {org.slug}/{slug} already exists")
    return space


# The lookups nearly every request makes, built once: building a select costs more Python
# than SQLite takes to answer it (get_space 165 -> 62 us, measured).
_SPACE_BY_SLUGS = (
    select(Space)
    .join(Org, Org.id == Space.org_id)
    .where(Org.slug == bindparam("org_slug"), Space.slug == bindparam("space_slug"))
)
_SPACE_AND_ARTIFACT = _SPACE_BY_SLUGS.add_columns(Artifact).outerjoin(
    Artifact, (Artifact.space_id == Space.id) & (Artifact.name == bindparam("name"))
)
_ARTIFACT_BY_NAME = select(Artifact).where(
    Artifact.space_id == bindparam("space_id"), Artifact.name == bindparam("name")
)
_FILES_OF_VERSION = (
    select(File).where(File.version_id == bindparam("version_id")).order_by(File.path)
)


@dataclass(frozen=True, slots=True)
class SpaceRef:
    """A space as access checks and messages read it (a read's plain row)."""

    id: int
    org_id: int
    slug: str


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    """An artifact as a read shows it: a plain row, outside the session."""

    id: uuid.UUID
    name: str
    kind: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A version as a read shows it: a plain row, outside the session."""

    id: uuid.UUID
    artifact_id: uuid.UUID
    number: int | None
    status: str
    label: str | None
    description: str
    release_type: str | None
    released_at: datetime | None
    metadata_: dict[str, Any]
    commit_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FileRow:
    """A file of a version as a read shows it: a plain row, outside the session."""

    path: str
    size: int
    blob_sha256: str
    content_type: str


# The same reads as plain columns (the same joins and filters), for the GETs that only show
# what they read: the ORM's work per statement (identity map, instances, autoflush) was
# most of an artifact GET.
_SPACE_REF_AND_ARTIFACT = _SPACE_AND_ARTIFACT.with_only_columns(
    Space.id, Space.org_id, Space.slug, *(getattr(Artifact, name) for name in ArtifactRow.__slots__)
)
_FILE_ROWS = _FILES_OF_VERSION.with_only_columns(
    *(getattr(File, name) for name in FileRow.__slots__)
)
_FILE_ROW_AT = _FILE_ROWS.where(File.path == bindparam("path"))


class _VersionLookups:
    """How a version reference is looked up, for one choice of selected columns."""

    def __init__(self, *columns: Any) -> None:
        of_artifact = select(*columns).where(Version.artifact_id == bindparam("artifact_id"))
        ready = of_artifact.where(Version.status == VersionStatus.READY)
        self.latest = ready.order_by(Version.number.desc()).limit(1)
        self.by_number = ready.where(Version.number == bindparam("number"))
        # An alias names its version whatever the version's state; a label, the newest
        # ready version that carries it.
        self.by_alias = of_artifact.join(
            Alias, (Alias.version_id == Version.id) & (Alias.artifact_id == Version.artifact_id)
        ).where(Alias.name == bindparam("ref"))
        self.by_label = (
            ready.where(Version.label == bindparam("ref")).order_by(Version.number.desc()).limit(1)
        )

    def find(
        self,
        first: Callable[[_AnySelect, dict[str, Any]], _Found | None],
        artifact_id: uuid.UUID,
        ref: str | None,
    ) -> _Found | None:
        """What ``first`` finds for ``ref``: by number, alias or label; None or ``latest``
        is the newest ready version."""
        params: dict[str, Any] = {"artifact_id": artifact_id}
        number = parse_integer(ref or "")
        if ref in (None, "", "latest"):
            return first(self.latest, params)
        if number is not None:
            return first(self.by_number, {**params, "number": number})
        params["ref"] = ref
        return first(self.by_alias, params) or first(self.by_label, params)


_VERSIONS = _VersionLookups(Version)
_VERSION_ROWS = _VersionLookups(*(getattr(Version, name) for name in VersionRow.__slots__))


def get_space(db: Session, org_slug: str, space_slug: str) -> Space:
    """The space ``org_slug/space_slug``.

    Raises:
        NotFound: no such org or space.
    """
    space = db.scalar(_SPACE_BY_SLUGS, {"org_slug": org_slug, "space_slug": space_slug})
    if space is None:
        raise NotFound(f"space {org_slug}/{space_slug} not found")
    return space


def get_space_and_artifact(
    db: Session, org_slug: str, space_slug: str, name: str
) -> tuple[Space, Artifact | None]:
    """The space ``org_slug/space_slug`` and its artifact ``name`` if there is one, in one query.

    Raises:
        NotFound: no such org or space.
    """
    row = db.execute(
        _SPACE_AND_ARTIFACT, {"org_slug": org_slug, "space_slug": space_slug, "name": name}
    ).first()
    if row is None:
        raise NotFound(f"space {org_slug}/{space_slug} not found")
    return row[0], row[1]


def read_artifact(
    db: Session, org_slug: str, space_slug: str, name: str
) -> tuple[SpaceRef, ArtifactRow | None]:
    """:func:`get_space_and_artifact` as plain rows, for a read that only shows them.

    Raises:
        NotFound: no such org or space.
    """
    params = {"org_slug": org_slug, "space_slug": space_slug, "name": name}
    row = execute_columns(db, _SPACE_REF_AND_ARTIFACT, params).first()
    if row is None:
        raise NotFound(f"space {org_slug}/{space_slug} not found")
    space = SpaceRef(*row[:3])
    return space, None if row[3] is None else ArtifactRow(*row[3:])


def list_spaces(db: Session, principal: Principal, *, org: Org | None = None) -> list[Space]:
    """The spaces the principal may view, optionally within one org."""
    query = select(Space).where(visible_spaces(principal)).order_by(Space.org_id, Space.slug)
    if org is not None:
        query = query.where(Space.org_id == org.id)
    return list(db.scalars(query))


# -- artifacts and versions ---------------------------------------------------------------


def new_artifact(
    space: Space,
    name: str,
    kind: ArtifactKind | str,
    *,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    created_by_id: int | None = None,
    display_name: str = "",
) -> Artifact:
    """A checked, unsaved artifact for ``space``; :func:`insert_artifact` saves it.

    Raises:
        Invalid: bad name or kind.
    """
    _check(
        _ARTIFACT_NAME,
        name,
        "artifact name",
        "use 1-256 letters, digits, '.', '-' or '_', not starting with '.' or '-'",
    )
    try:
        kind = ArtifactKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in ArtifactKind)
        raise Invalid(f"artifact kind must be one of {allowed}", loc=("kind",)) from None
    now = utcnow()
    return Artifact(
        space_id=space.id,
        name=name,
        kind=kind.value,
        display_name=display_name,
        description=description,
        metadata_=dict(metadata or {}),
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
    )


def insert_artifact(db: Session, space: Space, artifact: Artifact) -> Artifact:
    """Save a new artifact made by :func:`new_artifact`.

    Raises:
        Conflict: the space already has an artifact with that name.
    """
    conflict = f"{space.slug} already has an artifact named {artifact.name!r}"
    add_unique(db, artifact, conflict)
    return artifact


def create_artifact(
    db: Session,
    space: Space,
    name: str,
    kind: ArtifactKind | str,
    *,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    created_by_id: int | None = None,
) -> Artifact:
    """Create an artifact (a named lineage of versions) in ``space``.

    Raises:
        Invalid: bad name or kind.
        Conflict: the space already has an artifact with that name.
    """
    artifact = new_artifact(
        space,
        name,
        kind,
        description=description,
        metadata=metadata,
        created_by_id=created_by_id,
    )
    return insert_artifact(db, space, artifact)


def get_artifact(db: Session, space: Space, name: str) -> Artifact:
    """The artifact ``name`` in ``space``.

    Raises:
        NotFound: no such artifact.
    """
    artifact = db.scalar(_ARTIFACT_BY_NAME, {"space_id": space.id, "name": name})
    if artifact is None:
        raise NotFound(f"artifact {space.slug}/{name} not found")
    return artifact


def create_version(
    db: Session,
    artifact: Artifact,
    *,
    created_by_id: int | None = None,
    label: str | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
) -> Version:
    """Start a new staged version of ``artifact``; it gets its number when finalized."""
    version_id = uuid.uuid4()
    now = utcnow()
    version = Version(
        id=version_id,
        artifact_id=artifact.id,
        status=VersionStatus.STAGED,
        label=label,
        description=description,
        metadata_=dict(metadata or {}),
        manifest=dict(manifest or {}),
        commit_id=commit_id_of(version_id),
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
    )
    db.add(version)
    db.flush()
    return version


def commit_id_of(version_id: uuid.UUID) -> str:
    """The 40-hex commit id a version shows where clients expect git (the HF surface)."""
    return hashlib.sha1(version_id.bytes).hexdigest()


def _next_number(db: Session, artifact_id: uuid.UUID) -> int:
    """The number the lineage's next version takes, with the lineage locked for it."""
    if db.get_bind().dialect.name != "sqlite":
        # Lock the lineage so two finalizations cannot take the same number (SQLite's
        # writers already hold the database's one write lock, taken at BEGIN IMMEDIATE).
        db.execute(select(Artifact.id).where(Artifact.id == artifact_id).with_for_update())
    latest = db.scalar(select(func.max(Version.number)).where(Version.artifact_id == artifact_id))
    return (latest or 0) + 1


def finalize_version(db: Session, version: Version) -> Version:
    """Make a staged version ready: give it the next number; it is immutable from now on.

    Raises:
        Invalid: the version is not staged.
    """
    if version.status != VersionStatus.STAGED:
        raise Invalid(f"version is {version.status}, only a staged version can be finalized")
    version.number = _next_number(db, version.artifact_id)
    version.status = VersionStatus.READY
    version.finalized_at = version.updated_at = utcnow()
    db.flush()
    return version


def create_release(
    db: Session,
    artifact: Artifact,
    *,
    created_by_id: int | None = None,
    label: str | None = None,
    description: str = "",
    release_type: str | None = None,
    released_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> Version:
    """Record a release of ``artifact``: a version, ready at once, numbered next.

    Files can be attached to the artifact and linked to the release (as the Model
    Repository API does); the version's own file set stays empty and immutable.
    """
    version_id = uuid.uuid4()
    now = utcnow()
    version = Version(
        id=version_id,
        artifact_id=artifact.id,
        number=_next_number(db, artifact.id),
        status=VersionStatus.READY,
        label=label,
        release_type=release_type,
        released_at=released_at,
        description=description,
        metadata_=dict(metadata or {}),
        manifest={},
        commit_id=commit_id_of(version_id),
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
        finalized_at=now,
    )
    db.add(version)
    db.flush()
    return version


def list_versions(db: Session, artifact: Artifact) -> list[Version]:
    """The artifact's ready versions, newest first."""
    return list(
        db.scalars(
            select(Version)
            .where(Version.artifact_id == artifact.id, Version.status == VersionStatus.READY)
            .order_by(Version.number.desc())
        )
    )


def fail_version(db: Session, version: Version) -> Version:
    """Mark a staged version failed; its files are dropped so their blobs can be collected."""
    if version.status == VersionStatus.READY:
        raise Invalid("a finalized version cannot be marked failed")
    version.status = VersionStatus.FAILED
    version.updated_at = utcnow()
    for file in db.scalars(select(File).where(File.version_id == version.id)):
        db.delete(file)
    db.flush()
    return version


def delete_version(db: Session, version: Version) -> None:
    """Delete a version with its files and aliases; unused blobs become garbage."""
    db.delete(version)
    db.flush()


def resolve_version(db: Session, artifact: Artifact, ref: str | None = None) -> Version:
    """Find a ready version by number, alias or label; ``None`` or ``latest`` is the newest.

    Raises:
        NotFound: nothing matches.
    """
    version: Version | None = _VERSIONS.find(db.scalar, artifact.id, ref)
    if version is None or version.status != VersionStatus.READY:
        raise NotFound(f"version {ref or 'latest'} of {artifact.name} not found")
    return version


def read_version(db: Session, artifact: ArtifactRow, ref: str | None = None) -> VersionRow:
    """:func:`resolve_version` as a plain row, for a read that only shows it.

    Raises:
        NotFound: nothing matches.
    """

    def first(statement: _AnySelect, params: dict[str, Any]) -> VersionRow | None:
        row = execute_columns(db, statement, params).first()
        return None if row is None else VersionRow(*row)

    version = _VERSION_ROWS.find(first, artifact.id, ref)
    if version is None or version.status != VersionStatus.READY:
        raise NotFound(f"version {ref or 'latest'} of {artifact.name} not found")
    return version


def set_alias(db: Session, artifact: Artifact, name: str, version: Version) -> Alias:
    """Point alias ``name`` of ``artifact`` at ``version``, moving it if it pointed elsewhere.

    Raises:
        Invalid: bad alias name, or the version is not a ready version of this artifact.
    """
    _check(_ALIAS, name, "alias name", "start with a letter; then letters, digits, '.', '-', '_'")
    if name == "latest" or name.isdigit():
        raise Invalid("'latest' and numbers are reserved version references", loc=("alias",))
    if version.artifact_id != artifact.id or version.status != VersionStatus.READY:
        raise Invalid("an alias can only point at a finalized version of the same artifact")
    alias = db.get(Alias, (artifact.id, name))
    if alias is None:
        alias = Alias(
            artifact_id=artifact.id, name=name, version_id=version.id, updated_at=utcnow()
        )
        db.add(alias)
    else:
        alias.version_id = version.id
        alias.updated_at = utcnow()
    db.flush()
    return alias


def remove_alias(db: Session, artifact: Artifact, name: str) -> None:
    """Remove alias ``name``.

    Raises:
        NotFound: the artifact has no such alias.
    """
    alias = db.get(Alias, (artifact.id, name))
    if alias is None:
        raise NotFound(f"alias {name!r} of {artifact.name} not found")
    db.delete(alias)
    db.flush()


# -- files --------------------------------------------------------------------------------


def check_path(path: str) -> str:
    """Normalise a file path inside a version: relative, '/'-separated, no '.' or '..' parts.

    Raises:
        Invalid: the path is empty, absolute, escapes the version, or is too long.
    """
    if not path or "\x00" in path or "\\" in path:
        raise Invalid(f"file path {path!r} is not valid", loc=("path",))
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise Invalid(
            f"file path {path!r} must be relative, without empty, '.' or '..' parts",
            loc=("path",),
        )
    normal = posixpath.normpath(path)
    if len(normal) > 1024:
        raise Invalid("file path is longer than 1024 characters", loc=("path",))
    return normal


def add_file(
    db: Session,
    version: Version,
    path: str,
    blob_sha256: str,
    *,
    content_type: str = "application/octet-stream",
    metadata: dict[str, Any] | None = None,
) -> File:
    """Link a stored blob into a staged version at ``path``, replacing what was there.

    Raises:
        Invalid: the version is not staged, or the path is not valid.
        NotFound: the blob is not recorded.
    """
    if version.status != VersionStatus.STAGED:
        raise Invalid(
            "files can only be added to a staged version; finalized versions are immutable"
        )
    path = check_path(path)
    blob = db.get(Blob, blob_sha256)
    if blob is None:
        raise NotFound(f"blob {blob_sha256} not found")
    existing = db.scalar(select(File).where(File.version_id == version.id, File.path == path))
    if existing is not None:
        db.delete(existing)
        db.flush()
    file = File(
        artifact_id=version.artifact_id,
        version_id=version.id,
        path=path,
        blob_sha256=blob.sha256,
        size=blob.size,
        content_type=content_type,
        metadata_=dict(metadata or {}),
        created_at=utcnow(),
    )
    db.add(file)
    db.flush()
    return file


def delete_file(db: Session, version: Version, path: str) -> None:
    """Remove ``path`` from a staged version.

    Raises:
        Invalid: the version is finalized.
        NotFound: no such file.
    """
    if version.status != VersionStatus.STAGED:
        raise Invalid("finalized versions are immutable")
    file = db.scalar(
        select(File).where(File.version_id == version.id, File.path == check_path(path))
    )
    if file is None:
        raise NotFound(f"file {path} not found")
    db.delete(file)
    db.flush()


def list_files(db: Session, version: Version) -> Sequence[File]:
    """Every file of ``version``, by path."""
    return list(db.scalars(_FILES_OF_VERSION, {"version_id": version.id}))


def read_files(db: Session, version_id: uuid.UUID) -> list[FileRow]:
    """:func:`list_files` as plain rows, for a read that only shows them."""
    return [FileRow(*row) for row in execute_columns(db, _FILE_ROWS, {"version_id": version_id})]


def read_file(db: Session, version_id: uuid.UUID, path: str) -> FileRow | None:
    """The file at ``path`` in the version, as a plain row, if there is one."""
    params = {"version_id": version_id, "path": path}
    row = execute_columns(db, _FILE_ROW_AT, params).first()
    return None if row is None else FileRow(*row)
