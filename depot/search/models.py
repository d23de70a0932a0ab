"""Searchable chunks: text, its embedding, and (per engine) a full-text index over it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, UTCDateTime, utcnow

__all__ = ["FULL_TEXT_OBJECTS", "SearchChunk"]

# Made by the migration, not by the models: SQLite's FTS5 table (and its shadow tables)
# and PostgreSQL's generated tsvector column. Schema comparisons leave them alone.
FULL_TEXT_OBJECTS = ("search_chunks_fts", "text_search")


class SearchChunk(Base):
    """A piece of an indexed document with its embedding (float32, L2-normalised).

    A chunk belongs to an agent artifact version or to a knowledge source, and goes
    when its owner goes. ``collection`` groups what one query searches (a namespace).
    Full-text search uses SQLite FTS5 or a PostgreSQL ``tsvector`` (see the migration).
    """

    __tablename__ = "search_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(200), index=True)
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("knowledge_sources.id", ondelete="CASCADE"), nullable=True, index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
