"""Promoting agent artifacts into knowledge sources, and listing those sources."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require
from depot.agents.service import RecordView
from depot.catalog.models import File, Namespace, Space
from depot.db.base import utcnow
from depot.knowledge.models import KnowledgeSource

__all__ = ["list_sources", "promote"]


def promote(
    db: Session,
    principal: Principal,
    space: Space,
    view: RecordView,
    *,
    name: str | None = None,
    description: str | None = None,
) -> tuple[KnowledgeSource, bool]:
    """Make a knowledge source of an artifact version's content or file.

    Promoting the same version again returns the source made the first time.

    Returns:
        The source, and whether it was created now.
    """
    require(principal, space, Role.EDITOR, what=f"workspace {space.slug}")
    record = view.record
    existing = db.scalar(
        select(KnowledgeSource).where(KnowledgeSource.origin_version_id == view.version.id)
    )
    if existing is not None:
        record.promoted_to_source_id = existing.id
        return existing, False
    file = db.scalar(select(File).where(File.version_id == view.version.id).limit(1))
    source = KnowledgeSource(
        id=uuid.uuid4(),
        namespace_id=view.namespace.id,
        name=name or record.name,
        description=description if description is not None else view.version.description,
        origin_version_id=view.version.id,
        blob_sha256=file.blob_sha256 if file is not None else None,
        mime_type=record.mime_type,
        text=record.content_text or record.content or "",
        created_by_id=principal.user_id,
        created_at=utcnow(),
    )
    db.add(source)
    record.promoted_to_source_id = source.id
    db.flush()
    return source, True


def list_sources(db: Session, namespace: Namespace) -> list[KnowledgeSource]:
    """A namespace's knowledge sources, newest first."""
    return list(
        db.scalars(
            select(KnowledgeSource)
            .where(KnowledgeSource.namespace_id == namespace.id)
            .order_by(KnowledgeSource.created_at.desc())
        )
    )
