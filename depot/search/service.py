"""Indexing text into searchable chunks, and hybrid (full-text + vector) search over them.

Vectors are L2-normalised float32, so cosine similarity is a dot product: one matrix
product over the collection's matrix, which each process keeps in memory while a cheap
check shows it is fresh (see :mod:`depot.search._vectors`). Full-text ranks come from
SQLite FTS5 or PostgreSQL's tsvector. The two rankings are fused with reciprocal rank
fusion, so a chunk that shares no word with the query can still win on meaning, and one
that shares rare words gets a lift. Texts are read for the winners alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from depot.search._vectors import collection_vectors
from depot.search.chunker import chunk_text
from depot.search.models import SearchChunk

if TYPE_CHECKING:
    # Imported where used: numpy takes about 15 MiB, which a server that never searches or
    # lists a large space need not hold (the idle memory target, docs/performance.md).
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "CHUNK_TOKENS",
    "EmbeddedDocument",
    "Embedder",
    "Hit",
    "embed_document",
    "index_text",
    "search",
    "store_document",
]

# Reciprocal rank fusion constant (the usual 60): damps the weight of top ranks.
_RRF_K = 60
# How many candidates each ranking contributes before fusion.
_CANDIDATES = 100
# The most tokens of a chunk (the title embedded with it comes on top): the length
# all-MiniLM-L6-v2 was trained on. It reads up to 256, but longer inputs embed worse and
# cost more per token (attention grows with the square of the length).
CHUNK_TOKENS = 128
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


@dataclass(frozen=True)
class EmbeddedDocument:
    """A document cut into chunks, with one embedding per chunk (see :func:`embed_document`)."""

    chunks: list[str]
    vectors: npt.NDArray[np.float32]


def embed_document(embedder: Embedder, content: str, *, title: str = "") -> EmbeddedDocument:
    """Cut a document into chunks and embed them; touches no database.

    Embedding is the slow part of indexing (tens of milliseconds a chunk), so callers do it
    before opening the transaction that stores the result with :func:`store_document`.

    Args:
        title: embedded with every chunk (so "cities" finds a table named so) but not
            stored in it, so matched chunks quote the document alone.
    """
    import numpy as np

    budget = min(CHUNK_TOKENS, embedder.max_tokens)
    chunks = chunk_text(content, embedder.count_tokens, max_tokens=budget)
    if not chunks:
        return EmbeddedDocument([], np.zeros((0, 0), dtype=np.float32))
    vectors = embedder.embed([f"{title}\n{chunk}" if title else chunk for chunk in chunks])
    return EmbeddedDocument(chunks, vectors.astype(np.float32, copy=False))


def store_document(
    db: Session,
    document: EmbeddedDocument,
    *,
    collection: str,
    version_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
) -> int:
    """Replace the chunks of one document (a version or a source); returns how many there are.

    Raises:
        ValueError: Not exactly one of ``version_id`` and ``source_id`` is given (with
            neither, "replace" would mean every ownerless chunk).
    """
    if (version_id is None) == (source_id is None):
        raise ValueError("a document belongs to exactly one version or one source")
    owner = (
        SearchChunk.version_id == version_id if version_id else SearchChunk.source_id == (source_id)
    )
    db.execute(delete(SearchChunk).where(owner))
    db.add_all(
        SearchChunk(
            collection=collection,
            version_id=version_id,
            source_id=source_id,
            ordinal=ordinal,
            text=chunk,
            embedding=vector.tobytes(),
        )
        for ordinal, (chunk, vector) in enumerate(
            zip(document.chunks, document.vectors, strict=True)
        )
    )
    db.flush()
    return len(document.chunks)


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
    """Embed a document and replace its chunks in ``db``; returns how many there are.

    :func:`embed_document` then :func:`store_document`, in the caller's transaction.
    """
    document = embed_document(embedder, content, title=title)
    return store_document(
        db, document, collection=collection, version_id=version_id, source_id=source_id
    )


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
    import numpy as np

    vectors = collection_vectors(db, collection)
    if not len(vectors.ids):
        return []
    # Which owners the caller may see: decided once per document, not once per chunk.
    visible = np.fromiter(
        (
            (version is not None and (version_ids is None or version in version_ids))
            or (source is not None and include_sources)
            for version, source in vectors.owners
        ),
        dtype=bool,
        count=len(vectors.owners),
    )
    allowed = visible[vectors.owner_index]
    if not allowed.any():
        return []
    similarities = vectors.matrix @ embedder.embed([query])[0]
    ranked = np.where(allowed, similarities, -np.inf)
    candidates = min(_CANDIDATES, int(allowed.sum()))
    top = np.argpartition(-ranked, candidates - 1)[:candidates]
    by_vector = top[np.argsort(-ranked[top], kind="stable")].tolist()
    found = vectors.rows_of(_full_text_ranking(db, collection, query))
    by_words = [int(row) for row in found if row >= 0 and allowed[row]]
    # Fusion over row positions in the matrix; chunk ids are looked up for the winners only.
    fused: dict[int, float] = {}
    for ranking in (by_vector, by_words):
        for rank, row in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + 1.0 / (_RRF_K + rank + 1)
    chosen: dict[int, tuple[int, float, float]] = {}  # owner position -> (row, cosine, fused)
    for row, score in sorted(fused.items(), key=lambda item: -item[1]):
        owner = int(vectors.owner_index[row])
        if owner in chosen:
            continue
        cosine = max(0.0, min(1.0, float(similarities[row])))
        if min_similarity is not None and cosine < min_similarity:
            continue
        chosen[owner] = (row, cosine, score)
        if len(chosen) >= limit:
            break
    winners = [int(vectors.ids[row]) for row, _, _ in chosen.values()]
    texts = {
        chunk: body
        for chunk, body in db.execute(
            select(SearchChunk.id, SearchChunk.text).where(SearchChunk.id.in_(winners))
        )
    }
    # A winner deleted since the matrix was read (another transaction) is left out.
    return [
        Hit(*vectors.owners[owner], texts[chunk], cosine, score)
        for (owner, (row, cosine, score)), chunk in zip(chosen.items(), winners, strict=True)
        if chunk in texts
    ]
