"""Counting, limiting and hashing bytes as they stream past."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from typing import Any

from depot.errors import DepotError, DigestMismatch, SizeMismatch

__all__ = ["Meter", "verify"]


class Meter:
    """Wraps a stream of blocks; counts them, hashes them, and stops at a limit.

    Args:
        chunks: the blocks to pass through.
        hasher: a hashlib object to update, or ``None`` to skip hashing.
        limit: the most bytes allowed; one more raises ``limit_error`` before
            the offending block is handed on.
        limit_error: :class:`SizeMismatch` when the limit is an announced size,
            :class:`PayloadTooLarge` when it is a configured maximum.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        hasher: Any | None = None,
        limit: int | None = None,
        limit_error: type[DepotError] = SizeMismatch,
    ) -> None:
        self._chunks = chunks
        self.hasher = hasher
        self.limit = limit
        self.limit_error = limit_error
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for block in self._chunks:
            if not block:
                continue
            self.size += len(block)
            if self.limit is not None and self.size > self.limit:
                raise self.limit_error(f"more than the allowed {self.limit} bytes arrived")
            if self.hasher is not None:
                self.hasher.update(block)
            yield block

    def drain(self) -> None:
        """Pass everything through, keeping only the count and the digest."""
        for _ in self:
            continue

    def hexdigest(self) -> str:
        """The hex digest of everything passed so far."""
        if self.hasher is None:
            raise RuntimeError("this meter does not hash")
        return str(self.hasher.hexdigest())


def verify(*, sha256: str | None, size: int | None, actual_sha256: str, actual_size: int) -> None:
    """Raise if the bytes received are not the bytes announced.

    Raises:
        SizeMismatch: ``size`` was given and differs from ``actual_size``.
        DigestMismatch: ``sha256`` was given and differs from ``actual_sha256``.
    """
    if size is not None and size != actual_size:
        raise SizeMismatch(f"expected {size} bytes, received {actual_size}")
    if sha256 is not None and not hmac.compare_digest(sha256.lower(), actual_sha256):
        raise DigestMismatch(
            f"sha256 mismatch: expected {sha256.lower()}, received bytes hash to {actual_sha256}"
        )
