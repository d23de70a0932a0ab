"""Agent artifacts over the core: a lineage is an artifact, each version a core version.

A change to the content or the file makes a new version (a new ``artifact_id``, the
same ``root_artifact_id``); any other change updates the latest version in place.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from depot.access.models import Role, User
from depot.access.service import Principal, require
from depot.agents.models import AgentRecord
from depot.agents.schemas import ArtifactChanges, ArtifactCreate
from depot.catalog.models import Artifact, ArtifactKind, File, Namespace, Org, Space, Version
from depot.catalog.service import add_file, create_artifact, create_version, finalize_version
from depot.db.base import add_unique, parse_integer, utcnow
from depot.errors import Conflict, Invalid, NotFound
from depot.uploads.service import UploadService

__all__ = [
    "IncomingFile",
    "RecordView",
    "TEXT_LIMIT",
    "create_record",
    "delete_record",
    "get_record",
    "is_text_type",
    "list_namespaces",
    "list_records",
    "list_versions",
    "namespace_collection",
    "record_file",
    "resolve",
    "update_record",
]

PREVIEW_CHARS = 500
# Text kept for search from a file; longer files are indexed on their first part.
TEXT_LIMIT = 1024 * 1024
_TEXT_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "text/",
)
_IN_PLACE = (
    "name",
    "description",
    "artifact_type",
    "thread_id",
    "summary",
    "keywords",
    "tags",
    "metadata",
    "source",
    "source_execution_id",
    "source_step_id",
    "source_tool",
    "scope",
    "status",
    "ttl_seconds",
    "is_pinned",
)


@dataclass(frozen=True)
class IncomingFile:
    """A file that arrived with a request, already stored as a blob."""

    sha256: str
    size: int
    file_name: str
    mime_type: str
    text: str | None


@dataclass(frozen=True)
class RecordView:
    """A record with the core objects its response needs."""

    record: AgentRecord
    version: Version
    space: Space
    namespace: Namespace
    creator: str | None

    @property
    def is_expired(self) -> bool:
        """Past its expiry and not pinned."""
        expires = self.record.expires_at
        return bool(expires and not self.record.is_pinned and expires <= utcnow())


def is_text_type(mime_type: str, file_name: str) -> bool:
    """Whether a file's bytes are text worth indexing (text/*, JSON, Markdown, CSV, ...)."""
    lowered = mime_type.lower()
    return lowered.startswith(_TEXT_TYPES) or file_name.lower().endswith(
        (".md", ".markdown", ".txt", ".csv", ".json", ".jsonl", ".yaml", ".yml", ".tsv")
    )


def namespace_collection(namespace: Namespace) -> str:
    """The search collection of a namespace."""
    return f"ns:{namespace.id}"


# -- where ----------------------------------------------------------------------------------


def resolve(
    db: Session,
    principal: Principal,
    org: str,
    workspace: str,
    namespace: str,
    role: Role,
    *,
    create: bool = False,
) -> tuple[Space, Namespace]:
    """The workspace (a space, by slug or id) and namespace (by name or id) of a request.

    With ``create``, an editor's first artifact brings the namespace into being.

    Raises:
        NotFound: no such org, workspace or namespace, or the caller may not see them.
        Forbidden: the caller lacks ``role`` on the workspace.
    """
    query = select(Space).join(Org, Org.id == Space.org_id).where(Org.slug == org)
    space = db.scalar(query.where(Space.slug == workspace))
    number = parse_integer(workspace)
    if space is None and number is not None:
        space = db.scalar(query.where(Space.id == number))
    if space is None:
        raise NotFound(f"workspace {org}/{workspace} not found")
    require(principal, space, role, what=f"workspace {org}/{workspace}")
    found = db.scalar(
        select(Namespace).where(Namespace.space_id == space.id, Namespace.name == namespace)
    )
    if found is None:
        try:
            found = db.scalar(
                select(Namespace).where(
                    Namespace.space_id == space.id, Namespace.id == uuid.UUID(namespace)
                )
            )
        except ValueError:
            found = None
    if found is None:
        if not create:
            raise NotFound(f"namespace {namespace} not found")
        found = create_namespace(db, principal, space, namespace)
    return space, found


def create_namespace(
    db: Session, principal: Principal, space: Space, name: str, description: str = ""
) -> Namespace:
    """Create a namespace in a workspace (editors).

    Raises:
        Invalid: the name is empty, too long or holds a slash.
        Conflict: the workspace has a namespace of that name.
    """
    require(principal, space, Role.EDITOR, what=f"workspace {space.slug}")
    if not name or len(name) > 200 or "/" in name or name != name.strip():
        raise Invalid(
            "namespace names are 1-200 characters without '/' or outer spaces",
            loc=("path", "namespace"),
        )
    namespace = Namespace(
        space_id=space.id,
        name=name,
        description=description,
        created_by_id=principal.user_id,
        created_at=utcnow(),
    )
    add_unique(db, namespace, f"namespace {name} already exists")
    return namespace


def list_namespaces(db: Session, space: Space) -> list[Namespace]:
    """A workspace's namespaces, by name."""
    return list(
        db.scalars(select(Namespace).where(Namespace.space_id == space.id).order_by(Namespace.name))
    )


# -- records --------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "artifact")[:60]


def _apply_ttl(record: AgentRecord, ttl_seconds: int | None) -> None:
    record.ttl_seconds = ttl_seconds
    record.expires_at = utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds else None


def _store_content(
    db: Session,
    uploads: UploadService,
    version: Version,
    record: AgentRecord,
    content: str | None,
    file: IncomingFile | None,
) -> None:
    """Put the version's bytes in place: the uploaded file, or the inline content as text."""
    if file is not None:
        path = _safe_file_name(file.file_name)
        add_file(db, version, path, file.sha256, content_type=file.mime_type)
        record.has_file, record.file_name, record.mime_type = True, path, file.mime_type
        record.size_bytes = file.size
        record.content = None
        record.content_text = file.text
    else:
        data = (content or "").encode()
        blob = uploads.upload_blob([data], db=db)
        path = record.file_name or f"{_slug(record.name)}.txt"
        add_file(
            db,
            version,
            _safe_file_name(path),
            blob.sha256,
            content_type=record.mime_type or "text/plain; charset=utf-8",
        )
        record.has_file, record.file_name = False, _safe_file_name(path)
        record.mime_type = record.mime_type or "text/plain"
        record.size_bytes = len(data)
        record.content = content
        record.content_text = content
    text = record.content_text or ""
    record.content_preview = text[:PREVIEW_CHARS] if text else None


def _safe_file_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base if base not in ("", ".", "..") else "file"


def _set_fields(
    version: Version, record: AgentRecord, values: ArtifactChanges, fields: set[str]
) -> None:
    for name in fields:
        value = getattr(values, name)
        if name == "description":
            version.description = value or ""
        elif name == "metadata":
            version.metadata_ = dict(value or {})
        elif name == "tags":
            version.tags = list(value or [])
        elif name == "keywords":
            record.keywords = list(value or [])
        elif name == "ttl_seconds":
            _apply_ttl(record, value)
        elif name == "is_pinned":
            record.is_pinned = bool(value)
        elif name in ("name", "artifact_type") and value is None:
            continue
        else:
            setattr(record, name, value)


def _queue_indexing(record: AgentRecord) -> None:
    record.is_indexed = False
    record.index_error = None
    record.index_attempts = 0
    record.index_due_at = utcnow()


def create_record(
    db: Session,
    uploads: UploadService,
    principal: Principal,
    space: Space,
    namespace: Namespace,
    body: ArtifactCreate,
    file: IncomingFile | None = None,
) -> RecordView:
    """Create an artifact (version 1 of a new lineage) with its content or file."""
    require(principal, space, Role.EDITOR, what=f"workspace {space.slug}")
    if file is None and body.content is None:
        raise Invalid(
            "an artifact needs content (or a file, through /upload)", loc=("body", "content")
        )
    lineage = create_artifact(
        db,
        space,
        f"agent-{uuid.uuid4().hex[:16]}",
        ArtifactKind.DOCUMENT,
        created_by_id=principal.user_id,
    )
    lineage.display_name = body.name
    version = create_version(db, lineage, created_by_id=principal.user_id)
    now = utcnow()
    record = AgentRecord(
        version_id=version.id,
        artifact_id=lineage.id,
        namespace_id=namespace.id,
        root_created_at=now,
        name=body.name,
        artifact_type=body.artifact_type or "document",
        file_name=body.file_name,
        mime_type=body.mime_type,
        keywords=[],
        extra={},
        created_at=now,
        updated_at=now,
    )
    _set_fields(version, record, body, set(body.model_fields_set) & set(_IN_PLACE))
    _store_content(db, uploads, version, record, body.content, file)
    _queue_indexing(record)
    finalize_version(db, version)
    db.add(record)
    db.flush()
    return _view(db, record)


def update_record(
    db: Session,
    uploads: UploadService,
    principal: Principal,
    space: Space,
    namespace: Namespace,
    artifact_id: str,
    changes: ArtifactChanges,
    file: IncomingFile | None = None,
) -> RecordView:
    """Change an artifact: new content or a new file make a new version, the rest is in place.

    Raises:
        Conflict: ``artifact_id`` is not the latest version of its lineage.
    """
    require(principal, space, Role.EDITOR, what=f"workspace {space.slug}")
    current = _record(db, namespace, artifact_id)
    if not current.is_latest:
        raise Conflict(
            f"artifact {artifact_id} has been replaced by version"
            f" {current.replaced_by_version}; update the latest version"
        )
    sent = set(changes.model_fields_set)
    version = db.get(Version, current.version_id)
    assert version is not None
    new_content = file is not None or ("content" in sent and changes.content != current.content)
    if not new_content:
        _set_fields(version, current, changes, sent & set(_IN_PLACE))
        if "file_name" in sent and changes.file_name:
            current.file_name = changes.file_name
        current.updated_at = utcnow()
        _queue_indexing(current)
        db.flush()
        return _view(db, current)
    lineage = db.get(Artifact, current.artifact_id)
    assert lineage is not None
    successor = create_version(
        db,
        lineage,
        created_by_id=principal.user_id,
        description=version.description,
        metadata=version.metadata_,
    )
    successor.tags = list(version.tags)
    now = utcnow()
    record = AgentRecord(
        version_id=successor.id,
        artifact_id=lineage.id,
        namespace_id=namespace.id,
        root_created_at=current.root_created_at,
        extra=dict(current.extra),
        created_at=now,
        updated_at=now,
        **{
            name: getattr(current, name)
            for name in (
                "thread_id",
                "name",
                "artifact_type",
                "summary",
                "keywords",
                "source",
                "source_execution_id",
                "source_step_id",
                "source_tool",
                "scope",
                "status",
                "ttl_seconds",
                "expires_at",
                "is_pinned",
                "mime_type",
            )
        },
        file_name=changes.file_name or (current.file_name if file is None else None),
    )
    if file is not None:
        record.mime_type = None
    _set_fields(successor, record, changes, sent & set(_IN_PLACE))
    content = changes.content if "content" in sent else current.content
    _store_content(db, uploads, successor, record, content, file)
    _queue_indexing(record)
    finalize_version(db, successor)
    current.is_latest = False
    current.replaced_by_version = successor.number
    current.updated_at = now
    db.add(record)
    db.flush()
    return _view(db, record)


def _record(db: Session, namespace: Namespace, artifact_id: str) -> AgentRecord:
    try:
        key = uuid.UUID(artifact_id)
    except ValueError:
        raise NotFound(f"artifact {artifact_id} not found") from None
    record = db.get(AgentRecord, key)
    if record is None or record.namespace_id != namespace.id:
        raise NotFound(f"artifact {artifact_id} not found")
    return record


def _view(db: Session, record: AgentRecord) -> RecordView:
    version = db.get(Version, record.version_id)
    namespace = db.get(Namespace, record.namespace_id)
    assert version is not None and namespace is not None
    space = db.get(Space, namespace.space_id)
    assert space is not None
    creator = db.get(User, version.created_by_id) if version.created_by_id else None
    return RecordView(record, version, space, namespace, creator.username if creator else None)


def get_record(db: Session, namespace: Namespace, artifact_id: str) -> RecordView:
    """One version of an artifact, by its ``artifact_id``.

    Raises:
        NotFound: no such artifact in the namespace.
    """
    return _view(db, _record(db, namespace, artifact_id))


def list_versions(db: Session, namespace: Namespace, artifact_id: str) -> list[RecordView]:
    """Every version of the artifact's lineage, oldest first."""
    record = _record(db, namespace, artifact_id)
    rows = db.scalars(
        select(AgentRecord)
        .join(Version, Version.id == AgentRecord.version_id)
        .where(AgentRecord.artifact_id == record.artifact_id)
        .order_by(Version.number)
    )
    return [_view(db, row) for row in rows]


def delete_record(
    db: Session, principal: Principal, space: Space, namespace: Namespace, artifact_id: str
) -> None:
    """Delete an artifact: its whole lineage, every version; unused blobs become garbage."""
    require(principal, space, Role.EDITOR, what=f"workspace {space.slug}")
    record = _record(db, namespace, artifact_id)
    lineage = db.get(Artifact, record.artifact_id)
    if lineage is not None:
        db.delete(lineage)
        db.flush()


def record_file(db: Session, view: RecordView) -> File:
    """The file of a version (the uploaded one, or the inline content as text).

    Raises:
        NotFound: the version has no file.
    """
    file = db.scalar(select(File).where(File.version_id == view.version.id).limit(1))
    if file is None:
        raise NotFound(f"artifact {view.version.id} has no file")
    return file


# -- listing --------------------------------------------------------------------------------


def _encode_cursor(record: AgentRecord) -> str:
    raw = json.dumps({"t": record.root_created_at.isoformat(), "a": str(record.artifact_id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(raw["t"]), uuid.UUID(raw["a"])
    except (ValueError, KeyError, TypeError):
        raise Invalid("cursor is not one this server gave out", loc=("query", "cursor")) from None


def latest_filter(
    namespace: Namespace, *, thread_id: str | None, types: list[str] | None, include_expired: bool
) -> list[Any]:
    """Conditions selecting the latest versions a listing or a query covers."""
    conditions: list[Any] = [
        AgentRecord.namespace_id == namespace.id,
        AgentRecord.is_latest.is_(True),
    ]
    if thread_id is not None:
        conditions.append(AgentRecord.thread_id == thread_id)
    if types:
        conditions.append(AgentRecord.artifact_type.in_(types))
    if not include_expired:
        conditions.append(
            or_(
                AgentRecord.expires_at.is_(None),
                AgentRecord.is_pinned.is_(True),
                AgentRecord.expires_at > utcnow(),
            )
        )
    return conditions


def list_records(
    db: Session,
    namespace: Namespace,
    *,
    thread_id: str | None,
    types: list[str] | None,
    include_expired: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[RecordView], int, str | None]:
    """A page of latest versions, newest lineage first, with the cursor of the next page.

    The order is by when each lineage began, so new versions keep their place and
    artifacts added meanwhile land before the first page, not inside later ones.
    """
    conditions = latest_filter(
        namespace, thread_id=thread_id, types=types, include_expired=include_expired
    )
    total = db.scalar(select(func.count()).select_from(AgentRecord).where(*conditions)) or 0
    query = select(AgentRecord).where(*conditions)
    if cursor:
        at, lineage = _decode_cursor(cursor)
        query = query.where(
            or_(
                AgentRecord.root_created_at < at,
                and_(AgentRecord.root_created_at == at, AgentRecord.artifact_id < lineage),
            )
        )
    rows = list(
        db.scalars(
            query.order_by(
                AgentRecord.root_created_at.desc(), AgentRecord.artifact_id.desc()
            ).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(rows[-1]) if more and rows else None
    return [_view(db, row) for row in rows], total, next_cursor
