"""Semantic search: indexing throughput and query latency over 10k chunks, SQLite and PostgreSQL.

- indexing: real documents (~900 words each) cut into chunks of up to 128 tokens,
  embedded with all-MiniLM-L6-v2 and stored through ``index_text``, in chunks per second
  (target >= 50); the median of ``--index-runs`` runs;
- query: p50/p95/p99 of the hybrid search (embed the query, vector + full-text ranking,
  fusion, texts of the winners) over a namespace holding 10,000 chunks, each query in its
  own transaction as a request has (target p95 < 100 ms). The 10,000 chunks get real text
  but random unit vectors, so filling them takes seconds, not minutes; the query work is
  the same. The first query of a process reads the collection's matrix from the database
  (the cold figure); later ones find it cached and only check that it is still fresh.

Runs on SQLite and on a PostgreSQL database it creates on 127.0.0.1:5432 (user postgres,
trust) and drops afterwards; ``--databases sqlite`` for one, or ``--database-url URL`` to
use an existing (empty, migratable) database instead.

Run: ``.venv/bin/python bench/search.py [--chunks 10000] [--queries 300]
[--databases sqlite,postgresql]``. Writes ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from _common import Row, postgres_database, write_results

from depot.catalog.models import Namespace
from depot.catalog.service import create_org, create_space
from depot.db.engine import Database, open_database
from depot.db.migrate import upgrade
from depot.knowledge.models import KnowledgeSource
from depot.search.embedder import MiniLMEmbedder
from depot.search.models import SearchChunk
from depot.search.service import CHUNK_TOKENS, index_text, search

GROUP = "Semantic search"
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

WORDS = [
    "model",
    "registry",
    "artifact",
    "version",
    "upload",
    "download",
    "checksum",
    "storage",
    "replica",
    "cluster",
    "latency",
    "throughput",
    "query",
    "index",
    "vector",
    "embedding",
    "token",
    "chunk",
    "namespace",
    "thread",
    "agent",
    "report",
    "summary",
    "policy",
    "budget",
    "invoice",
    "customer",
    "churn",
    "forecast",
    "revenue",
    "cat",
    "feline",
    "nutrition",
    "protein",
    "deadline",
    "tax",
    "receipt",
    "deploy",
    "canary",
    "rollback",
    "error",
    "metric",
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def percentiles(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return {"p50_ms": statistics.median(ordered), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def measure_indexing(
    database: Database, namespace_id: uuid.UUID, embedder: MiniLMEmbedder, args: argparse.Namespace
) -> dict[str, Any]:
    """Documents of ~5-7 chunks each, through the real path; the median of the runs."""
    rng = random.Random(7)
    documents = [
        " ".join(sentence(rng, 30) for _ in range(30)) for _ in range(args.index_documents)
    ]
    rates = []
    chunks = 0
    for run in range(args.index_runs):
        started = time.perf_counter()
        chunks = 0
        with database.write() as db:
            for n, text in enumerate(documents):
                chunks += index_text(
                    db,
                    embedder,
                    collection=f"bench-index-{run}",
                    content=text,
                    source_id=new_source(db, namespace_id, f"doc-{run}-{n}"),
                    title="doc",
                )
        rates.append(chunks / (time.perf_counter() - started))
    tokens = [
        embedder.count_tokens(f"doc\n{chunk.text}")
        for chunk in _chunks_of(database, "bench-index-0")
    ]
    return {
        "chunks_per_s": statistics.median(rates),
        "runs_chunks_per_s": rates,
        "chunks": chunks,
        "mean_tokens_per_chunk": statistics.fmean(tokens),
        "tokens_per_s": statistics.median(rates) * statistics.fmean(tokens),
    }


def _chunks_of(database: Database, collection: str) -> list[SearchChunk]:
    with database.read() as db:
        return list(db.query(SearchChunk).where(SearchChunk.collection == collection))


def bench_namespace(database: Database) -> uuid.UUID:
    """The namespace whose knowledge sources own the benchmark's chunks."""
    with database.write() as db:
        org = create_org(db, "bench")
        space = create_space(db, org, "search")
        namespace = Namespace(space_id=space.id, name="bench")
        db.add(namespace)
        db.flush()
        return namespace.id


def new_source(db: Any, namespace_id: uuid.UUID, name: str) -> uuid.UUID:
    source = KnowledgeSource(id=uuid.uuid4(), namespace_id=namespace_id, name=name)
    db.add(source)
    db.flush()
    return source.id


def fill_query_collection(database: Database, namespace_id: uuid.UUID, chunks: int) -> None:
    """``chunks`` chunks of one knowledge source, with real text and random unit vectors."""
    rng = random.Random(11)
    generator = np.random.default_rng(7)
    with database.write() as db:
        # The chunks belong to one knowledge source, as promoted text does.
        source_id = new_source(db, namespace_id, "bench")
        batch = []
        for ordinal in range(chunks):
            vector = generator.standard_normal(384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            batch.append(
                SearchChunk(
                    collection="bench-query",
                    version_id=None,
                    source_id=source_id,
                    ordinal=ordinal,
                    text=sentence(rng, 40),
                    embedding=vector.tobytes(),
                )
            )
            if len(batch) == 1000:
                db.add_all(batch)
                db.flush()
                batch = []
        db.add_all(batch)


def measure_queries(
    database: Database, embedder: MiniLMEmbedder, args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(13)
    queries = [sentence(rng, 6) for _ in range(args.queries + 1)]
    timings = []
    for query in queries:
        with database.read() as db:
            started = time.perf_counter()
            search(
                db,
                embedder,
                collection="bench-query",
                query=query,
                version_ids=None,
                include_sources=True,
                limit=5,
            )
            timings.append((time.perf_counter() - started) * 1000)
    embedding = []
    for query in queries[:50]:
        started = time.perf_counter()
        embedder.embed([query])
        embedding.append((time.perf_counter() - started) * 1000)
    return {
        "cold_ms": timings[0],
        **percentiles(timings[1:]),
        "embed_query_p50_ms": statistics.median(embedding),
    }


def run_one(url: str, embedder: MiniLMEmbedder, args: argparse.Namespace) -> dict[str, Any]:
    database = open_database(url)
    try:
        upgrade(database)
        namespace_id = bench_namespace(database)
        indexing = measure_indexing(database, namespace_id, embedder, args)
        fill_query_collection(database, namespace_id, args.chunks)
        if database.dialect == "postgresql":
            with database.engine.connect() as connection:
                connection.exec_driver_sql("COMMIT")
                connection.exec_driver_sql("ANALYZE search_chunks")
        # A new engine: the matrix cache is per engine, so the first query reads it.
        database.dispose()
        database = open_database(url)
        queries = measure_queries(database, embedder, args)
    finally:
        database.dispose()
    return {"indexing": indexing, "query": queries}


@contextmanager
def _database(kind: str, tmp: Path, url: str | None) -> Iterator[str]:
    if url:
        yield url
    elif kind == "postgresql":
        with postgres_database("search") as pg_url:
            yield pg_url
    else:
        yield f"sqlite:///{tmp}/search.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--index-documents", type=int, default=40)
    parser.add_argument("--index-runs", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--database-url", default=None, help="run on this database only (instead of --databases)"
    )
    args = parser.parse_args()
    if args.database_url:
        kinds = ["postgresql" if args.database_url.startswith("postgresql") else "sqlite"]
    else:
        kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])  # loads the model: not part of any figure
    results: dict[str, Any] = {}
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        with (
            tempfile.TemporaryDirectory(dir="bench/results") as tmp,
            _database(kind, Path(tmp), args.database_url) as url,
        ):
            results[kind] = run_one(url, embedder, args)
    rows = []
    print(f"\nSemantic search, {args.chunks} chunks, {args.queries} queries")
    for kind in kinds:
        name = NAMES[kind]
        query, indexing = results[kind]["query"], results[kind]["indexing"]
        for key, label, target in (
            ("p50_ms", "p50", ""),
            ("p95_ms", "p95", "< 100 ms"),
            ("p99_ms", "p99", ""),
            ("cold_ms", "first query of a process (reads the matrix)", ""),
        ):
            figure = f"query over {args.chunks:,} chunks, {label} ({name})"
            rows.append(Row(GROUP, figure, round(query[key], 2), "ms", target=target))
        rows.append(
            Row(
                GROUP,
                f"indexing, chunks of <= {CHUNK_TOKENS} tokens"
                f" ({indexing['mean_tokens_per_chunk']:.0f} on average) ({name})",
                round(indexing["chunks_per_s"], 1),
                "chunks/s",
                target=">= 50 chunks/s",
            )
        )
    for row in rows:
        print(f"{row.figure:72} {row.value:8.1f} {row.unit:8} {row.target}")
    out = write_results("search", {"chunks": args.chunks, "queries": args.queries, **results}, rows)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
