"""The agent artifact record: what the agent artifacts API says about one version."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, Json, UTCDateTime, utcnow

__all__ = ["AgentRecord"]


class AgentRecord(Base):
    """One version of an agent artifact (``artifact_id`` is the core version's id).

    The lineage (``root_artifact_id``) is the core artifact; description, metadata
    and tags live on the core version; the file, if any, is the version's one file.
    """

    __tablename__ = "agent_records"
    __table_args__ = (
        Index("ix_agent_records_listing", "namespace_id", "is_latest", "root_created_at"),
        Index("ix_agent_records_thread", "namespace_id", "thread_id"),
        Index("ix_agent_records_index_queue", "is_indexed", "index_due_at"),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    namespace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    # When the lineage began: lists order by it, so a new version keeps its place.
    root_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    thread_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    name: Mapped[str] = mapped_column(String(500))
    artifact_type: Mapped[str] = mapped_column(String(100), default="document")
    is_latest: Mapped[bool] = mapped_column(Boolean, default=True)
    replaced_by_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_preview: Mapped[str | None] = mapped_column(Text, nullable=True)
    has_file: Mapped[bool] = mapped_column(Boolean, default=False)
    file_name: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    mime_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    keywords: Mapped[list[str]] = mapped_column(Json, default=list)
    source: Mapped[str | None] = mapped_column(String(500), nullable=True)
    source_execution_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_step_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_tool: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scope: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ttl_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    is_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    is_indexed: Mapped[bool] = mapped_column(Boolean, default=False)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    index_collection: Mapped[str | None] = mapped_column(String(200), nullable=True)
    index_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    index_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the indexer should (re)try; NULL once indexed or given up.
    index_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    embedding_model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    promoted_to_source_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
