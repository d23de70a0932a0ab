"""Authenticated principals kept for a few seconds, so a request does not re-read them.

Authenticating reads the token, its user and every role binding that applies (about 1 ms
of a metadata GET's budget), and a client scripting against Depot sends the same token
many times a second. A successful authentication is kept for :data:`PRINCIPAL_TTL_SECONDS`
under the token's SHA-256 (the token itself is not kept).

Freshness: any committed change to tokens, users, teams or role bindings made by this
process empties the cache at once (see :func:`_note_access_changes`); a change made by
another replica is seen here within the TTL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from depot.access.models import ApiToken, RoleBinding, Team, TeamMember, User
from depot.access.service import Principal

__all__ = ["PRINCIPAL_TTL_SECONDS", "PrincipalCache", "access_changed"]

PRINCIPAL_TTL_SECONDS = 5.0
_MAX_ENTRIES = 10_000
_ACCESS_TABLES = (RoleBinding, Team, TeamMember, User)

_generation = 0  # bumped by every committed access change of this process
_generation_lock = threading.Lock()


def access_changed() -> None:
    """Forget every cached principal of this process (called after access changes commit)."""
    global _generation
    with _generation_lock:
        _generation += 1


class PrincipalCache:
    """Principals by token digest, each for at most :data:`PRINCIPAL_TTL_SECONDS`."""

    def __init__(self, ttl: float = PRINCIPAL_TTL_SECONDS) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, int, Principal]] = {}

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        """The principal cached for ``token``, if still fresh."""
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, generation, principal = entry
            if expires > time.monotonic() and generation == _generation:
                return principal
            del self._entries[key]
            return None

    def put(self, token: str, principal: Principal, generation: int) -> None:
        """Keep ``principal``, read while :func:`current_generation` was ``generation``.

        A principal read before a change committed carries the older generation and is
        therefore never served after it.
        """
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()  # a burst of distinct tokens: start over
            self._entries[self._key(token)] = (time.monotonic() + self._ttl, generation, principal)


def current_generation() -> int:
    """Read before authenticating; hand it to :meth:`PrincipalCache.put`."""
    return _generation


def _changes_access(session: Session) -> bool:
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _ACCESS_TABLES):
            return True
        if isinstance(instance, ApiToken):
            state: Any = inspect(instance)
            # A token's last-use time is written once a minute: that changes no access.
            if instance in session.new or instance in session.deleted:
                return True
            if any(
                state.attrs[name].history.has_changes()
                for name in ("revoked_at", "expires_at", "secret_sha256", "user_id")
            ):
                return True
    return False


@event.listens_for(Session, "after_flush")
def _note_access_changes(session: Session, _context: Any) -> None:
    if _changes_access(session):
        session.info["access_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    # After the commit, not at the flush: a principal read in between would otherwise be
    # cached under the new generation with the old grants.
    if session.info.pop("access_changed", False):
        access_changed()


@event.listens_for(Session, "after_rollback")
def _nothing_changed(session: Session) -> None:
    session.info.pop("access_changed", None)
