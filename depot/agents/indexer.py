"""Background work on agent artifacts: indexing for search, and removing expired ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, select

from depot.agents.models import AgentRecord
from depot.catalog.models import Artifact, Namespace, Version
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.knowledge.models import KnowledgeSource
from depot.search.service import Embedder, index_text

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
    with database.write() as db:
        record = db.get(AgentRecord, key)
        version = db.get(Version, key)
        namespace = db.get(Namespace, record.namespace_id) if record else None
        if record is None or version is None or namespace is None:
            return 0
        collection = f"ns:{namespace.id}"
        try:
            with db.begin_nested():
                count = index_text(
                    db,
                    embedder,
                    collection=collection,
                    version_id=version.id,
                    content=_document(record, version),
                    title=record.name,
                )
        except Exception as exc:  # noqa: BLE001 - any failure is reported on the record
            record.index_attempts += 1
            record.index_error = f"{type(exc).__name__}: {exc}"
            record.index_due_at = (
                utcnow() + timedelta(seconds=30 * 2**record.index_attempts)
                if record.index_attempts < MAX_INDEX_ATTEMPTS
                else None
            )
            log.warning("indexing artifact %s failed: %s", key, record.index_error)
            return 0
        record.is_indexed = True
        record.indexed_at = utcnow()
        record.index_collection = collection
        record.index_error = None
        record.index_attempts += 1
        record.index_due_at = None
        record.embedding_model_id = embedder.model_id
        record.chunk_count = count
    return 1


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
