"""Background work on agent artifacts: indexing for search, and removing expired ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from depot.agents.models import AgentRecord
from depot.catalog.models import Artifact, Namespace, Version
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.knowledge.models import KnowledgeSource
from depot.search.service import (
    EmbeddedDocument,
    Embedder,
    embed_document,
    index_text,
    store_document,
)

__all__ = ["MAX_INDEX_ATTEMPTS", "index_pending", "sweep_expired"]

log = logging.getLogger(__name__)

MAX_INDEX_ATTEMPTS = 5
# A claimed record is retried by others if its indexer has not finished by then.
_LEASE = timedelta(minutes=5)


def _document(record: AgentRecord, version: Version) -> str:
    """What is indexed: the text itself, after the summary and description when there are."""
    parts = (record.summary, version.description, record.content_text)
    return "\n\n".join(part for part in parts if part) or record.name


def index_pending(database: Database, embedder: Embedder, *, batch: int = 16) -> int:
    """Index the records and knowledge sources that wait for it; returns how many were done.

    Records are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and a lease, so
    several server processes never index the same one at once; failures are retried
    with a growing delay, up to :data:`MAX_INDEX_ATTEMPTS` times.
    """
    now = utcnow()
    with database.write() as db:
        claimed = list(
            db.scalars(
                select(AgentRecord)
                .where(AgentRecord.is_indexed.is_(False), AgentRecord.index_due_at <= now)
                .order_by(AgentRecord.index_due_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        for record in claimed:
            record.index_due_at = now + _LEASE
        keys = [record.version_id for record in claimed]
    done = 0
    for key in keys:
        done += _index_record(database, embedder, key)
    return done + _index_sources(database, embedder, batch=batch)


def _index_record(database: Database, embedder: Embedder, key: object) -> int:
    # Embedding happens between two short transactions, not inside one: on SQLite a write
    # transaction holds the database's only write lock, which every upload and metadata
    # change would otherwise wait on for the whole embedding (100 ms to seconds a record).
    with database.read() as db:
        seen = _what_to_index(db, key)
    if seen is None:
        return 0
    try:
        document: EmbeddedDocument | None = embed_document(embedder, seen[1], title=seen[2])
        error = None
    except Exception as exc:  # noqa: BLE001 - any failure is reported on the record
        document, error = None, f"{type(exc).__name__}: {exc}"
    with database.write() as db:
        record = db.get(AgentRecord, key, with_for_update=True)
        now = _what_to_index(db, key)
        if record is None or now is None:
            return 0
        if now != seen:
            # Changed while it was embedded: the change queued it again, the next run
            # indexes what it is now.
            return 0
        if document is not None:
            try:
                with db.begin_nested():
                    count = store_document(
                        db, document, collection=now[0], version_id=record.version_id
                    )
            except Exception as exc:  # noqa: BLE001 - any failure is reported on the record
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            record.index_attempts += 1
            record.index_error = error
            record.index_due_at = (
                utcnow() + timedelta(seconds=30 * 2**record.index_attempts)
                if record.index_attempts < MAX_INDEX_ATTEMPTS
                else None
            )
            log.warning("indexing artifact %s failed: %s", key, record.index_error)
            return 0
        record.is_indexed = True
        record.indexed_at = utcnow()
        record.index_collection = now[0]
        record.index_error = None
        record.index_attempts += 1
        record.index_due_at = None
        record.embedding_model_id = embedder.model_id
        record.chunk_count = count
    return 1


def _what_to_index(db: Session, key: object) -> tuple[str, str, str] | None:
    """The collection, document and title of a record waiting to be indexed, or None."""
    record = db.get(AgentRecord, key)
    version = db.get(Version, key)
    namespace = db.get(Namespace, record.namespace_id) if record else None
    if record is None or version is None or namespace is None or record.is_indexed:
        return None
    return f"ns:{namespace.id}", _document(record, version), record.name


def _index_sources(database: Database, embedder: Embedder, *, batch: int) -> int:
    with database.write() as db:
        sources = list(
            db.scalars(
                select(KnowledgeSource)
                .where(KnowledgeSource.is_indexed.is_(False))
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        for source in sources:
            source.chunk_count = index_text(
                db,
                embedder,
                collection=f"ns:{source.namespace_id}",
                source_id=source.id,
                content=source.text or source.name,
                title=source.name,
            )
            source.is_indexed = True
    return len(sources)


def sweep_expired(database: Database, *, grace: timedelta) -> int:
    """Delete artifacts whose latest version expired more than ``grace`` ago (not pinned).

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so replicas sweeping
    at once split the work instead of repeating it.
    """
    cutoff = utcnow() - grace
    with database.write() as db:
        expired = list(
            db.scalars(
                select(AgentRecord.artifact_id)
                .where(
                    and_(
                        AgentRecord.is_latest.is_(True),
                        AgentRecord.is_pinned.is_(False),
                        AgentRecord.expires_at.is_not(None),
                        AgentRecord.expires_at <= cutoff,
                    )
                )
                .with_for_update(skip_locked=True)
            )
        )
        for lineage_id in expired:
            lineage = db.get(Artifact, lineage_id)
            if lineage is not None:
                db.delete(lineage)
    if expired:
        log.info("removed %d expired agent artifacts", len(expired))
    return len(expired)
