"""Signed URLs: a resource, a method and an expiry, authorised by an HMAC in the query.

The keys live in the metadata database, so every replica signs and verifies with
the same ones; the newest signs, all verify (so a new key can be added without
breaking URLs already handed out).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from depot.db.base import Base, UTCDateTime, utcnow
from depot.errors import Forbidden

__all__ = ["SigningKey", "Signer", "load_signer"]


class SigningKey(Base):
    """A secret used to sign URLs."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Signer:
    """Signs and verifies (method, resource, expiry) triples with the database's keys."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self._keys = keys
        self._current = max(keys)

    def _mac(self, key_id: int, method: str, resource: str, expires: int) -> str:
        message = f"{method.upper()}\n{resource}\n{expires}".encode()
        return hmac.new(self._keys[key_id], message, hashlib.sha256).hexdigest()

    def query(self, method: str, resource: str, *, expires_in: int) -> str:
        """The query string that authorises ``method`` on ``resource`` for ``expires_in`` s."""
        expires = int(time.time()) + expires_in
        signature = self._mac(self._current, method, resource, expires)
        return urlencode({"expires": expires, "key": self._current, "signature": signature})

    def knows(self, key: str | None) -> bool:
        """True if ``key`` names one of this signer's keys."""
        return key is not None and key.isdigit() and int(key) in self._keys

    def verify(
        self,
        method: str,
        resource: str,
        *,
        expires: str | None,
        key: str | None,
        signature: str | None,
    ) -> None:
        """Check a signed request.

        Raises:
            Forbidden: the signature is missing, wrong or made with an unknown key, or
                the URL has expired.
        """
        try:
            key_id, deadline = int(key or ""), int(expires or "")
        except ValueError:
            raise Forbidden("this URL is not signed") from None
        if key_id not in self._keys or not signature:
            raise Forbidden("this URL's signature is not valid")
        expected = self._mac(key_id, method, resource, deadline)
        if not hmac.compare_digest(expected, signature):
            raise Forbidden("this URL's signature is not valid")
        if deadline < time.time():
            raise Forbidden("this URL has expired")


def load_signer(db: Session) -> Signer:
    """The signer over the database's keys, creating the first key if there is none."""
    rows = list(db.scalars(select(SigningKey)))
    if not rows:
        db.add(SigningKey(secret=secrets.token_hex(32), created_at=utcnow()))
        db.flush()
        rows = list(db.scalars(select(SigningKey)))
    return Signer({row.id: bytes.fromhex(row.secret) for row in rows})
