"""Artifact, model and agent-skill versions of the ML API over the core catalog.

``stage`` opens a staged core version whose ``storage_root`` names it; bytes then
arrive through signed URLs (depot.ml.transfers); ``apply`` finalizes the staged
version whose root the manifest's source points at, updates a version when the
manifest names one, or records an external or inline version directly.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from depot.access.models import Role, User
from depot.access.service import Principal, require, visible_spaces
from depot.catalog.models import Alias, Artifact, ArtifactKind, Org, Space, Version, VersionStatus
from depot.catalog.service import (
    add_file,
    create_artifact,
    create_version,
    delete_version,
    fail_version,
    finalize_version,
    set_alias,
)
from depot.db.base import parse_integer
from depot.errors import Conflict, Invalid, NotFound
from depot.ml.repos import repo_by_name, tenant
from depot.ml.schemas import (
    AgentSkillManifest,
    AgentSkillSourceBlobStorage,
    AgentSkillSourceInline,
    ExternalBlobStorageSource,
    TrueFoundryManagedSource,
    VersionManifest,
)
from depot.uploads.service import UploadService

__all__ = [
    "FQN_PREFIX",
    "KIND_OF_TYPE",
    "VersionRecord",
    "VersionQuery",
    "apply_manifest",
    "delete_artifact",
    "delete_ml_version",
    "get_artifact",
    "get_version",
    "list_artifacts",
    "latest_version",
    "list_versions",
    "mark_stage_failure",
    "parse_fqn",
    "skill_front_matter",
    "stage",
    "storage_root",
    "set_tags",
    "version_for_transfer",
]

KIND_OF_TYPE = {
    "artifact-version": ArtifactKind.ARTIFACT,
    "model-version": ArtifactKind.MODEL,
    "agent-skill": ArtifactKind.AGENT_SKILL,
}
FQN_PREFIX = {
    ArtifactKind.ARTIFACT: "artifact",
    ArtifactKind.MODEL: "model",
    ArtifactKind.AGENT_SKILL: "agent-skill",
}
_KIND_OF_PREFIX = {prefix: kind for kind, prefix in FQN_PREFIX.items()}
# The clients check that a storage root looks like a bucket URI; the bytes never go there.
_ROOT = re.compile(r"^s3://depot/(\d+)/([0-9a-f-]{36})/([0-9a-f-]{36})/?$")
_FQN = re.compile(r"^([a-z-]+):([^/]+)/([^/]+)/([^/:]+)(?::([^/:]+))?$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.S)


@dataclass(frozen=True)
class VersionRecord:
    """A version with everything its ML API shape needs."""

    version: Version
    artifact: Artifact
    space: Space
    org: Org
    creator: User | None

    @property
    def fqn(self) -> str:
        """``artifact:{tenant}/{repo}/{name}:{number}`` (and model:, agent-skill:)."""
        prefix = FQN_PREFIX[ArtifactKind(self.artifact.kind)]
        base = f"{prefix}:{self.org.slug}/{self.space.slug}/{self.artifact.name}"
        return f"{base}:{self.version.number}" if self.version.number else base


@dataclass(frozen=True)
class VersionQuery:
    """The filters of a version listing."""

    fqn: str | None = None
    artifact_id: str | None = None
    ml_repo_id: str | None = None
    name: str | None = None
    version: str | None = None


def storage_root(version: Version, artifact: Artifact) -> str:
    """Where the clients think a staged version's files go (``s3://depot/<repo>/<artifact>/<version>/``)."""
    return f"s3://depot/{artifact.space_id}/{artifact.id}/{version.id}/"


def skill_front_matter(skill_md: str) -> dict[str, Any]:
    """The YAML front matter of a SKILL.md, which must name the skill and describe it.

    Raises:
        Invalid: there is no front matter, it is not YAML, or it lacks name or description.
    """
    match = _FRONT_MATTER.match(skill_md.lstrip("\ufeff"))
    loc = ("body", "manifest", "source", "skill_md")
    if match is None:
        raise Invalid("SKILL.md must start with YAML front matter between '---' lines", loc=loc)
    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise Invalid(f"SKILL.md front matter is not valid YAML: {exc}", loc=loc) from None
    if not isinstance(front, dict):
        raise Invalid("SKILL.md front matter must be a mapping", loc=loc)
    for key in ("name", "description"):
        if not isinstance(front.get(key), str) or not front[key].strip():
            raise Invalid(f"SKILL.md front matter needs a non-empty {key}", loc=loc)
    return front


def _space_for(db: Session, principal: Principal, ml_repo: str, role: Role) -> Space:
    space = repo_by_name(db, principal, tenant(db, principal), ml_repo)
    require(principal, space, role, what=f"ML repo {ml_repo}")
    return space


def _lineage(
    db: Session,
    principal: Principal,
    space: Space,
    name: str,
    kind: ArtifactKind,
    *,
    create: bool,
) -> Artifact:
    artifact = db.scalar(
        select(Artifact).where(Artifact.space_id == space.id, Artifact.name == name)
    )
    if artifact is None:
        if not create:
            raise NotFound(f"{FQN_PREFIX[kind]} {space.slug}/{name} not found")
        return create_artifact(db, space, name, kind, created_by_id=principal.user_id)
    if artifact.kind != kind:
        raise Conflict(
            f"{space.slug}/{name} is a {artifact.kind.replace('_', ' ')},"
            f" not a {kind.value.replace('_', ' ')}"
        )
    return artifact


def _dump(manifest: VersionManifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", exclude_none=True, by_alias=True)


def stage(db: Session, principal: Principal, manifest: VersionManifest) -> tuple[Version, Artifact]:
    """Open a staged version to upload files into; its number comes at finalize.

    Raises:
        Invalid: the source is not one that uploads to Depot (truefoundry, or inline skill).
    """
    kind = KIND_OF_TYPE[manifest.type]
    source = manifest.source
    if isinstance(manifest, AgentSkillManifest):
        if not isinstance(source, AgentSkillSourceInline):
            raise Invalid(
                "an agent skill is staged with an inline SKILL.md",
                loc=("body", "manifest", "source"),
            )
        skill_front_matter(source.skill_md)
    elif not isinstance(source, TrueFoundryManagedSource):
        raise Invalid(
            f"stage uploads files to Depot: source type must be truefoundry, not {source.type}",
            loc=("body", "manifest", "source", "type"),
        )
    space = _space_for(db, principal, manifest.ml_repo, Role.EDITOR)
    artifact = _lineage(db, principal, space, manifest.name, kind, create=True)
    version = create_version(
        db,
        artifact,
        created_by_id=principal.user_id,
        manifest=_dump(manifest),
        description=getattr(manifest, "description", None) or "",
        metadata=manifest.metadata,
    )
    return version, artifact


def apply_manifest(
    db: Session,
    principal: Principal,
    manifest: VersionManifest,
    *,
    uploads: UploadService,
) -> Version:
    """Finalize, update or record a version from a manifest (an "apply").

    - ``version`` set: update that version's description, metadata and alias.
    - a truefoundry (or blob-storage) source whose ``uri`` is a staged ``storage_root``:
      finalize that staged version with the next number.
    - an external source: record a new version that points at the URI.
    - an inline agent skill: record a new version holding its SKILL.md.
    """
    kind = KIND_OF_TYPE[manifest.type]
    space = _space_for(db, principal, manifest.ml_repo, Role.EDITOR)
    source = manifest.source
    if manifest.version is not None:
        artifact = _lineage(db, principal, space, manifest.name, kind, create=False)
        version = db.scalar(
            select(Version).where(
                Version.artifact_id == artifact.id,
                Version.number == manifest.version,
                Version.status == VersionStatus.READY,
            )
        )
        if version is None:
            raise NotFound(f"version {manifest.version} of {space.slug}/{manifest.name} not found")
        _describe(version, manifest, keep_source=True)
        _alias(db, artifact, version, getattr(manifest, "version_alias", None))
        return version
    if isinstance(source, TrueFoundryManagedSource | AgentSkillSourceBlobStorage):
        if not source.uri:
            raise Invalid(
                "source.uri is required: pass the storage_root that stage returned",
                loc=("body", "manifest", "source", "uri"),
            )
        artifact = _lineage(db, principal, space, manifest.name, kind, create=False)
        version = _staged_at(db, artifact, source.uri)
        if version.status == VersionStatus.READY:
            return version  # finalized already: a retry of the same apply
        _describe(version, manifest, keep_source=False)
        finalize_version(db, version)
        _alias(db, artifact, version, getattr(manifest, "version_alias", None))
        return version
    if isinstance(source, ExternalBlobStorageSource | AgentSkillSourceInline):
        artifact = _lineage(db, principal, space, manifest.name, kind, create=True)
        version = create_version(db, artifact, created_by_id=principal.user_id)
        if isinstance(source, AgentSkillSourceInline):
            skill_front_matter(source.skill_md)
            blob = uploads.upload_blob([source.skill_md.encode()], db=db)
            add_file(db, version, "SKILL.md", blob.sha256, content_type="text/markdown")
        _describe(version, manifest, keep_source=False)
        finalize_version(db, version)
        _alias(db, artifact, version, getattr(manifest, "version_alias", None))
        return version
    raise Invalid(
        f"a {source.type} source is read by the client, not the server",
        loc=("body", "manifest", "source", "type"),
    )


def _staged_at(db: Session, artifact: Artifact, uri: str) -> Version:
    """The version whose storage root is exactly ``uri``."""
    match = _ROOT.match(uri)
    version = db.get(Version, uuid.UUID(match.group(3))) if match else None
    if version is None or storage_root(version, artifact) != uri.rstrip("/") + "/":
        raise NotFound(f"no staged version of {artifact.name} at {uri}")
    if version.status == VersionStatus.FAILED:
        raise Invalid(f"the version staged at {uri} was marked failed; stage a new one")
    return version


def _describe(version: Version, manifest: VersionManifest, *, keep_source: bool) -> None:
    """Store a manifest's description, metadata and the manifest itself on a version."""
    stored = _dump(manifest)
    if keep_source and "source" in version.manifest:
        stored["source"] = version.manifest["source"]
    stored.pop("version", None)
    version.manifest = stored
    version.metadata_ = dict(manifest.metadata)
    description = getattr(manifest, "description", None)
    if description is None and isinstance(manifest.source, AgentSkillSourceBlobStorage):
        description = manifest.source.description
    version.description = description or ""


def _alias(db: Session, artifact: Artifact, version: Version, alias: str | None) -> None:
    """Point the manifest's ``version_alias`` at a finalized version (moving off the old one).

    The alias is kept as the version's label too, so the manifest reads it back.

    Raises:
        Conflict: another version of the artifact already has that alias.
    """
    previous = version.label
    if previous and previous != alias:
        old = db.get(Alias, (artifact.id, previous))
        if old is not None and old.version_id == version.id:
            db.delete(old)
            db.flush()
    if alias:
        taken = db.get(Alias, (artifact.id, alias))
        if taken is not None and taken.version_id != version.id:
            raise Conflict(
                f"version_alias {alias} already names another version of {artifact.name}"
            )
        set_alias(db, artifact, alias, version)
    version.label = alias


def mark_stage_failure(db: Session, principal: Principal, version_id: str) -> None:
    """Give up a staged version (its files are dropped); nothing happens to a failed one."""
    record = _load(db, principal, version_id, Role.EDITOR, staged=True)
    if record.version.status == VersionStatus.READY:
        raise Invalid("a finalized version cannot be marked as a failed stage")
    if record.version.status == VersionStatus.STAGED:
        fail_version(db, record.version)


def _load(
    db: Session, principal: Principal, version_id: str, role: Role, *, staged: bool = False
) -> VersionRecord:
    try:
        key = uuid.UUID(version_id)
    except ValueError:
        raise NotFound(f"version {version_id} not found") from None
    version = db.get(Version, key)
    if version is None or (not staged and version.status != VersionStatus.READY):
        raise NotFound(f"version {version_id} not found")
    artifact = db.get(Artifact, version.artifact_id)
    assert artifact is not None
    space = db.get(Space, artifact.space_id)
    assert space is not None
    require(principal, space, role, artifact_id=artifact.id, what=f"version {version_id}")
    return _record(db, version, artifact, space)


def _record(db: Session, version: Version, artifact: Artifact, space: Space) -> VersionRecord:
    org = db.get(Org, space.org_id)
    assert org is not None
    creator = db.get(User, version.created_by_id) if version.created_by_id else None
    return VersionRecord(version, artifact, space, org, creator)


def get_version(
    db: Session, principal: Principal, version_id: str, kind: ArtifactKind | None = None
) -> VersionRecord:
    """A finalized version by id (of ``kind``, if given).

    Raises:
        NotFound: no such version, not finalized, of another kind, or not visible.
    """
    record = _load(db, principal, version_id, Role.VIEWER)
    if kind is not None and record.artifact.kind != kind:
        raise NotFound(f"version {version_id} not found")
    return record


def version_for_transfer(
    db: Session, principal: Principal, version_id: str, *, write: bool
) -> VersionRecord:
    """A version to move bytes for: staged (to write, editors) or any live one (to read)."""
    record = _load(db, principal, version_id, Role.EDITOR if write else Role.VIEWER, staged=True)
    status = record.version.status
    if write and status != VersionStatus.STAGED:
        raise Invalid("files can only be written to a staged version")
    if not write and status == VersionStatus.FAILED:
        raise NotFound(f"version {version_id} not found")
    return record


def parse_fqn(fqn: str) -> tuple[ArtifactKind, str, str, str, str | None]:
    """``kind:tenant/repo/name[:version]`` → (kind, tenant, repo, name, version or None).

    Raises:
        Invalid: not an FQN of an artifact, model or agent skill.
    """
    match = _FQN.match(fqn)
    if match is None or match.group(1) not in _KIND_OF_PREFIX:
        raise Invalid(
            f"{fqn!r} is not an FQN like artifact:tenant/repo/name:1", loc=("query", "fqn")
        )
    prefix, org, repo, name, ref = match.groups()
    return _KIND_OF_PREFIX[prefix], org, repo, name, ref


def _fqn_conditions(db: Session, kind: ArtifactKind, fqn: str) -> list[ColumnElement[bool]] | None:
    """Conditions selecting the versions an FQN names, or ``None`` if it names nothing."""
    fqn_kind, org_slug, repo, name, ref = parse_fqn(fqn)
    if fqn_kind != kind:
        return None
    space = db.scalar(
        select(Space)
        .join(Org, Org.id == Space.org_id)
        .where(Org.slug == org_slug, Space.slug == repo)
    )
    if space is None:
        return None
    conditions = [Artifact.space_id == space.id, Artifact.name == name]
    if ref is not None and ref != "latest":
        number = parse_integer(ref)
        if number is not None:
            conditions.append(Version.number == number)
        else:
            named = select(Alias.version_id).where(
                Alias.name == ref, Alias.artifact_id == Artifact.id
            )
            conditions.append(Version.id.in_(named))
    return conditions


def list_versions(
    db: Session,
    principal: Principal,
    kind: ArtifactKind,
    filters: VersionQuery,
    *,
    limit: int,
    offset: int,
) -> tuple[list[VersionRecord], int]:
    """Finalized versions of ``kind`` the caller may view, newest first."""
    query = (
        select(Version, Artifact, Space)
        .join(Artifact, Artifact.id == Version.artifact_id)
        .join(Space, Space.id == Artifact.space_id)
        .where(
            Version.status == VersionStatus.READY, Artifact.kind == kind, visible_spaces(principal)
        )
    )
    if filters.fqn:
        conditions = _fqn_conditions(db, kind, filters.fqn)
        if conditions is None:
            return [], 0
        query = query.where(*conditions)
    if filters.artifact_id:
        query = query.where(Artifact.id == _uuid(filters.artifact_id))
    if filters.ml_repo_id:
        query = query.where(Space.id == _int(filters.ml_repo_id))
    if filters.name:
        query = query.where(Artifact.name == filters.name)
    if filters.version:
        query = query.where(Version.number == _int(filters.version))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.execute(
        query.order_by(Version.number.desc(), Version.id).offset(offset).limit(limit)
    ).all()
    return [_record(db, version, artifact, space) for version, artifact, space in rows], total


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches nothing


def _int(value: str) -> int:
    number = parse_integer(value)
    return -1 if number is None else number  # -1 matches nothing


def get_artifact(
    db: Session, principal: Principal, artifact_id: str, kind: ArtifactKind
) -> tuple[Artifact, Space, Org]:
    """An artifact (container) of ``kind`` by id.

    Raises:
        NotFound: no such artifact of that kind, or not visible.
    """
    artifact = db.get(Artifact, _uuid(artifact_id))
    if artifact is None or artifact.kind != kind:
        raise NotFound(f"{FQN_PREFIX[kind]} {artifact_id} not found")
    space = db.get(Space, artifact.space_id)
    assert space is not None
    require(
        principal,
        space,
        Role.VIEWER,
        artifact_id=artifact.id,
        what=f"{FQN_PREFIX[kind]} {artifact_id}",
    )
    org = db.get(Org, space.org_id)
    assert org is not None
    return artifact, space, org


def list_artifacts(
    db: Session,
    principal: Principal,
    kind: ArtifactKind,
    *,
    fqn: str | None,
    ml_repo_id: str | None,
    name: str | None,
    include_empty: bool,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Artifact, Space, Org]], int]:
    """Artifacts (containers) of ``kind`` the caller may view, newest first."""
    query = (
        select(Artifact, Space, Org)
        .join(Space, Space.id == Artifact.space_id)
        .join(Org, Org.id == Space.org_id)
        .where(Artifact.kind == kind, visible_spaces(principal))
    )
    if fqn:
        fqn_kind, org_slug, repo, fqn_name, _ref = parse_fqn(fqn)
        if fqn_kind != kind:
            return [], 0
        query = query.where(Org.slug == org_slug, Space.slug == repo, Artifact.name == fqn_name)
    if ml_repo_id:
        query = query.where(Space.id == _int(ml_repo_id))
    if name:
        query = query.where(Artifact.name == name)
    if not include_empty:
        ready = select(Version.id).where(
            Version.artifact_id == Artifact.id, Version.status == VersionStatus.READY
        )
        query = query.where(ready.exists())
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.execute(
        query.order_by(Artifact.created_at.desc(), Artifact.id).offset(offset).limit(limit)
    ).all()
    return [(artifact, space, org) for artifact, space, org in rows], total


def latest_version(db: Session, artifact: Artifact) -> Version | None:
    """The newest finalized version of an artifact."""
    return db.scalar(
        select(Version)
        .where(Version.artifact_id == artifact.id, Version.status == VersionStatus.READY)
        .order_by(Version.number.desc())
        .limit(1)
    )


def delete_ml_version(
    db: Session, principal: Principal, version_id: str, kind: ArtifactKind | None = None
) -> None:
    """Delete a version; its blobs become garbage unless used elsewhere."""
    record = _load(db, principal, version_id, Role.EDITOR, staged=True)
    if kind is not None and record.artifact.kind != kind:
        raise NotFound(f"version {version_id} not found")
    delete_version(db, record.version)


def delete_artifact(
    db: Session, principal: Principal, artifact_id: str, kind: ArtifactKind
) -> None:
    """Delete an artifact with all its versions."""
    artifact, space, _org = get_artifact(db, principal, artifact_id, kind)
    require(
        principal,
        space,
        Role.EDITOR,
        artifact_id=artifact.id,
        what=f"{FQN_PREFIX[kind]} {artifact_id}",
    )
    db.delete(artifact)
    db.flush()


def set_tags(
    db: Session, principal: Principal, version_id: str, tags: list[str], *, force: bool
) -> VersionRecord:
    """Replace a version's tags. A tag is on one version of an artifact at a time:
    taking it from another version needs ``force``.

    Raises:
        Conflict: a tag is on another version and ``force`` is false.
    """
    record = _load(db, principal, version_id, Role.EDITOR)
    wanted = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    others = db.scalars(
        select(Version).where(
            Version.artifact_id == record.artifact.id,
            Version.id != record.version.id,
            Version.status == VersionStatus.READY,
        )
    )
    for other in others:
        clash = [tag for tag in other.tags if tag in wanted]
        if clash and not force:
            raise Conflict(f"tag {clash[0]} is on version {other.number}; pass force to move it")
        if clash:
            other.tags = [tag for tag in other.tags if tag not in wanted]
    record.version.tags = wanted
    db.flush()
    return record
