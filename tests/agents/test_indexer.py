"""The indexer embeds between two transactions, and copes with what happens meanwhile."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select

from depot.agents.indexer import index_pending
from depot.agents.models import AgentRecord
from depot.db.base import utcnow
from depot.search.models import SearchChunk
from depot.services import Services
from tests.conftest import World

pytestmark = pytest.mark.anyio

NS = "/v1/orgs/acme/workspaces/ml/namespaces/research"


class Hooked:
    """The real embedder, with something run inside each call to ``embed``."""

    def __init__(self, services: Services, during: Any) -> None:
        self.inner = services.embedder
        self.during = during
        self.model_id = self.inner.model_id
        self.max_tokens = self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.during()
        return self.inner.embed(texts)


async def create(client: httpx.AsyncClient, world: World, content: str) -> uuid.UUID:
    response = await client.post(
        f"{NS}/artifacts", headers=world.auth("alice"), json={"name": "notes", "content": content}
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["artifact_id"])  # the id of this version


def record_of(services: Services, key: uuid.UUID) -> AgentRecord:
    with services.database.read() as db:
        record = db.get(AgentRecord, key)
        assert record is not None
        return record


def chunks_of(services: Services, key: uuid.UUID) -> list[str]:
    with services.database.read() as db:
        return list(db.scalars(select(SearchChunk.text).where(SearchChunk.version_id == key)))


async def test_a_change_while_embedding_is_indexed_next_time(
    client: httpx.AsyncClient, world: World, services: Services
) -> None:
    key = await create(client, world, "cats eat fish")

    def edit() -> None:
        # No transaction of the indexer is open now, so this write does not wait on it.
        with services.database.write() as db:
            record = db.get(AgentRecord, key)
            assert record is not None
            record.content_text = "dogs bark"
            record.is_indexed, record.index_due_at = False, utcnow()

    assert index_pending(services.database, Hooked(services, edit)) == 0
    assert record_of(services, key).is_indexed is False and chunks_of(services, key) == []
    assert index_pending(services.database, services.embedder) == 1
    assert record_of(services, key).is_indexed is True
    assert chunks_of(services, key) == ["dogs bark"]


async def test_a_failed_embedding_is_recorded_and_retried_later(
    client: httpx.AsyncClient, world: World, services: Services
) -> None:
    key = await create(client, world, "cats eat fish")

    def fail() -> None:
        raise RuntimeError("out of memory")

    assert index_pending(services.database, Hooked(services, fail)) == 0
    record = record_of(services, key)
    assert record.is_indexed is False and record.index_attempts == 1
    assert record.index_error == "RuntimeError: out of memory"
    assert record.index_due_at is not None and record.index_due_at > utcnow()
    assert chunks_of(services, key) == []
