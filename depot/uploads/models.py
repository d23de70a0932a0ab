"""Upload session tables: a session and the chunks it has received."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, Json, UTCDateTime, new_id, utcnow

__all__ = ["UploadChunk", "UploadSession", "UploadStatus"]


class UploadStatus(StrEnum):
    """Where a session is in its life. Only the first two accept chunks."""

    INITIALIZED = "initialized"
    UPLOADING = "uploading"
    # Held while one request checks and commits the bytes; others are refused meanwhile.
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    ABORTED = "aborted"

    @property
    def is_open(self) -> bool:
        """True while the session still takes chunks."""
        return self in (UploadStatus.INITIALIZED, UploadStatus.UPLOADING)


class UploadSession(Base):
    """Bytes on their way into the blob store, in chunks, from any surface.

    With ``chunk_size`` set, every chunk but the last has exactly that size and
    ``expected_size`` is known. Without it (``chunk_size`` is NULL) parts may
    have any size and the total is learnt at completion; when the client says how
    many parts it will send, parts of one size are still written at their offsets.
    """

    __tablename__ = "upload_sessions"
    __table_args__ = (Index("ix_upload_sessions_status_expires", "status", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The space whose editors may use the session; NULL for sessions of the system itself.
    space_id: Mapped[int | None] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    expected_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expected_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chunk_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Free-sized parts: how many the client announced, and the size every part but the
    # last turned out to have (learnt from the first one), so parts land at their offsets.
    part_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    part_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.INITIALIZED)
    # The blob store's handle for the staged bytes (an S3 multipart upload id, say).
    storage_token: Mapped[str] = mapped_column(String(1024), default="")
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the surface that opened the session wants to remember (file name, target, ...).
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UploadChunk(Base):
    """A chunk that arrived whole and was durably staged."""

    __tablename__ = "upload_chunks"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Where the chunk sits in the shared staged file, or NULL if it was staged on its own.
    offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    etag: Mapped[str] = mapped_column(String(256), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
