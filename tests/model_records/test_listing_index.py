"""The in-memory listing index: kept current by the triggers' generations, answering as SQL does."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from depot.catalog import browse
from depot.catalog import service as catalog
from depot.catalog.models import Artifact, Space
from depot.db.engine import Database, open_database
from depot.model_records import listing_index
from depot.model_records import service as records
from depot.model_records.models import ModelCard, ModelListingGeneration
from depot.model_records.schemas import ModelRecordChanges, ModelRecordCreate
from tests.conftest import World

BASE = "/api/v1.0"
FAMILIES = ("traditional_ml", "genai", "agent", None)
TYPES = ("ML Model", "AI System", "LLM Agent")
STATUSES = ("development", "production", "retired")
TASKS = ("classification", "llm", "regression", None)
RISKS = ("minimal", "high", None)
WORDS = ("churn", "fraud", "forecast", "ranking", "Überprüfung", "50%_off", "assistant")


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every space is indexed, however small; no index is left for the next test."""
    monkeypatch.setattr(listing_index, "MIN_MODELS", 1)
    monkeypatch.setattr(listing_index, "REBUILD_FACTOR", 0)  # a change is rebuilt at once
    listing_index.clear()
    yield
    listing_index.wait_for_builds()
    listing_index.clear()


def _generation(database: Database, space_id: int) -> int:
    with database.read() as db:
        found = db.scalar(
            select(ModelListingGeneration.generation).where(
                ModelListingGeneration.space_id == space_id
            )
        )
        return found or 0


def test_every_change_to_a_card_bumps_its_spaces_generation(database: Database) -> None:
    with database.write() as db:
        org = catalog.create_org(db, "acme")
        space = catalog.create_space(db, org, "ml")
        other = catalog.create_space(db, org, "web")
    seen = [_generation(database, space.id)]
    with database.write() as db:
        model = records.create_model_record(
            db, space, ModelRecordCreate(name="Churn"), created_by_id=None
        )
    seen.append(_generation(database, space.id))
    with database.write() as db:
        records.update_model_record(
            db, db.get_one(Artifact, model.id), ModelRecordChanges(model_family="genai")
        )
    seen.append(_generation(database, space.id))
    with database.write() as db:
        # A card written by statement, as no service does: the trigger still counts it.
        db.execute(update(ModelCard).values(model_family="agent"))
    seen.append(_generation(database, space.id))
    with database.write() as db:
        # A column no listing reads: nothing to count.
        db.execute(update(ModelCard).values(serving_url="https://models.example.com"))
    assert _generation(database, space.id) == seen[-1]
    with database.write() as db:
        browse.delete_artifact(db, db.get_one(Artifact, model.id))  # the card goes by cascade
    seen.append(_generation(database, space.id))

    assert seen == sorted(set(seen)), seen  # each step moved it on
    assert _generation(database, other.id) == 0


def _body(rng: random.Random, number: int) -> dict[str, Any]:
    words = rng.sample(WORDS, 2)
    return {
        "name": f"{words[0]} model {number}",
        "slug": f"model-{number}",
        "description": f"{words[1]} for the team",
        "product_type": rng.choice(TYPES),
        "model_family": rng.choice(FAMILIES),
        "deployment_status": rng.choice(STATUSES),
        "model_task_type": rng.choice(TASKS),
        "risk_classification": rng.choice(RISKS),
    }


def _queries(rng: random.Random) -> list[list[tuple[str, str]]]:
    filters = {
        "model_family": [f for f in FAMILIES if f],
        "types": list(TYPES),
        "deployment_status": list(STATUSES),
        "model_task_type": [t for t in TASKS if t],
        "risk_classification": [r for r in RISKS if r],
    }
    queries: list[list[tuple[str, str]]] = [[], [("include_archived", "true")]]
    for _ in range(60):
        params = [
            (name, rng.choice(values)) for name, values in filters.items() if rng.random() < 0.4
        ]
        if rng.random() < 0.3:
            params.append(("types", rng.choice(TYPES)))  # a second type: either matches
        if rng.random() < 0.7:
            word = rng.choice([*WORDS, "model 1", "ODEL", "%", "_", "nothing-like-it"])
            start = rng.randint(0, max(0, len(word) - 3))
            params.append(("q", word[start:] if rng.random() < 0.3 else word))
        if rng.random() < 0.3:
            params.append(("include_archived", "true"))
        params += [("skip", str(rng.choice((0, 0, 3, 10)))), ("limit", str(rng.choice((5, 50))))]
        queries.append(params)
    return queries


async def _create(client: httpx.AsyncClient, world: World, body: dict[str, Any]) -> Any:
    response = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models", json=body, headers=world.auth("alice")
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _listing(
    client: httpx.AsyncClient, world: World, params: list[tuple[str, str]]
) -> tuple[list[str], str]:
    response = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        params=params,
        headers=world.auth("bob"),
    )
    assert response.status_code == 200, response.text
    return [model["id"] for model in response.json()], response.headers["x-total-count"]


@pytest.mark.anyio
async def test_the_index_answers_every_filter_and_page_as_sql_does(
    client: httpx.AsyncClient,
    world: World,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    indexed: None,
) -> None:
    rng = random.Random(3)
    created = [(await _create(client, world, _body(rng, number)))["id"] for number in range(40)]
    for product in rng.sample(created, 8):
        response = await client.patch(
            f"{BASE}/catalog/products/{product}/model-repository",
            json={"is_archived": True},
            headers=world.auth("alice"),
        )
        assert response.status_code == 200, response.text
    queries = _queries(rng)

    monkeypatch.setattr(listing_index, "MIN_MODELS", 10**9)  # every answer from SQL
    from_sql = [await _listing(client, world, params) for params in queries]
    listing_index.wait_for_builds()
    listing_index.clear()
    monkeypatch.setattr(listing_index, "MIN_MODELS", 1)
    await _listing(client, world, [])  # asks for the index
    listing_index.wait_for_builds()
    from_index = [await _listing(client, world, params) for params in queries]

    with database.read() as db:  # the answers above came from the index
        assert listing_index.listing_page(
            db, world.ml.id, {}, q=None, include_archived=True, skip=0, limit=1
        ) == ([uuid.UUID(from_sql[1][0][0])], 40)
    for params, expected, answered in zip(queries, from_sql, from_index, strict=True):
        assert answered == expected, params
    assert sum(int(total) for _, total in from_sql) > 0


@pytest.mark.anyio
async def test_a_change_is_taken_into_the_index_at_once(
    client: httpx.AsyncClient, world: World, database: Database, indexed: None
) -> None:
    rng = random.Random(5)
    for number in range(5):
        await _create(client, world, {**_body(rng, number), "name": f"churn model {number}"})
    await _listing(client, world, [])
    listing_index.wait_for_builds()
    assert (await _listing(client, world, [("q", "churn")]))[1] == "5"

    newest = (await _create(client, world, {"name": "Churn Radar", "slug": "churn-radar"}))["id"]

    # The index is a generation behind: it takes the new card in and answers, no waiting.
    with database.read() as db:
        page = listing_index.listing_page(
            db, world.ml.id, {}, q="churn", include_archived=False, skip=0, limit=50
        )
    assert page is not None and (str(page[0][0]), page[1]) == (newest, 6)
    ids, total = await _listing(client, world, [("q", "churn")])
    assert (ids[0], total) == (newest, "6")


def _new_space(database: Database) -> Space:
    with database.write() as db:
        return catalog.create_space(db, catalog.create_org(db, "acme"), "ml")


def _add_model(database: Database, space: Space, name: str) -> None:
    with database.write() as db:
        records.create_model_record(db, space, ModelRecordCreate(name=name), created_by_id=None)


def _indexed_total(database: Database, space: Space, q: str | None = None) -> int | None:
    """The number of models the index lists, or None when SQL is left to answer."""
    with database.read() as db:
        found = listing_index.listing_page(
            db, space.id, {}, q=q, include_archived=False, skip=0, limit=50
        )
    return None if found is None else found[1]


def test_a_change_made_through_another_engine_is_never_missed(
    database: Database, database_url: str, indexed: None
) -> None:
    space = _new_space(database)
    for number in range(3):
        _add_model(database, space, f"Churn {number}")

    assert _indexed_total(database, space, "churn") is None  # nothing built yet: SQL answers
    listing_index.wait_for_builds()
    assert _indexed_total(database, space, "churn") == 3

    replica = open_database(database_url)  # another process or replica, in effect
    try:
        _add_model(replica, space, "Churn 3")
    finally:
        replica.dispose()

    assert _indexed_total(database, space, "churn") == 4  # the index took the new card in


def test_a_small_space_is_left_to_sql(
    database: Database, monkeypatch: pytest.MonkeyPatch, indexed: None
) -> None:
    monkeypatch.setattr(listing_index, "MIN_MODELS", 3)
    space = _new_space(database)
    answers = []
    for number in range(4):
        _add_model(database, space, f"Model {number}")
        _indexed_total(database, space)  # asks for an index, if the space is large enough
        listing_index.wait_for_builds()
        answers.append(_indexed_total(database, space))
    assert answers == [None, None, 3, 4]


def test_an_index_too_far_behind_is_read_again(
    database: Database, monkeypatch: pytest.MonkeyPatch, indexed: None
) -> None:
    monkeypatch.setattr(listing_index, "CATCH_UP_AT_MOST", 1)
    space = _new_space(database)
    _add_model(database, space, "Model 0")
    assert _indexed_total(database, space) is None
    listing_index.wait_for_builds()
    _add_model(database, space, "Model 1")
    assert _indexed_total(database, space) == 2  # one generation behind: caught up
    _add_model(database, space, "Model 2")
    _add_model(database, space, "Model 3")
    assert _indexed_total(database, space) is None  # two behind: SQL answers meanwhile...
    listing_index.wait_for_builds()
    assert _indexed_total(database, space) == 4  # ...and the space was read again


@pytest.mark.anyio
async def test_an_index_caught_up_with_every_kind_of_change_answers_as_sql_does(
    client: httpx.AsyncClient,
    world: World,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    indexed: None,
) -> None:
    rng = random.Random(11)
    slugs: dict[str, str] = {}
    for number in range(30):
        created = await _create(client, world, _body(rng, number))
        slugs[created["id"]] = created["slug"]
    await _listing(client, world, [])
    listing_index.wait_for_builds()
    queries = _queries(rng)
    for round_ in range(4):
        # A few of every change: new models, changed filters and texts, archived and
        # restored ones, deleted ones (their cards go by cascade).
        for number in range(30 + round_ * 3, 33 + round_ * 3):
            created = await _create(client, world, _body(rng, number))
            slugs[created["id"]] = created["slug"]
        for product in rng.sample(sorted(slugs), 4):
            changes = {
                key: value
                for key, value in _body(rng, 0).items()
                if key not in ("slug",) and rng.random() < 0.5
            } | {"is_archived": rng.random() < 0.3}
            response = await client.patch(
                f"{BASE}/catalog/products/{product}/model-repository",
                json=changes,
                headers=world.auth("alice"),
            )
            assert response.status_code == 200, response.text
        for product in rng.sample(sorted(slugs), 2):
            response = await client.delete(
                f"/api/v1/orgs/acme/spaces/ml/artifacts/{slugs.pop(product)}",
                headers=world.auth("alice"),
            )
            assert response.status_code == 204, response.text

        with database.read() as db:  # caught up in place, without reading the space again
            assert (
                listing_index.listing_page(
                    db, world.ml.id, {}, q=None, include_archived=True, skip=0, limit=1
                )
                is not None
            )
        from_index = [await _listing(client, world, params) for params in queries]
        with monkeypatch.context() as sql_only:
            sql_only.setattr(listing_index, "listing_page", lambda *_, **__: None)
            from_sql = [await _listing(client, world, params) for params in queries]
        for params, expected, answered in zip(queries, from_sql, from_index, strict=True):
            assert answered == expected, (round_, params)
