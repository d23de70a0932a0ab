"""Semantic query over a namespace's artifacts: hybrid ranking, and a context for prompts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.agents.models import AgentRecord
from depot.agents.service import RecordView, get_record, latest_filter, namespace_collection
from depot.catalog.models import Namespace
from depot.search.service import Embedder, search

__all__ = ["CONTEXT_CHARS", "QueryHit", "query_artifacts"]

# combined_context stays below this, so it fits in a prompt beside the question.
CONTEXT_CHARS = 8000

QueryHit = tuple[RecordView, float, str]


def query_artifacts(
    db: Session,
    embedder: Embedder,
    namespace: Namespace,
    query: str,
    *,
    thread_id: str | None,
    types: list[str] | None,
    limit: int,
    min_score: float | None,
) -> tuple[list[QueryHit], str]:
    """The latest, unexpired artifacts that best answer ``query``, and their matched chunks
    joined under their names (bounded in size)."""
    conditions = latest_filter(namespace, thread_id=thread_id, types=types, include_expired=False)
    candidates = set(db.scalars(select(AgentRecord.version_id).where(*conditions)))
    hits = search(
        db,
        embedder,
        collection=namespace_collection(namespace),
        query=query,
        version_ids=candidates,
        limit=limit,
        min_similarity=min_score,
    )
    results: list[QueryHit] = []
    for hit in hits:
        if hit.version_id is None:
            continue
        view = get_record(db, namespace, str(hit.version_id))
        results.append((view, round(hit.similarity, 6), hit.text))
    return results, combined_context(results)


def combined_context(results: list[QueryHit]) -> str:
    """Matched chunks under their artifact names, best first, cut to :data:`CONTEXT_CHARS`."""
    parts: list[str] = []
    used = 0
    for view, _score, chunk in results:
        block = f"## {view.record.name}\n{chunk}\n"
        if used + len(block) > CONTEXT_CHARS:
            room = CONTEXT_CHARS - used - len(view.record.name) - 5
            if room > 200:
                parts.append(f"## {view.record.name}\n{chunk[:room]}\n")
            break
        parts.append(block)
        used += len(block)
    return "\n".join(parts).strip()
