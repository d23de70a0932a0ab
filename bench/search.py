"""Semantic search: indexing throughput and query latency over 10k chunks.

- indexing: real chunks (~150-200 tokens each) cut, embedded with all-MiniLM-L6-v2 and
  stored, in chunks per second (target >= 50);
- query: p50/p95/p99 of the hybrid search (embed the query, vector + full-text ranking,
  fusion) over a namespace holding 10,000 chunks (target p95 < 100 ms). The 10,000 chunks
  get real text but random unit vectors, so filling them takes seconds, not minutes; the
  query work is the same.

Runs on SQLite (embedded default) by default; ``--database-url postgresql+psycopg://...``
for PostgreSQL (an empty database).

Run: ``.venv/bin/python bench/search.py [--chunks 10000] [--queries 200]``
Writes ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _common import write_results

from depot.catalog.models import Namespace
from depot.catalog.service import create_org, create_space
from depot.db.engine import open_database
from depot.db.migrate import upgrade
from depot.knowledge.models import KnowledgeSource
from depot.search.embedder import MiniLMEmbedder
from depot.search.models import SearchChunk
from depot.search.service import index_text, search

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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index-documents", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(7)
    embedder = MiniLMEmbedder()
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="bench/results") as tmp:
        database = open_database(args.database_url or f"sqlite:///{tmp}/search.db")
        upgrade(database)
        # Indexing: documents of ~5 chunks each, through the real path.
        documents = [
            " ".join(sentence(rng, 30) for _ in range(30)) for _ in range(args.index_documents)
        ]
        embedder.embed(["warm up"])
        started = time.perf_counter()
        indexed = 0
        with database.write() as db:
            for text in documents:
                indexed += index_text(
                    db,
                    embedder,
                    collection="bench-index",
                    content=text,
                    source_id=None,
                    version_id=None,
                    title="doc",
                )
        index_rate = indexed / (time.perf_counter() - started)

        # Query latency over a namespace of --chunks chunks.
        generator = np.random.default_rng(7)
        with database.write() as db:
            # The chunks belong to one knowledge source of one namespace, as promoted text does.
            org = create_org(db, "bench")
            space = create_space(db, org, "search")
            namespace = Namespace(space_id=space.id, name="bench")
            db.add(namespace)
            db.flush()
            source = KnowledgeSource(id=uuid.uuid4(), namespace_id=namespace.id, name="bench")
            db.add(source)
            db.flush()
            batch = []
            for ordinal in range(args.chunks):
                vector = generator.standard_normal(384).astype(np.float32)
                vector /= np.linalg.norm(vector)
                batch.append(
                    SearchChunk(
                        collection="bench-query",
                        version_id=None,
                        source_id=source.id,
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
        queries = [sentence(rng, 6) for _ in range(args.queries)]
        timings = []
        with database.read() as db:
            for query in queries:
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
        database.dispose()
    timings.sort()
    figures = {
        "indexing_chunks_per_s": index_rate,
        "query_p50_ms": statistics.median(timings),
        "query_p95_ms": timings[int(len(timings) * 0.95) - 1],
        "query_p99_ms": timings[int(len(timings) * 0.99) - 1],
    }
    print(
        f"Search, {args.chunks} chunks, {args.queries} queries"
        f" ({'PostgreSQL' if args.database_url else 'SQLite'})"
    )
    targets = {"indexing_chunks_per_s": ">= 50", "query_p95_ms": "< 100"}
    for key, value in figures.items():
        print(f"{key:24} {value:10.1f}  {targets.get(key, '')}")
    out = write_results("search", {"chunks": args.chunks, "figures": figures})
    print(f"written to {out}")


if __name__ == "__main__":
    main()
