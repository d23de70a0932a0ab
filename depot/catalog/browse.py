"""Listing and finding artifacts across the spaces a caller may view.

Pages are keyset pages: the cursor is the last row's sort key, so a page never
repeats or skips rows while others are added, and deep pages cost what the first does.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, func, literal, or_, select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require, visible_spaces
from depot.catalog.models import Alias, Artifact, ArtifactKind, Org, Space, Version, VersionStatus
from depot.catalog.service import ArtifactRow
from depot.db.columns import execute_columns
from depot.errors import Invalid

__all__ = ["ArtifactPage", "ArtifactSummary", "delete_artifact", "list_artifacts", "summarize"]


@dataclass(frozen=True)
class ArtifactSummary:
    """An artifact with what a listing shows about its versions."""

    id: uuid.UUID
    org: str
    space: str
    name: str
    kind: str
    description: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ArtifactPage:
    items: list[ArtifactSummary]
    next_cursor: str | None


def _encode(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        raise Invalid("cursor is not valid", loc=("query", "cursor")) from None
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise Invalid("cursor is not valid", loc=("query", "cursor"))
    return key


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_artifacts(
    db: Session,
    principal: Principal,
    *,
    org: Org | None = None,
    space: Space | None = None,
    kind: str | None = None,
    query: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ArtifactPage:
    """Artifacts the caller may view, by org, space and name.

    Args:
        org, space: narrow to one org or one space (checked visible by the caller).
        kind: only artifacts of this kind.
        query: words that must each appear in the name, display name or description.
        cursor: ``next_cursor`` of the previous page.

    Raises:
        Invalid: a bad kind, limit or cursor.
        NotFound: the space is not visible to the caller.
    """
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000", loc=("query", "limit"))
    conditions: list[ColumnElement[bool]] = [visible_spaces(principal)]
    if space is not None:
        require(principal, space, Role.VIEWER, what=f"space {space.slug}")
        conditions.append(Artifact.space_id == space.id)
    elif org is not None:
        conditions.append(Space.org_id == org.id)
    if kind is not None:
        try:
            conditions.append(Artifact.kind == ArtifactKind(kind).value)
        except ValueError:
            allowed = ", ".join(k.value for k in ArtifactKind)
            raise Invalid(f"kind must be one of {allowed}", loc=("query", "kind")) from None
    text = func.lower(
        Artifact.name + literal(" ") + Artifact.display_name + literal(" ") + Artifact.description
    )
    for word in (query or "").split()[:16]:
        conditions.append(text.like(_like(word), escape="\\"))
    if cursor:
        last_org, last_space, last_name = _decode(cursor)
        conditions.append(
            or_(
                Org.slug > last_org,
                and_(Org.slug == last_org, Space.slug > last_space),
                and_(Org.slug == last_org, Space.slug == last_space, Artifact.name > last_name),
            )
        )
    rows = db.execute(
        select(Artifact, Space.slug, Org.slug)
        .join(Space, Space.id == Artifact.space_id)
        .join(Org, Org.id == Space.org_id)
        .where(and_(*conditions))
        .order_by(Org.slug, Space.slug, Artifact.name)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = summarize(
        db, [(artifact, org_slug, space_slug) for artifact, space_slug, org_slug in rows]
    )
    next_cursor = _encode([items[-1].org, items[-1].space, items[-1].name]) if more else None
    return ArtifactPage(items, next_cursor)


# The two statements of summaries, built once (an artifact GET runs them: 440 -> 140 us).
_IDS: BindParameter[list[uuid.UUID]] = bindparam("ids", expanding=True)
_VERSION_COUNTS = (
    select(Version.artifact_id, func.count(), func.max(Version.number))
    .where(Version.artifact_id.in_(_IDS), Version.status == VersionStatus.READY)
    .group_by(Version.artifact_id)
)
_ALIASES = (
    select(Alias.artifact_id, Alias.name, Version.number)
    .join(Version, Version.id == Alias.version_id)
    .where(Alias.artifact_id.in_(_IDS))
    .order_by(Alias.name)
)


def summarize(
    db: Session, rows: Sequence[tuple[Artifact | ArtifactRow, str, str]]
) -> list[ArtifactSummary]:
    """Summaries of ``(artifact, org slug, space slug)`` rows, in their order, in two queries."""
    ids = [artifact.id for artifact, _org, _space in rows]
    if not ids:
        return []
    counts = {
        artifact_id: (count, latest)
        for artifact_id, count, latest in execute_columns(db, _VERSION_COUNTS, {"ids": ids})
    }
    aliases: dict[uuid.UUID, dict[str, int]] = {}
    for artifact_id, name, number in execute_columns(db, _ALIASES, {"ids": ids}):
        if number is not None:
            aliases.setdefault(artifact_id, {})[name] = number
    return [
        ArtifactSummary(
            id=artifact.id,
            org=org_slug,
            space=space_slug,
            name=artifact.name,
            kind=artifact.kind,
            description=artifact.description,
            latest_version=counts.get(artifact.id, (0, None))[1],
            version_count=counts.get(artifact.id, (0, None))[0],
            aliases=aliases.get(artifact.id, {}),
            created_at=artifact.created_at,
            updated_at=artifact.updated_at,
        )
        for artifact, org_slug, space_slug in rows
    ]


def delete_artifact(db: Session, artifact: Artifact) -> None:
    """Delete an artifact with every version, file and alias; unused blobs become garbage."""
    db.delete(artifact)
    db.flush()
