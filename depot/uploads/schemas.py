"""What the upload engine hands back to the surfaces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["UploadView"]


@dataclass(frozen=True)
class UploadView:
    """A snapshot of an upload session and the chunks it holds."""

    id: uuid.UUID
    space_id: int | None
    created_by_id: int | None
    status: str
    expected_size: int | None
    expected_sha256: str | None
    chunk_size: int | None
    chunk_count: int | None
    received_bytes: int
    received_chunks: list[int]
    blob_sha256: str | None
    size: int | None
    error: str | None
    context: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    etags: dict[int, str] = field(default_factory=dict)

    @property
    def missing_chunks(self) -> list[int]:
        """Indexes not yet received, when the chunk count is known."""
        if self.chunk_count is None:
            return []
        have = set(self.received_chunks)
        return [index for index in range(self.chunk_count) if index not in have]
