"""A collection's embeddings as one float32 matrix, kept in memory between queries.

Reading 10,000 embeddings from the database costs more than everything else a query
does (30 ms on SQLite, over 100 ms on PostgreSQL), so each process keeps the matrix of
the collections it searched. Several stateless replicas may write the same database,
so an entry is only used after a cheap check, in the query's own transaction, that the
collection's rows are still the ones it was read from: their count, largest id and sum
of ids, and the ``created_at`` of the row with the largest id (see :func:`_fingerprint`).
Chunks are never updated in place (re-indexing deletes and inserts), so any change to a
collection changes that set of rows. When rows were only added, just those are read.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Engine, String, func, select, type_coerce
from sqlalchemy.orm import Session

from depot.search.models import SearchChunk

if TYPE_CHECKING:
    # Imported where used: numpy takes about 15 MiB, which a server that never searches or
    # lists a large space need not hold (the idle memory target, docs/performance.md).
    import numpy as np
    import numpy.typing as npt

__all__ = ["CollectionVectors", "clear_cache", "collection_vectors"]

Owner = tuple[uuid.UUID | None, uuid.UUID | None]  # (version_id, source_id) of a chunk
RawOwner = tuple[str | None, str | None]  # the same as the database returns them

# What the cache may hold, all collections together (10,000 chunks take 15 MiB). A larger
# collection is still searched, from a matrix read for that one query.
CACHE_BYTES = 256 * 1024 * 1024
# An entry is read again after this long even if its fingerprint still matches: the one
# change the fingerprint can miss (on PostgreSQL, rows committed out of id order while
# others are deleted, with equal counts and sums) is then corrected within this time.
MAX_AGE_SECONDS = 300.0


class _Fingerprint(NamedTuple):
    rows: int
    max_id: int | None
    id_sum: int
    newest: object  # created_at of the row with max_id: SQLite may reuse a deleted max id


_STALE = _Fingerprint(-1, None, 0, None)  # matches no collection


@dataclass(frozen=True)
class CollectionVectors:
    """The chunks of one collection: ids ascending, their owners and embeddings.

    Attributes:
        ids: Chunk ids, ascending (int64).
        owner_index: For each chunk, its position in ``owners`` (int32).
        owners: The distinct (version_id, source_id) pairs.
        matrix: One L2-normalised float32 embedding per row, C-contiguous.
    """

    ids: npt.NDArray[np.int64]
    owner_index: npt.NDArray[np.int32]
    owners: tuple[Owner, ...]
    matrix: npt.NDArray[np.float32]
    fingerprint: _Fingerprint
    loaded_at: float

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.owner_index.nbytes + self.matrix.nbytes)

    def rows_of(self, chunk_ids: list[int]) -> npt.NDArray[np.intp]:
        """Row positions of ``chunk_ids``; -1 for ids this collection does not hold."""
        import numpy as np

        wanted = np.asarray(chunk_ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, wanted)
        rows = np.minimum(rows, max(len(self.ids) - 1, 0))
        found = (self.ids[rows] == wanted) if len(self.ids) else np.zeros(len(wanted), bool)
        return np.where(found, rows, -1)


class _Cache:
    """Least recently used entries per (engine, collection), bounded by their size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, str], tuple[Any, CollectionVectors]] = OrderedDict()
        self._bytes = 0

    def get(self, engine: Engine, collection: str) -> CollectionVectors | None:
        with self._lock:
            item = self._entries.get((id(engine), collection))
            if item is None or item[0]() is not engine:  # an id reused by another engine
                return None
            self._entries.move_to_end((id(engine), collection))
            return item[1]

    def put(self, engine: Engine, collection: str, vectors: CollectionVectors) -> None:
        with self._lock:
            self._drop((id(engine), collection))
            if vectors.nbytes > CACHE_BYTES:
                return
            self._entries[(id(engine), collection)] = (weakref.ref(engine), vectors)
            self._bytes += vectors.nbytes
            while self._bytes > CACHE_BYTES:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: tuple[int, str]) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._bytes -= item[1].nbytes


_cache = _Cache()


def clear_cache() -> None:
    """Forget every cached matrix (tests, and a process that wants its memory back)."""
    _cache.clear()


def _fingerprint(db: Session, collection: str) -> _Fingerprint:
    # NOTE: the count, max and sum come from the collection index and the heap (about 1 ms
    # for 10,000 rows on SQLite, 2 ms on PostgreSQL); created_at is read for one row only.
    summary = (
        select(
            func.count().label("n"),
            func.max(SearchChunk.id).label("top"),
            func.coalesce(func.sum(SearchChunk.id), 0).label("total"),
        )
        .where(SearchChunk.collection == collection)
        .subquery()
    )
    newest = select(SearchChunk.created_at).where(SearchChunk.id == summary.c.top).scalar_subquery()
    row = db.execute(select(summary.c.n, summary.c.top, summary.c.total, newest)).one()
    return _Fingerprint(int(row[0]), row[1], int(row[2]), row[3])


def _read(
    db: Session, collection: str, *, after: int | None = None
) -> tuple[list[int], list[RawOwner], bytes]:
    """Ids, raw owner ids and concatenated embeddings of the collection's rows (id order)."""
    # Owner ids come back as strings, parsed once per distinct owner, not once per row.
    query = select(
        SearchChunk.id,
        type_coerce(SearchChunk.version_id, String()),
        type_coerce(SearchChunk.source_id, String()),
        SearchChunk.embedding,
    ).where(SearchChunk.collection == collection)
    if after is not None:
        query = query.where(SearchChunk.id > after)
    rows = db.execute(query.order_by(SearchChunk.id)).all()
    ids = [row[0] for row in rows]
    owners: list[RawOwner] = [(row[1], row[2]) for row in rows]
    return ids, owners, b"".join(row[3] for row in rows)


def _as_uuid(raw: str | None) -> uuid.UUID | None:
    return None if raw is None else uuid.UUID(str(raw))


def _build(
    base: CollectionVectors | None,
    ids: list[int],
    raw_owners: list[RawOwner],
    blob: bytes,
    fingerprint: _Fingerprint,
    loaded_at: float,
) -> CollectionVectors:
    import numpy as np

    owners: list[Owner] = list(base.owners) if base else []
    positions: dict[Owner, int] = {owner: i for i, owner in enumerate(owners)}
    parsed: dict[RawOwner, int] = {}
    index = np.empty(len(ids), dtype=np.int32)
    for row, raw in enumerate(raw_owners):
        position = parsed.get(raw)
        if position is None:
            owner = (_as_uuid(raw[0]), _as_uuid(raw[1]))
            position = positions.setdefault(owner, len(owners))
            if position == len(owners):
                owners.append(owner)
            parsed[raw] = position
        index[row] = position
    vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(ids), -1 if ids else 0)
    new_ids = np.asarray(ids, dtype=np.int64)
    if base is not None:
        new_ids = np.concatenate([base.ids, new_ids])
        index = np.concatenate([base.owner_index, index])
        vectors = np.concatenate([base.matrix, vectors]) if len(ids) else base.matrix
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    for array in (new_ids, index, matrix):
        array.flags.writeable = False  # shared by every thread that searches
    return CollectionVectors(new_ids, index, tuple(owners), matrix, fingerprint, loaded_at)


def collection_vectors(db: Session, collection: str) -> CollectionVectors:
    """The collection's chunks as the query's transaction sees them, from the cache if fresh.

    Args:
        db: The session of the query; its transaction decides which rows are seen.
        collection: The collection searched.

    Returns:
        The collection's vectors; empty arrays when it holds no chunk.
    """
    bind = db.get_bind()
    engine: Engine = bind if isinstance(bind, Engine) else bind.engine
    now = time.monotonic()
    fingerprint = _fingerprint(db, collection)
    cached = _cache.get(engine, collection)
    if cached is not None and now - cached.loaded_at < MAX_AGE_SECONDS:
        if cached.fingerprint == fingerprint:
            return cached
        grown = _append(db, collection, cached, fingerprint)
        if grown is not None:
            _cache.put(engine, collection, grown)
            return grown
    ids, owners, blob = _read(db, collection)
    if (len(ids), ids[-1] if ids else None, sum(ids)) != fingerprint[:3]:
        # Rows came or went between the two statements (PostgreSQL reads each statement
        # at its own snapshot): use what was read, but have the next query read again.
        fingerprint = _STALE
    vectors = _build(None, ids, owners, blob, fingerprint, now)
    _cache.put(engine, collection, vectors)
    return vectors


def _append(
    db: Session, collection: str, cached: CollectionVectors, fingerprint: _Fingerprint
) -> CollectionVectors | None:
    """The cached vectors plus the rows added since, or None unless rows were only added."""
    old = cached.fingerprint
    if old.max_id is None or fingerprint.max_id is None or fingerprint.max_id <= old.max_id:
        return None
    if fingerprint.rows <= old.rows:
        return None
    # The old largest row must still be there, unchanged: otherwise SQLite may have
    # handed its id to a new row, and the rows after it are not all new.
    still = db.scalar(select(SearchChunk.created_at).where(SearchChunk.id == old.max_id))
    if still is None or still != old.newest:
        return None
    ids, owners, blob = _read(db, collection, after=old.max_id)
    # Rows up to the old largest id are exactly the cached ones when count and sum agree.
    if old.rows + len(ids) != fingerprint.rows or old.id_sum + sum(ids) != fingerprint.id_sum:
        return None
    return _build(cached, ids, owners, blob, fingerprint, cached.loaded_at)
