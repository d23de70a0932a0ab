"""Hybrid search over indexed chunks, and the per-process cache of a collection's matrix.

A bag-of-words embedder stands in for MiniLM here: search's own logic (filters, one hit
per document, fusion, freshness of the cached matrix across writers) does not depend on
the model, and the tests stay fast. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import delete

from depot.catalog.models import Namespace
from depot.catalog.service import create_artifact, create_org, create_space, create_version
from depot.db.engine import Database, open_database
from depot.knowledge.models import KnowledgeSource
from depot.search import _vectors
from depot.search.models import SearchChunk
from depot.search.service import Hit, index_text, search

COLLECTION = "ns:test"


class WordsEmbedder:
    """Each word a fixed random direction; a text the normalised sum of its words."""

    model_id = "test/bag-of-words"
    max_tokens = 6  # chunks of a few words

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                out[row] += np.random.default_rng(seed).standard_normal(32).astype(np.float32)
            norm = float(np.linalg.norm(out[row]))
            out[row] /= norm if norm else 1.0
        return out


EMBEDDER = WordsEmbedder()


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    _vectors.clear_cache()
    yield
    _vectors.clear_cache()


@pytest.fixture
def namespace(database: Database) -> uuid.UUID:
    with database.write() as db:
        org = create_org(db, "acme")
        space = create_space(db, org, "ml")
        ns = Namespace(space_id=space.id, name="research")
        db.add(ns)
        db.flush()
        return ns.id


def add_source(database: Database, namespace: uuid.UUID, content: str) -> uuid.UUID:
    """A knowledge source holding ``content``, indexed."""
    with database.write() as db:
        source = KnowledgeSource(id=uuid.uuid4(), namespace_id=namespace, name="s", text=content)
        db.add(source)
        db.flush()
        index_text(db, EMBEDDER, collection=COLLECTION, content=content, source_id=source.id)
        return source.id


def reindex(database: Database, source: uuid.UUID, content: str) -> None:
    with database.write() as db:
        index_text(db, EMBEDDER, collection=COLLECTION, content=content, source_id=source)


def find(database: Database, query: str, **options: object) -> list[Hit]:
    with database.read() as db:
        options.setdefault("include_sources", True)
        return search(db, EMBEDDER, collection=COLLECTION, query=query, **options)  # type: ignore[arg-type]


def texts(hits: list[Hit]) -> list[str]:
    return [hit.text for hit in hits]


def test_best_document_first_one_hit_each(database: Database, namespace: uuid.UUID) -> None:
    cats = add_source(database, namespace, "Cats eat fish.\n\nCats sleep all day long.")
    add_source(database, namespace, "Taxes are due in April.")
    hits = find(database, "cats eat fish")
    assert [hit.source_id for hit in hits][0] == cats
    assert hits[0].text == "Cats eat fish." and hits[0].version_id is None
    assert len({hit.source_id for hit in hits}) == len(hits) == 2
    assert hits[0].similarity > 0.99 and hits[0].fused > hits[1].fused
    assert texts(find(database, "cats eat fish", limit=1)) == ["Cats eat fish."]
    assert texts(find(database, "cats eat fish", min_similarity=0.9)) == ["Cats eat fish."]
    assert find(database, "nothing", include_sources=False) == []
    with database.read() as db:
        assert search(db, EMBEDDER, collection="ns:empty", query="cats") == []


def test_versions_filter(database: Database, namespace: uuid.UUID) -> None:
    with database.write() as db:
        space_id = db.get(Namespace, namespace).space_id  # type: ignore[union-attr]
        from depot.catalog.models import Space

        space = db.get(Space, space_id)
        assert space is not None
        artifact = create_artifact(db, space, "notes", "document")
        first, second = create_version(db, artifact), create_version(db, artifact)
        for version, content in ((first, "cats eat fish"), (second, "cats chase mice")):
            index_text(db, EMBEDDER, collection=COLLECTION, content=content, version_id=version.id)
    add_source(database, namespace, "cats and dogs")
    with database.read() as db:
        only = search(db, EMBEDDER, collection=COLLECTION, query="cats", version_ids={second.id})
        every = search(db, EMBEDDER, collection=COLLECTION, query="cats", include_sources=True)
    assert [(hit.version_id, hit.text) for hit in only] == [(second.id, "cats chase mice")]
    assert {hit.version_id for hit in every} == {first.id, second.id, None}


def test_new_changed_and_deleted_documents_are_seen(
    database: Database, namespace: uuid.UUID
) -> None:
    first = add_source(database, namespace, "cats eat fish")
    assert texts(find(database, "cats")) == ["cats eat fish"]  # the matrix is now cached
    second = add_source(database, namespace, "cats chase mice")  # rows added: read alone
    assert sorted(texts(find(database, "cats"))) == ["cats chase mice", "cats eat fish"]
    # Same number of chunks, new content: SQLite gives the new rows the old ids.
    reindex(database, second, "dogs bark loudly")
    hits = find(database, "dogs bark loudly")
    assert hits[0].text == "dogs bark loudly" and hits[0].similarity > 0.99
    reindex(database, first, "")  # no chunks left
    assert texts(find(database, "cats eat fish")) == ["dogs bark loudly"]
    with database.write() as db:
        db.execute(delete(SearchChunk))
    assert find(database, "dogs") == []
    add_source(database, namespace, "birds sing")
    assert texts(find(database, "birds")) == ["birds sing"]


def test_another_replica_writes(database: Database, namespace: uuid.UUID) -> None:
    """Two engines on one database stand for two server processes."""
    other = open_database(str(database.engine.url.render_as_string(hide_password=False)))
    try:
        source = add_source(database, namespace, "cats eat fish")
        assert texts(find(other, "cats")) == ["cats eat fish"]
        reindex(database, source, "dogs bark loudly")
        assert texts(find(other, "dogs bark")) == ["dogs bark loudly"]
        with database.write() as db:
            db.execute(delete(SearchChunk).where(SearchChunk.source_id == source))
        assert find(other, "dogs") == []
    finally:
        other.dispose()


def test_appended_rows_read_alone_and_match_a_full_read(
    database: Database, namespace: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int | None] = []
    read = _vectors._read

    def counting(db: object, collection: str, *, after: int | None = None) -> object:
        reads.append(after)
        return read(db, collection, after=after)  # type: ignore[arg-type]

    monkeypatch.setattr(_vectors, "_read", counting)
    add_source(database, namespace, "cats eat fish.\n\nmice eat cheese")
    find(database, "cats")
    add_source(database, namespace, "dogs eat meat.\n\nbirds eat seeds")
    grown = find(database, "what do they eat", limit=10)
    assert reads[0] is None and reads[1] is not None and len(reads) == 2
    _vectors.clear_cache()
    assert find(database, "what do they eat", limit=10) == grown
    assert len(reads) == 3 and reads[2] is None


def test_a_collection_larger_than_the_cache_is_still_searched(
    database: Database, namespace: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_vectors, "CACHE_BYTES", 16)
    add_source(database, namespace, "cats eat fish")
    assert texts(find(database, "cats")) == ["cats eat fish"]
    assert texts(find(database, "cats")) == ["cats eat fish"]


def test_full_text_alone_can_bring_a_chunk(database: Database, namespace: uuid.UUID) -> None:
    # A word the vector ranking alone would not favour still lifts its chunk by fusion.
    add_source(database, namespace, "zebra")
    for n in range(5):
        add_source(database, namespace, f"report number {n} about quarterly revenue")
    hits = find(database, "quarterly revenue zebra", limit=6)
    assert "zebra" in texts(hits)
