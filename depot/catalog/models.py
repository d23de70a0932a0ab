"""Catalog tables: orgs, spaces, artifacts, versions, aliases and files."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, Json, UTCDateTime, new_id, utcnow

__all__ = [
    "Alias",
    "Artifact",
    "ArtifactKind",
    "File",
    "Namespace",
    "Org",
    "Space",
    "Version",
    "VersionStatus",
]


class ArtifactKind(StrEnum):
    """What an artifact holds."""

    MODEL = "model"
    ARTIFACT = "artifact"
    AGENT_SKILL = "agent_skill"
    DOCUMENT = "document"


class VersionStatus(StrEnum):
    """Life of a version: staged while bytes arrive, ready once finalized (then immutable)."""

    STAGED = "staged"
    READY = "ready"
    FAILED = "failed"


class Org(Base):
    """An organisation: the tenant that owns spaces, teams and their role bindings."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Space(Base):
    """A space inside an org: an ML repo, a workspace, the first half of a repo id."""

    __tablename__ = "spaces"
    __table_args__ = (UniqueConstraint("org_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # What surfaces remember about a space (an ML repo's storage integration, say).
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Namespace(Base):
    """A named folder of a space where agents keep artifacts and knowledge sources."""

    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("space_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Artifact(Base):
    """A named, typed lineage of versions inside a space. Names are unique per space."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("space_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # What people call it ("Churn Prediction Model"); ``name`` is the slug in URLs.
    display_name: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    # Archived artifacts keep everything but drop out of default listings.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Version(Base):
    """One version of an artifact. Numbered and immutable once ready."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("artifact_id", "number"),
        Index("ix_versions_artifact_status", "artifact_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    # Assigned when the version becomes ready, so staged and failed ones leave no gaps.
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.STAGED)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Release metadata: a type such as "major", "minor", "patch" or "release", and a date.
    release_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    manifest: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Free labels; unlike aliases several versions may carry the same tag.
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    # A stable 40-hex id, for surfaces that speak in commits.
    commit_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Alias(Base):
    """A movable name for one version of an artifact, unique within the artifact."""

    __tablename__ = "aliases"

    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class File(Base):
    """A named file pointing at a blob by its SHA-256.

    Most files belong to a version (``version_id`` set) and are immutable with it.
    A file without a version is attached to the artifact itself, the way the Model
    Repository API attaches model artifacts to a product; several may share a path.
    """

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("version_id", "path"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    path: Mapped[str] = mapped_column(String(1024))
    # RESTRICT: a blob row cannot go while a file still points at it (gc relies on this).
    blob_sha256: Mapped[str] = mapped_column(
        ForeignKey("blobs.sha256", ondelete="RESTRICT"), index=True
    )
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
