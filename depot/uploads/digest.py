"""Running SHA-256 state of upload sessions, kept in the process that receives their chunks.

A session's digest advances one chunk at a time, in index order. A chunk that
arrives when the digest has reached its index is hashed while it streams to
storage; chunks that arrive early are hashed later by reading them back (from
the page cache, usually) once the gap before them has closed. Completion then
finds the digest finished and need not read the blob again.

The state remembers the etag of every chunk it hashed. Completion trusts it
only if those etags are still the ones recorded in the database, so a chunk
re-sent afterwards, or sent to another replica, makes completion re-read
instead of trusting stale state. hashlib objects cannot be serialized, which is
why the state lives in memory and nowhere else; losing it costs a re-read,
never correctness.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from depot.blobs.store import StagedPart

__all__ = ["DigestClaim", "DigestTracker"]


@dataclass
class _State:
    hasher: Any = field(default_factory=hashlib.sha256)
    etags: list[str] = field(default_factory=list)
    # Chunks this process stored before the digest reached them, by index.
    ahead: dict[int, StagedPart] = field(default_factory=dict)
    busy: bool = False
    # Someone found the digest busy while new chunks may have landed: the holder looks again.
    wanted: bool = False


@dataclass
class DigestClaim:
    """The right to advance one session's digest.

    Feed the next chunks' bytes to ``hasher`` (a private copy) in order, call
    :meth:`hashed` after each, and hand the claim back with
    :meth:`DigestTracker.release`. Nothing changes unless it is released with ``keep=True``.
    """

    session_id: str
    hasher: Any
    etags: list[str]
    ahead: dict[int, StagedPart] = field(default_factory=dict)

    @property
    def next_index(self) -> int:
        """Index of the first chunk not yet in ``hasher``."""
        return len(self.etags)

    def hashed(self, etag: str) -> None:
        """Record that the chunk at :attr:`next_index`, stored with ``etag``, is in ``hasher``."""
        self.etags.append(etag)

    def run_ahead(self) -> list[StagedPart]:
        """The chunks stored ahead that continue the digest without a gap, in order."""
        run: list[StagedPart] = []
        while (part := self.ahead.get(self.next_index + len(run))) is not None:
            run.append(part)
        return run

    def matches(self, recorded: Sequence[str]) -> bool:
        """True if each chunk hashed so far is still the recorded one (``recorded[i]``: chunk i)."""
        return len(recorded) >= len(self.etags) and list(recorded[: len(self.etags)]) == self.etags


class DigestTracker:
    """Digest states of the upload sessions this process is receiving.

    Args:
        max_sessions: how many sessions to remember; the least recently used
            state is dropped beyond that (its session then re-reads at completion).
    """

    def __init__(self, max_sessions: int = 4096) -> None:
        self._changed = threading.Condition()
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._max = max_sessions

    def claim(
        self, session_id: str, *, index: int | None = None, wait: float = 0.0
    ) -> DigestClaim | None:
        """Claim a session's digest.

        Args:
            index: claim only if the digest has reached exactly this chunk. A
                session without state gets a fresh one only for ``index`` 0.
            wait: seconds to wait for another claim to be released.

        Returns:
            The claim, or ``None`` if the digest is elsewhere or still held by someone else.
        """
        with self._changed:
            state = self._states.get(session_id)
            if state is None:
                if index != 0:
                    return None
                state = self._states[session_id] = _State()
                self._trim()
            self._states.move_to_end(session_id)
            if state.busy and wait > 0:
                self._changed.wait_for(lambda: not state.busy, timeout=wait)
            if state.busy:
                state.wanted = True
                return None
            if index is not None and len(state.etags) != index:
                return None
            state.busy = True
            return DigestClaim(
                session_id, state.hasher.copy(), list(state.etags), dict(state.ahead)
            )

    def release(self, claim: DigestClaim, *, keep: bool) -> bool:
        """Hand a claim back; with ``keep`` its hasher and etags become the session's state.

        Returns:
            True if another request found the digest busy meanwhile: the chunk it
            stored may now be hashable, so the caller should claim and look again.
        """
        with self._changed:
            state = self._states.get(claim.session_id)
            wanted = False
            if state is not None:
                state.busy = False
                wanted, state.wanted = state.wanted, False
                if keep:
                    state.hasher = claim.hasher
                    state.etags = claim.etags
                    for index in range(len(claim.etags)):
                        state.ahead.pop(index, None)
            self._changed.notify_all()
            return wanted

    def stored_ahead(self, session_id: str, part: StagedPart) -> None:
        """Note a chunk this process stored before the digest reached it.

        Only chunks noted here are ever read back to advance the digest, so chunks
        that went to another replica are left to completion.
        """
        with self._changed:
            state = self._states.get(session_id)
            if state is None:
                state = self._states[session_id] = _State()
                self._trim()
            if part.index >= len(state.etags):
                state.ahead[part.index] = part

    def forget(self, session_id: str) -> None:
        """Drop the state of a session, e.g. once it is completed, aborted or expired."""
        with self._changed:
            self._states.pop(session_id, None)
            self._changed.notify_all()

    def _trim(self) -> None:
        while len(self._states) > self._max:
            self._states.popitem(last=False)
