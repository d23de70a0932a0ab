"""The upload engine: every way bytes arrive, for every surface.

A session is started with what the client knows (size, digest), receives
chunks in any order, and is completed in a few named steps: check the chunks
are all there, check the size, finish the digest, check it, move the bytes to
their content address and record the blob. The surfaces link the blob to a
file afterwards.

No database transaction is held while bytes move: each step opens a short one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from depot.blobs.meter import Meter, verify
from depot.blobs.models import Blob
from depot.blobs.store import BlobInfo, BlobStore, StagedPart, check_sha256
from depot.db.base import affected_rows, utcnow
from depot.db.engine import Database
from depot.errors import (
    Conflict,
    DigestMismatch,
    Invalid,
    NotFound,
    PayloadTooLarge,
    SizeMismatch,
)
from depot.memory import release_free_memory
from depot.settings import MiB, Settings
from depot.uploads.digest import DigestClaim, DigestTracker
from depot.uploads.models import UploadChunk, UploadSession, UploadStatus
from depot.uploads.schemas import UploadView

__all__ = ["MAX_PARTS", "MIN_CHUNK_SIZE", "UploadService", "record_blob"]

log = logging.getLogger(__name__)

# S3 allows at most 10,000 parts per multipart upload, each at least 5 MiB but the last.
MAX_PARTS = 10_000
MIN_CHUNK_SIZE = 5 * MiB
MAX_CHUNK_SIZE = 5 * 1024 * MiB
# How long completion waits for a chunk request that is still advancing the digest.
_DIGEST_WAIT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _SessionState:
    """What receiving a chunk needs to know of its session: a plain row, not an ORM object."""

    id: uuid.UUID
    status: str
    expires_at: datetime
    error: str | None
    chunk_size: int | None
    expected_size: int | None
    part_count: int | None
    part_size: int | None
    storage_token: str
    context: dict[str, Any] | None
    has_chunk: bool


# A chunk's statements (a read of its session, then four to record it), built once on the
# tables, not the ORM classes: building a statement or going through the ORM's load, flush
# and bulk paths cost about what the database's own work does, paid per part.
_sessions = cast(Table, UploadSession.__table__)
_chunks = cast(Table, UploadChunk.__table__)
_STATE = select(
    _sessions.c.id,
    _sessions.c.status,
    _sessions.c.expires_at,
    _sessions.c.error,
    _sessions.c.chunk_size,
    _sessions.c.expected_size,
    _sessions.c.part_count,
    _sessions.c.part_size,
    _sessions.c.storage_token,
    _sessions.c.context,
    exists().where(_chunks.c.session_id == _sessions.c.id, _chunks.c.index == bindparam("index")),
).where(_sessions.c.id == bindparam("session_id"))
# The row lock (PostgreSQL) orders a chunk's record against a completion claiming the session;
# SQLite's write transactions are serialized anyway.
_STATE_LOCKED = _STATE.with_for_update()
_DELETE_CHUNK = delete(_chunks).where(
    _chunks.c.session_id == bindparam("session_id"), _chunks.c.index == bindparam("index")
)
_INSERT_CHUNK = insert(_chunks)
_MARK_UPLOADING = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(status=UploadStatus.UPLOADING.value, updated_at=bindparam("now"))
)


def record_blob(db: Session, info: BlobInfo) -> None:
    """Insert or touch the row of a blob, so gc spares it for its grace period.

    Call it before the bytes land at their address: gc deletes bytes while it
    holds the row, so a touch that waits for gc sees the row gone and the bytes
    are then written again.
    """
    now = utcnow()
    values = {"sha256": info.sha256, "size": info.size, "created_at": now, "touched_at": now}
    upsert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = upsert(Blob).values(**values)
    db.execute(statement.on_conflict_do_update(index_elements=["sha256"], set_={"touched_at": now}))


class UploadService:
    """Upload sessions over one metadata database and one blob store.

    Args:
        database: where sessions and chunks are recorded.
        store: where the bytes go.
        settings: chunk size, size limit and expiry.
        tracker: in-process digest state; one per server process.
    """

    def __init__(
        self,
        database: Database,
        store: BlobStore,
        settings: Settings,
        tracker: DigestTracker | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.settings = settings
        self.tracker = tracker or DigestTracker()
        self._writing: set[tuple[str, int]] = set()
        self._writing_lock = threading.Lock()

    # -- start --------------------------------------------------------------------------

    def start_upload(
        self,
        *,
        space_id: int | None,
        created_by_id: int | None,
        size: int | None = None,
        sha256: str | None = None,
        chunk_size: int | None = None,
        free_parts: bool = False,
        part_count: int | None = None,
        expires_in: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> UploadView:
        """Open a session.

        Args:
            space_id: the space whose editors may use the session.
            created_by_id: the user opening it.
            size: total bytes, if known. Unknown sizes imply free-sized parts.
            sha256: the digest the bytes must have, if known now.
            chunk_size: a chunk size the client asks for; the server chooses otherwise.
            free_parts: accept parts of any size (S3-style multipart) instead of fixed chunks.
            part_count: for free parts, how many the client will send; parts of one size
                (all but the last) are then written at their offsets and joined in place.
            expires_in: seconds until the session expires; the configured default otherwise.
            context: what the calling surface wants to keep with the session.

        Raises:
            Invalid: a value is out of range.
            PayloadTooLarge: ``size`` exceeds the configured maximum.
        """
        if size is not None:
            if size < 0:
                raise Invalid("size must not be negative", loc=("body", "size"))
            self._check_total(size)
        expected = check_sha256(sha256, loc=("body", "sha256")) if sha256 else None
        chosen = None if (free_parts or size is None) else self._choose_chunk_size(size, chunk_size)
        if expires_in is not None and not 60 <= expires_in <= 7 * 24 * 3600:
            raise Invalid("expires_in must be between 60 and 604800 seconds")
        lifetime = expires_in or self.settings.upload_expiry_seconds
        session_id = uuid.uuid4()
        token = self.store.start_staging(str(session_id))
        now = utcnow()
        with self.database.write() as db:
            row = UploadSession(
                id=session_id,
                space_id=space_id,
                created_by_id=created_by_id,
                expected_size=size,
                expected_sha256=expected,
                chunk_size=chosen,
                part_count=part_count if chosen is None else None,
                status=UploadStatus.INITIALIZED,
                storage_token=token,
                context=dict(context or {}),
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(seconds=lifetime),
            )
            db.add(row)
            db.flush()
            return self._view(row, [])

    def _choose_chunk_size(self, size: int, requested: int | None) -> int:
        if requested is not None:
            if requested <= 0:
                raise Invalid("chunk_size must be positive", loc=("body", "chunk_size"))
            if requested < MIN_CHUNK_SIZE and requested < size:
                raise Invalid(
                    f"chunk_size must be at least {MIN_CHUNK_SIZE} bytes unless one chunk holds"
                    " the whole file",
                    loc=("body", "chunk_size"),
                )
            if requested > MAX_CHUNK_SIZE:
                raise Invalid(
                    f"chunk_size must be at most {MAX_CHUNK_SIZE} bytes", loc=("body", "chunk_size")
                )
            chosen = requested
        else:
            chosen = self.settings.upload_chunk_size
        if math.ceil(size / chosen) > MAX_PARTS:
            # Keep within the part count an S3 multipart upload allows.
            chosen = math.ceil(size / MAX_PARTS / MiB) * MiB
        return chosen

    def _check_total(self, size: int) -> None:
        if size > self.settings.upload_max_size:
            raise PayloadTooLarge(
                f"{size} bytes exceed the upload limit of {self.settings.upload_max_size}"
            )

    # -- status -------------------------------------------------------------------------

    def get_upload(self, session_id: uuid.UUID) -> UploadView:
        """The session and the chunks it has received.

        Raises:
            NotFound: no such session.
        """
        with self.database.read() as db:
            row = self._load(db, session_id)
            return self._view(row, self._parts(db, session_id))

    def get_context(self, session_id: uuid.UUID) -> dict[str, Any]:
        """What the surface that opened the session stored with it (one cheap read).

        Raises:
            NotFound: no such session.
        """
        with self.database.read() as db:
            return dict(self._load(db, session_id).context or {})

    def sessions_with(self, *, surface: str, key: str, value: str) -> list[UploadView]:
        """Sessions a surface opened with ``context[key] == value`` (e.g. one push's uploads)."""
        with self.database.read() as db:
            rows = list(
                db.scalars(
                    select(UploadSession)
                    .where(
                        UploadSession.context["surface"].as_string() == surface,
                        UploadSession.context[key].as_string() == value,
                    )
                    .order_by(UploadSession.created_at)
                )
            )
            return [self._view(row, self._parts(db, row.id)) for row in rows]

    # -- chunks -------------------------------------------------------------------------

    def receive_chunk(
        self,
        session_id: uuid.UUID,
        index: int,
        body: Iterable[bytes],
        *,
        content_length: int | None = None,
        check_context: Callable[[dict[str, Any]], None] | None = None,
    ) -> UploadView:
        """Stream one chunk to storage and record it; the session as it is then.

        Re-sending a chunk replaces it. With fixed chunks, every chunk but the
        last must be exactly ``chunk_size`` bytes and the last the remainder.

        Args:
            index: zero-based chunk index.
            body: the chunk's bytes, in blocks of any size.
            content_length: the length the client declared, checked before reading.
            check_context: called with the session's context before any byte is read;
                a surface raises from it to refuse a session that is not its own.

        Raises:
            NotFound: no such session.
            Invalid: the session no longer takes chunks, or the index is out of range.
            SizeMismatch: the chunk has the wrong length; it is not recorded.
            Conflict: the same chunk is being received by another request right now.
        """
        _, view = self._receive(session_id, index, body, content_length, check_context, True)
        assert view is not None
        return view

    def receive_part(
        self,
        session_id: uuid.UUID,
        index: int,
        body: Iterable[bytes],
        *,
        content_length: int | None = None,
        check_context: Callable[[dict[str, Any]], None] | None = None,
    ) -> StagedPart:
        """:meth:`receive_chunk` for a caller that needs only the stored part (its ETag), if that:
        no view of the session is read, which a many-part upload would pay per part."""
        part, _ = self._receive(session_id, index, body, content_length, check_context, False)
        return part

    def _receive(
        self,
        session_id: uuid.UUID,
        index: int,
        body: Iterable[bytes],
        content_length: int | None,
        check_context: Callable[[dict[str, Any]], None] | None,
        describe: bool,
    ) -> tuple[StagedPart, UploadView | None]:
        key = str(session_id)
        with self.database.read() as db:
            state = self._state(db, session_id, index)
        if check_context is not None:
            check_context(dict(state.context or {}))
        self._check_open(state)
        expected_size, offset = self._placement(state, index, content_length)
        if (
            content_length is not None
            and expected_size is not None
            and (content_length != expected_size)
        ):
            raise SizeMismatch(
                f"chunk {index} must be {expected_size} bytes,"
                f" the request declares {content_length}"
            )
        limit = expected_size if expected_size is not None else self._part_limit()
        with self._guard(key, index):
            if state.has_chunk:
                # Forget the old copy before overwriting it: a rewrite that fails half-way
                # must leave the chunk missing, never recorded with bytes it no longer has.
                with self.database.write() as db:
                    self._check_open(self._state(db, session_id, index, lock=True))
                    db.execute(_DELETE_CHUNK, {"session_id": session_id, "index": index})
            claim = self.tracker.claim(key, index=index)
            meter = Meter(
                body,
                hasher=claim.hasher if claim else None,
                limit=limit,
                limit_error=SizeMismatch if expected_size is not None else PayloadTooLarge,
            )
            try:
                part = self.store.write_part(
                    key,
                    state.storage_token,
                    index,
                    meter,
                    offset=offset,
                    # Hashed now, or read back once the chunks before it are in.
                    read_back_soon=claim is None,
                    size=expected_size,
                )
                if expected_size is not None and part.size != expected_size:
                    raise SizeMismatch(
                        f"chunk {index} must be {expected_size} bytes, received {part.size}"
                    )
                view = self._record_chunk(session_id, part, describe=describe)
            except BaseException:
                if claim is not None:
                    self.tracker.release(claim, keep=False)
                raise
            if claim is not None:
                claim.hashed(part.etag)
                self.tracker.release(claim, keep=True)
            else:
                self.tracker.stored_ahead(key, part)
        self._advance_digest(session_id, state.storage_token)
        return part, view

    def _part_limit(self) -> int:
        return min(MAX_CHUNK_SIZE, self.settings.upload_max_size)

    def _placement(
        self, row: _SessionState, index: int, content_length: int | None
    ) -> tuple[int | None, int | None]:
        """The exact size chunk ``index`` must have (if any) and its offset in the shared file.

        An offset of ``None`` stages the part on its own, to be copied into place at commit.
        """
        if index < 0:
            raise Invalid("chunk index must not be negative", loc=("path", "chunk_index"))
        if row.chunk_size is not None:
            total = row.expected_size or 0
            count = _chunk_count(total, row.chunk_size)
            if index >= count:
                raise Invalid(
                    f"chunk index {index} is out of range: this upload has {count} chunk(s),"
                    f" numbered 0 to {count - 1}",
                    loc=("path", "chunk_index"),
                )
            offset = index * row.chunk_size
            return min(row.chunk_size, total - offset), offset
        limit = row.part_count or MAX_PARTS
        if index >= limit:
            raise Invalid(f"part index must be below {limit}", loc=("path", "chunk_index"))
        if row.part_count is None:
            return None, None
        last = index == row.part_count - 1
        size = row.part_size
        if size is None and not last and content_length:
            size = self._learn_part_size(row.id, content_length)
        if size is None:
            return None, None
        if last:
            return None, index * size
        # A part of another size than the first goes on its own: it cannot overrun a neighbour.
        return (size, index * size) if content_length == size else (None, None)

    def _learn_part_size(self, session_id: uuid.UUID, size: int) -> int | None:
        """Record the size of the first part announced (the size of all but the last)."""
        with self.database.write() as db:
            db.execute(
                update(UploadSession)
                .where(UploadSession.id == session_id, UploadSession.part_size.is_(None))
                .values(part_size=size)
            )
            learnt: int | None = db.scalar(
                select(UploadSession.part_size).where(UploadSession.id == session_id)
            )
        return learnt

    def _record_chunk(
        self, session_id: uuid.UUID, part: StagedPart, *, describe: bool
    ) -> UploadView | None:
        """Record a stored chunk; with ``describe``, the session as it is then (read in the
        same transaction). Core statements: a part of a many-part upload pays this each time."""
        with self.database.write() as db:
            state = self._state(db, session_id, part.index, lock=True)
            # The session may have been aborted or expired while the bytes travelled.
            self._check_open(state)
            now = utcnow()
            # Unconditionally: on PostgreSQL another replica may have recorded the same chunk
            # while this transaction waited for the lock, after its snapshot was taken.
            db.execute(_DELETE_CHUNK, {"session_id": session_id, "index": part.index})
            db.execute(
                _INSERT_CHUNK,
                {
                    "session_id": session_id,
                    "index": part.index,
                    "size": part.size,
                    "offset": part.offset,
                    "etag": part.etag,
                    "received_at": now,
                },
            )
            db.execute(_MARK_UPLOADING, {"session_id": session_id, "now": now})
            if not describe:
                return None
            return self._view(self._load(db, session_id), self._parts(db, session_id))

    def _guard(self, key: str, index: int) -> _ChunkGuard:
        return _ChunkGuard(self, (key, index))

    def _advance_digest(self, session_id: uuid.UUID, token: str) -> None:
        """Hash chunks that arrived ahead of the digest once the gap before them has closed."""
        if not self.store.reads_parts_early:
            return  # S3 cannot read an unfinished upload's parts: completion will
        while (claim := self.tracker.claim(str(session_id))) is not None:
            keep = False
            try:
                keep = self._hash_onwards(claim, claim.run_ahead(), token)
            finally:
                look_again = self.tracker.release(claim, keep=keep)
            if not look_again:
                return

    def _hash_onwards(self, claim: DigestClaim, parts: Sequence[StagedPart], token: str) -> bool:
        """Feed the contiguous run of stored parts from the claim's position into its hasher.

        Whether the chunks hashed before are still the recorded ones is checked at completion.
        """
        run: list[StagedPart] = []
        for part in parts:
            if part.index < claim.next_index:
                continue
            if part.index != claim.next_index + len(run):
                break
            run.append(part)
        for part in run:
            for block in self.store.read_parts(claim.session_id, token, [part]):
                claim.hasher.update(block)
            claim.hashed(part.etag)
        return bool(run)

    # -- complete -----------------------------------------------------------------------

    def complete_upload(self, session_id: uuid.UUID, *, sha256: str | None = None) -> UploadView:
        """Check and commit the session's bytes as a blob.

        Completing a completed session again returns it unchanged (if the digest agrees).

        Args:
            sha256: the digest the bytes must have, if not given at the start.

        Raises:
            NotFound: no such session.
            Invalid: chunks are missing, or the session has failed or expired.
            SizeMismatch, DigestMismatch: the bytes are not what was announced; the
                session is marked failed and nothing is stored.
            Conflict: another request is completing the session right now.
        """
        given = check_sha256(sha256, loc=("body", "sha256")) if sha256 else None
        with self.database.read() as db:
            row = self._load(db, session_id)
            if row.status == UploadStatus.COMPLETED:
                if given and row.blob_sha256 != given:
                    raise DigestMismatch(
                        f"sha256 mismatch: the upload completed as {row.blob_sha256}"
                    )
                return self._view(row, self._parts(db, session_id))
            self._check_open(row)
            if given and row.expected_sha256 and given != row.expected_sha256:
                raise Invalid(
                    "sha256 differs from the one given when the upload started",
                    loc=("body", "sha256"),
                )
            expected = given or row.expected_sha256
        # Claim first, then list the chunks: once the session is completing no request
        # can replace a chunk, so the bytes hashed below are the bytes committed.
        self._claim_completion(session_id)
        try:
            with self.database.read() as db:
                parts = self._parts(db, session_id)
            self._check_complete(row, parts)
            total = sum(part.size for part in parts)
            if row.expected_size is not None and total != row.expected_size:
                raise SizeMismatch(f"expected {row.expected_size} bytes, received {total}")
            self._check_total(total)
            self.store.assemble_staging(str(session_id), row.storage_token, parts)
            digest = self._finish_digest(session_id, row.storage_token, parts)
            verify(sha256=expected, size=None, actual_sha256=digest, actual_size=total)
        except (SizeMismatch, DigestMismatch) as exc:
            self._fail(session_id, row.storage_token, exc.message)
            raise
        except BaseException:
            self._reopen(session_id)
            raise
        try:
            with self.database.write() as db:
                record_blob(db, BlobInfo(digest, total))
            info = self.store.commit_staging(str(session_id), row.storage_token, parts, digest)
            with self.database.write() as db:
                done = self._load(db, session_id)
                done.status = UploadStatus.COMPLETED
                done.blob_sha256 = info.sha256
                done.size = info.size
                done.completed_at = done.updated_at = utcnow()
                db.flush()
                view = self._view(done, self._parts(db, session_id))
        except BaseException:
            self._reopen(session_id)
            raise
        self.tracker.forget(str(session_id))
        release_free_memory()  # what streaming the chunks left in the allocator's arenas
        return view

    def _check_complete(self, row: UploadSession, parts: Sequence[StagedPart]) -> None:
        have = [part.index for part in parts]
        if row.chunk_size is not None:
            count = _chunk_count(row.expected_size or 0, row.chunk_size)
            missing = sorted(set(range(count)) - set(have))
            if missing and row.expected_size != 0:
                shown = ", ".join(str(index) for index in missing[:20])
                more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
                raise Invalid(f"upload is missing chunk(s) {shown}{more}")
        elif have != list(range(len(have))):
            gaps = sorted(set(range(max(have) + 1)) - set(have))
            raise Invalid(f"upload is missing part(s) {', '.join(map(str, gaps[:20]))}")
        elif not have and row.expected_size not in (0, None):
            raise Invalid("upload has received no parts")

    def _claim_completion(self, session_id: uuid.UUID) -> None:
        with self.database.write() as db:
            claimed = affected_rows(
                db.execute(
                    update(UploadSession)
                    .where(
                        UploadSession.id == session_id,
                        UploadSession.status.in_(
                            [UploadStatus.INITIALIZED, UploadStatus.UPLOADING]
                        ),
                    )
                    .values(status=UploadStatus.COMPLETING, updated_at=utcnow())
                )
            )
        if claimed != 1:
            raise Conflict("the upload is being completed by another request")

    def _finish_digest(self, session_id: uuid.UUID, token: str, parts: Sequence[StagedPart]) -> str:
        key = str(session_id)
        if not self.store.reads_parts_early:
            # Read back from the assembled object, where parts sit back to back.
            parts = _positioned(parts)
        claim = self.tracker.claim(key, wait=_DIGEST_WAIT_SECONDS)
        try:
            if claim is None or not claim.matches([part.etag for part in parts]):
                # No trustworthy running digest here: read the whole blob once.
                hasher = hashlib.sha256()
                for block in self.store.read_parts(key, token, parts):
                    hasher.update(block)
                return str(hasher.hexdigest())
            self._hash_onwards(claim, parts, token)
            return str(claim.hasher.hexdigest())
        finally:
            if claim is not None:
                self.tracker.release(claim, keep=False)

    def _fail(self, session_id: uuid.UUID, token: str, message: str) -> None:
        with self.database.write() as db:
            row = self._load(db, session_id)
            row.status = UploadStatus.FAILED
            row.error = message
            row.updated_at = utcnow()
        self.store.abort_staging(str(session_id), token)
        self.tracker.forget(str(session_id))

    def _reopen(self, session_id: uuid.UUID) -> None:
        with self.database.write() as db:
            db.execute(
                update(UploadSession)
                .where(
                    UploadSession.id == session_id,
                    UploadSession.status == UploadStatus.COMPLETING,
                )
                .values(status=UploadStatus.UPLOADING, updated_at=utcnow())
            )

    # -- abort and expire ---------------------------------------------------------------

    def abort_upload(self, session_id: uuid.UUID) -> UploadView:
        """Give up on a session and drop its staged bytes. Aborting twice does nothing.

        Raises:
            NotFound: no such session.
            Invalid: the session is already completed.
        """
        with self.database.write() as db:
            row = self._load(db, session_id)
            if row.status == UploadStatus.COMPLETED:
                raise Invalid("a completed upload cannot be aborted")
            if row.status != UploadStatus.ABORTED:
                row.status = UploadStatus.ABORTED
                row.updated_at = utcnow()
            token = row.storage_token
        self.store.abort_staging(str(session_id), token)
        self.tracker.forget(str(session_id))
        return self.get_upload(session_id)

    def expire_session(self, db: Session, row: UploadSession) -> None:
        """Mark one open session expired and drop its bytes (called by the sweeper)."""
        row.status = UploadStatus.EXPIRED
        row.updated_at = utcnow()
        db.flush()
        self.store.abort_staging(str(row.id), row.storage_token)
        self.tracker.forget(str(row.id))

    # -- single shot --------------------------------------------------------------------

    def upload_blob(
        self,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        size: int | None = None,
        db: Session | None = None,
    ) -> BlobInfo:
        """Store a whole stream at once (one part, no session row) and record its blob.

        Args:
            db: record the blob in this (caller's) transaction. A caller that holds a
                write transaction must pass it: on SQLite a second writer would wait
                for the first forever.

        Raises:
            DigestMismatch, SizeMismatch: nothing is stored.
            PayloadTooLarge: ``size`` exceeds the configured maximum.
        """
        if size is not None:
            self._check_total(size)
        capped = Meter(chunks, limit=self.settings.upload_max_size, limit_error=PayloadTooLarge)
        info = self.store.put(capped, sha256=sha256, size=size)
        if db is not None:
            record_blob(db, info)
        else:
            with self.database.write() as session:
                record_blob(session, info)
        return info

    # -- helpers ------------------------------------------------------------------------

    def _load(self, db: Session, session_id: uuid.UUID) -> UploadSession:
        row = db.get(UploadSession, session_id)
        if row is None:
            raise NotFound(f"upload session {session_id} not found")
        return row

    def _state(
        self, db: Session, session_id: uuid.UUID, index: int, *, lock: bool = False
    ) -> _SessionState:
        """What receiving chunk ``index`` needs of its session, in one statement."""
        statement = _STATE_LOCKED if lock else _STATE
        row = db.execute(statement, {"session_id": session_id, "index": index}).one_or_none()
        if row is None:
            raise NotFound(f"upload session {session_id} not found")
        return _SessionState(*row)

    def _check_open(self, row: UploadSession | _SessionState) -> None:
        status = UploadStatus(row.status)
        if (
            status in (UploadStatus.INITIALIZED, UploadStatus.UPLOADING)
            and row.expires_at <= utcnow()
        ):
            raise Invalid(f"upload session expired at {row.expires_at.isoformat()}")
        if status == UploadStatus.COMPLETING:
            raise Conflict("the upload is being completed")
        if not status.is_open:
            detail = f": {row.error}" if row.error else ""
            raise Invalid(f"upload session is {status.value}{detail}")

    def _parts(self, db: Session, session_id: uuid.UUID, start: int = 0) -> list[StagedPart]:
        """The session's received chunks in index order, as plain tuples: a view is built
        after every chunk, and loading hundreds of ORM rows each time would cost more than
        the chunk's other database work."""
        return [
            StagedPart(index=index, size=size, etag=etag, offset=offset)
            for index, size, etag, offset in db.execute(
                select(UploadChunk.index, UploadChunk.size, UploadChunk.etag, UploadChunk.offset)
                .where(UploadChunk.session_id == session_id, UploadChunk.index >= start)
                .order_by(UploadChunk.index)
            )
        ]

    def _view(self, row: UploadSession, chunks: Sequence[StagedPart]) -> UploadView:
        count = (
            _chunk_count(row.expected_size or 0, row.chunk_size)
            if row.chunk_size is not None
            else None
        )
        return UploadView(
            id=row.id,
            space_id=row.space_id,
            created_by_id=row.created_by_id,
            status=UploadStatus(row.status).value,
            expected_size=row.expected_size,
            expected_sha256=row.expected_sha256,
            chunk_size=row.chunk_size,
            chunk_count=count,
            received_bytes=sum(chunk.size for chunk in chunks),
            received_chunks=[chunk.index for chunk in chunks],
            blob_sha256=row.blob_sha256,
            size=row.size,
            error=row.error,
            context=dict(row.context or {}),
            created_at=row.created_at,
            updated_at=row.updated_at,
            expires_at=row.expires_at,
            completed_at=row.completed_at,
            etags={chunk.index: chunk.etag for chunk in chunks},
        )


def _positioned(parts: Sequence[StagedPart]) -> list[StagedPart]:
    """The parts with their offsets in the assembled object (index order, back to back)."""
    placed, position = [], 0
    for part in sorted(parts, key=lambda part: part.index):
        placed.append(StagedPart(part.index, part.size, part.etag, position))
        position += part.size
    return placed


def _chunk_count(size: int, chunk_size: int) -> int:
    """Chunks a fixed-size session needs: at least one, so an empty file is one empty chunk."""
    return max(1, math.ceil(size / chunk_size))


class _ChunkGuard:
    """Refuses a second request for the same chunk while the first is still writing it."""

    def __init__(self, service: UploadService, key: tuple[str, int]) -> None:
        self._service = service
        self._key = key

    def __enter__(self) -> None:
        with self._service._writing_lock:
            if self._key in self._service._writing:
                raise Conflict(f"chunk {self._key[1]} is already being received")
            self._service._writing.add(self._key)

    def __exit__(self, *exc: object) -> None:
        with self._service._writing_lock:
            self._service._writing.discard(self._key)
