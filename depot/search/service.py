"""Indexing text into searchable chunks, and hybrid (full-text + vector) search over them.

Vectors are L2-normalised float32, so cosine similarity is a dot product, computed
with numpy over a collection's chunks. Full-text ranks come from SQLite FTS5 or
PostgreSQL's tsvector. The two rankings are fused with reciprocal rank fusion, so
a chunk that shares no word with the query can still win on meaning, and one that
shares rare words gets a lift.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import String, delete, select, text, type_coerce
from sqlalchemy.orm import Session

from depot.search.chunker import chunk_text
from depot.search.models import SearchChunk

__all__ = ["Embedder", "Hit", "index_text", "search"]

# Reciprocal rank fusion constant (the usual 60): damps the weight of top ranks.
_RRF_K = 60
# How many candidates each ranking contributes before fusion.
_CANDIDATES = 100
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class Embedder(Protocol):
    """A sentence-embedding model."""

    @property
    def model_id(self) -> str:
        """Which model makes the vectors."""
        ...

    @property
    def max_tokens(self) -> int:
        """The most tokens the model reads from one text."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many model tokens ``text`` takes (without the special tokens)."""
        ...


@dataclass(frozen=True)
class Hit:
    """The best matching chunk of one indexed document."""

    version_id: uuid.UUID | None
    source_id: uuid.UUID | None
    text: str
    similarity: float
    fused: float


def index_text(
    db: Session,
    embedder: Embedder,
    *,
    collection: str,
    content: str,
    version_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    title: str = "",
) -> int:
    """Replace the chunks of one document (a version or a source); returns how many there are.

    Args:
        title: embedded with every chunk (so "cities" finds a table named so) but not
            stored in it, so matched chunks quote the document alone.
    """
    owner = (
        SearchChunk.version_id == version_id if version_id else SearchChunk.source_id == (source_id)
    )
    db.execute(delete(SearchChunk).where(owner))
    chunks = chunk_text(content, embedder.count_tokens, max_tokens=min(200, embedder.max_tokens))
    if not chunks:
        return 0
    vectors = embedder.embed([f"{title}\n{chunk}" if title else chunk for chunk in chunks])
    vectors = vectors.astype(np.float32)
    db.add_all(
        SearchChunk(
            collection=collection,
            version_id=version_id,
            source_id=source_id,
            ordinal=ordinal,
            text=chunk,
            embedding=vector.tobytes(),
        )
        for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    )
    db.flush()
    return len(chunks)


def _full_text_ranking(db: Session, collection: str, query: str) -> list[int]:
    """Chunk ids of the collection matching any word of the query, best first."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))[:32]
    if not words:
        return []
    if db.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{word}"' for word in words)
        rows = db.execute(
            text(
                "SELECT c.id FROM search_chunks_fts f JOIN search_chunks c ON c.id = f.rowid"
                " WHERE search_chunks_fts MATCH :match AND c.collection = :collection"
                " ORDER BY bm25(search_chunks_fts) LIMIT :limit"
            ),
            {"match": match, "collection": collection, "limit": _CANDIDATES},
        )
    else:
        rows = db.execute(
            text(
                "SELECT id FROM search_chunks, to_tsquery('english', :match) AS q"
                " WHERE text_search @@ q AND collection = :collection"
                " ORDER BY ts_rank(text_search, q) DESC LIMIT :limit"
            ),
            {"match": " | ".join(words), "collection": collection, "limit": _CANDIDATES},
        )
    return [row[0] for row in rows]


def search(
    db: Session,
    embedder: Embedder,
    *,
    collection: str,
    query: str,
    version_ids: set[uuid.UUID] | None = None,
    include_sources: bool = False,
    limit: int = 5,
    min_similarity: float | None = None,
) -> list[Hit]:
    """The documents of a collection that best match ``query``, best first.

    Args:
        version_ids: only chunks of these versions (plus knowledge sources with
            ``include_sources``); ``None`` means every chunk of the collection.
        min_similarity: drop documents whose best chunk's cosine similarity is lower.
    """
    # Only what ranking needs; texts are fetched for the winners alone.
    # Owner ids come back raw (no per-row UUID parsing: a collection holds thousands of
    # chunks but few owners) and are converted once per distinct value.
    rows = db.execute(
        select(
            SearchChunk.id,
            type_coerce(SearchChunk.version_id, String()).label("version_id"),
            type_coerce(SearchChunk.source_id, String()).label("source_id"),
            SearchChunk.embedding,
        ).where(SearchChunk.collection == collection)
    ).all()
    owners: dict[object, uuid.UUID | None] = {None: None}

    def owner_of(raw: object) -> uuid.UUID | None:
        if raw not in owners:
            owners[raw] = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        return owners[raw]

    owner_ids = {row.id: (owner_of(row.version_id), owner_of(row.source_id)) for row in rows}
    allowed = {
        row.id: row
        for row in rows
        if (
            owner_ids[row.id][0] is not None
            and (version_ids is None or owner_ids[row.id][0] in version_ids)
        )
        or (owner_ids[row.id][1] is not None and include_sources)
    }
    if not allowed:
        return []
    ids = list(allowed)
    matrix = np.frombuffer(b"".join(allowed[i].embedding for i in ids), dtype=np.float32)
    similarities = matrix.reshape(len(ids), -1) @ embedder.embed([query])[0]
    by_vector = [ids[i] for i in np.argsort(-similarities)[:_CANDIDATES]]
    by_words = [chunk for chunk in _full_text_ranking(db, collection, query) if chunk in allowed]
    fused: dict[int, float] = {}
    for ranking in (by_vector, by_words):
        for rank, chunk in enumerate(ranking):
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (_RRF_K + rank + 1)
    similarity = {ids[i]: float(similarities[i]) for i in range(len(ids))}
    chosen: dict[tuple[uuid.UUID | None, uuid.UUID | None], tuple[int, float, float]] = {}
    for chunk, score in sorted(fused.items(), key=lambda item: -item[1]):
        owner = owner_ids[chunk]
        if owner in chosen:
            continue
        cosine = max(0.0, min(1.0, similarity[chunk]))
        if min_similarity is not None and cosine < min_similarity:
            continue
        chosen[owner] = (chunk, cosine, score)
        if len(chosen) >= limit:
            break
    winners = [chunk for chunk, _, _ in chosen.values()]
    texts = {
        chunk: body
        for chunk, body in db.execute(
            select(SearchChunk.id, SearchChunk.text).where(SearchChunk.id.in_(winners))
        )
    }
    return [
        Hit(owner[0], owner[1], texts[chunk], cosine, score)
        for owner, (chunk, cosine, score) in chosen.items()
    ]
