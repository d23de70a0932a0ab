"""Knowledge sources: text an agent can search, made from an artifact's content or file."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["KnowledgeSource"]


class KnowledgeSource(Base):
    """A searchable document of a namespace, promoted from an agent artifact version."""

    __tablename__ = "knowledge_sources"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    namespace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("namespaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    # The artifact version it was promoted from; promoting it again finds this source.
    origin_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("versions.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    blob_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("blobs.sha256", ondelete="RESTRICT"), nullable=True, index=True
    )
    mime_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    is_indexed: Mapped[bool] = mapped_column(Boolean, default=False)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
