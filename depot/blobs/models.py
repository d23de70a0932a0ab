"""The blob table: one row per stored content address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, UTCDateTime, utcnow

__all__ = ["Blob"]


class Blob(Base):
    """Bytes stored once under their SHA-256; files reference them, gc removes orphans."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Last time an upload produced or claimed these bytes. Garbage collection spares
    # blobs touched within its grace period, so a file about to be linked is safe.
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
