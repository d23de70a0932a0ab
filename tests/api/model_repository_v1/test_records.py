from __future__ import annotations

from typing import Any

import httpx
import pytest

from depot.catalog import service as catalog
from depot.db.engine import Database
from tests.conftest import World

pytestmark = pytest.mark.anyio

BASE = "/api/v1.0"
CHURN: dict[str, Any] = {
    "name": "Churn Prediction Model",
    "slug": "churn-prediction-model",
    "description": "Predicts account churn risk for customer success workflows.",
    "long_description": "Gradient boosted trees over 30 days of product usage.",
    "product_type": "ML Model",
    "provider": "ml-platform",
    "environment": "production",
    "risk_classification": "limited",
    "lifecycle_stage": "monitoring",
    "model_family": "traditional_ml",
    "model_task_type": "classification",
    "model_architecture": "XGBoost",
    "framework": "scikit-learn",
    "intended_use": "Prioritize customer success outreach.",
    "limitations": "Not calibrated for accounts with less than 30 days of activity.",
    "deployment_status": "production",
    "serving_url": "https://models.example.com/churn",
    "input_schema": {"type": "object", "required": ["account_id", "usage_30d"]},
    "output_schema": {"type": "object", "properties": {"churn_probability": {"type": "number"}}},
    "ai_system_type": "predictive",
    "vendor_name": "Acme",
    "vendor_product_name": "Churn Suite",
    "vendor_model_id": "churn-v2",
    "deployment_environment": "aws-eu-west-1",
    "business_use_case": "Retention",
    "is_gpai": False,
}


async def create(
    client: httpx.AsyncClient,
    world: World,
    body: dict[str, Any],
    space: str = "ml",
    who: str = "alice",
) -> httpx.Response:
    return await client.post(
        f"{BASE}/catalog/spaces/{space}/model-repository/models", json=body, headers=world.auth(who)
    )


async def test_create_stores_and_returns_every_field(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await create(client, world, CHURN)
    assert response.status_code == 201, response.text
    summary = response.json()
    for key, value in CHURN.items():
        if key != "slug":
            assert summary[key] == value, key
    assert summary["slug"] == "churn-prediction-model"
    assert summary["space_id"] == world.ml.id
    assert (summary["space_slug"], summary["space_name"]) == ("ml", "ml")
    assert summary["version_count"] == 0 and summary["current_version_id"] is None
    assert summary["artifact_count"] == 0 and summary["current_artifact_id"] is None
    assert summary["is_archived"] is False
    assert summary["created_at"] and summary["updated_at"]


async def test_defaults_and_derived_slug(client: httpx.AsyncClient, world: World) -> None:
    summary = (await create(client, world, {"name": "Fraud Scorer v2!"})).json()
    assert summary["slug"] == "fraud-scorer-v2"
    assert summary["product_type"] == "ML Model"
    assert summary["environment"] == "development"
    assert summary["deployment_status"] == "development"
    assert summary["description"] is None and summary["model_family"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "product_type": "Spreadsheet"}, "product_type"),
        ({"name": "x", "model_family": "quantum"}, "model_family"),
        ({"description": "no name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "input_schema": "not an object"}, "input_schema"),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await create(client, world, body)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert any(problem["loc"][-1] == field for problem in problems), problems


async def test_duplicate_slug_conflicts(client: httpx.AsyncClient, world: World) -> None:
    assert (await create(client, world, {"name": "Twin"})).status_code == 201
    response = await create(client, world, {"name": "Twin"})
    assert response.status_code == 409 and "twin" in response.json()["detail"]
    bad = await create(client, world, {"name": "Bad", "slug": "-bad-"})
    assert bad.status_code == 422


async def test_create_needs_edit_on_the_space(client: httpx.AsyncClient, world: World) -> None:
    assert (await create(client, world, {"name": "m"}, who="bob")).status_code == 403
    assert (await create(client, world, {"name": "m"}, who="dave")).status_code == 404
    assert (await create(client, world, {"name": "m"}, space="web", who="alice")).status_code == 404
    anonymous = await client.post(
        f"{BASE}/catalog/spaces/ml/model-repository/models", json={"name": "m"}
    )
    assert anonymous.status_code == 401


async def seed(client: httpx.AsyncClient, world: World) -> None:
    models = [
        {
            "name": "Churn",
            "model_family": "traditional_ml",
            "deployment_status": "production",
            "model_task_type": "classification",
            "risk_classification": "limited",
            "framework": "XGBoost",
        },
        {
            "name": "Support Bot",
            "product_type": "LLM Agent",
            "model_family": "genai",
            "model_task_type": "llm",
            "risk_classification": "high",
            "intended_use": "Answer billing questions",
        },
        {
            "name": "Embedder",
            "product_type": "AI System",
            "model_family": "embedding_model",
            "model_task_type": "embedding",
            "provider": "OpenWeights",
        },
        {
            "name": "Forecast",
            "model_family": "traditional_ml",
            "model_task_type": "forecasting",
            "limitations": "Weekly seasonality only",
        },
    ]
    for body in models:
        assert (await create(client, world, body)).status_code == 201


async def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(model["name"] for model in response.json())


async def test_filters(client: httpx.AsyncClient, world: World) -> None:
    await seed(client, world)
    url = f"{BASE}/catalog/spaces/ml/model-repository/models"
    auth = world.auth("bob")

    async def query(params: Any) -> list[str]:
        return await names(await client.get(url, params=params, headers=auth))

    assert await query({}) == ["Churn", "Embedder", "Forecast", "Support Bot"]
    assert await query({"model_family": "traditional_ml"}) == ["Churn", "Forecast"]
    assert await query([("types", "LLM Agent"), ("types", "AI System")]) == [
        "Embedder",
        "Support Bot",
    ]
    assert await query({"types": "ML Model"}) == ["Churn", "Forecast"]
    assert await query({"deployment_status": "production"}) == ["Churn"]
    assert await query({"model_task_type": "embedding"}) == ["Embedder"]
    assert await query({"risk_classification": "high"}) == ["Support Bot"]
    assert await query(
        {
            "model_family": "traditional_ml",
            "model_task_type": "forecasting",
            "deployment_status": "development",
            "q": "weekly",
        }
    ) == ["Forecast"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("xgboost", ["Churn"]),  # framework
        ("BILLING", ["Support Bot"]),  # intended use, any case
        ("openweights", ["Embedder"]),  # provider
        ("seasonality", ["Forecast"]),  # limitations
        ("embed", ["Embedder"]),  # name, partial
        ("100%", []),  # LIKE wildcards are literal
        ("_", []),
    ],
)
async def test_q_searches_text_fields(
    client: httpx.AsyncClient, world: World, q: str, expected: list[str]
) -> None:
    await seed(client, world)
    response = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        params={"q": q},
        headers=world.auth("alice"),
    )
    assert await names(response) == expected


@pytest.mark.parametrize(
    "params",
    [{"types": "Spreadsheet"}, {"model_family": "x"}, {"limit": 0}, {"limit": 1001}, {"skip": -1}],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, world: World, params: dict[str, Any]
) -> None:
    response = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        params=params,
        headers=world.auth("alice"),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]


async def test_pagination_headers(client: httpx.AsyncClient, world: World) -> None:
    await seed(client, world)
    url = f"{BASE}/catalog/spaces/ml/model-repository/models"
    seen: list[str] = []
    for skip, page, more in ((0, "1", "true"), (2, "2", "false")):
        response = await client.get(
            url, params={"skip": skip, "limit": 2}, headers=world.auth("alice")
        )
        assert response.headers["x-total-count"] == "4"
        assert response.headers["x-page"] == page
        assert response.headers["x-has-more"] == more
        seen += [model["name"] for model in response.json()]
    assert sorted(seen) == ["Churn", "Embedder", "Forecast", "Support Bot"]
    # Newest first, and stable from one page to the next.
    assert seen == ["Forecast", "Embedder", "Support Bot", "Churn"]
    beyond = await client.get(url, params={"skip": 10, "limit": 2}, headers=world.auth("alice"))
    assert beyond.json() == [] and beyond.headers["x-page"] == "6"
    assert beyond.headers["x-has-more"] == "false"


async def test_archiving(client: httpx.AsyncClient, world: World) -> None:
    model = (await create(client, world, {"name": "Old"})).json()
    url = f"{BASE}/catalog/spaces/ml/model-repository/models"
    patch = await client.patch(
        f"{BASE}/catalog/products/{model['id']}/model-repository",
        json={"is_archived": True},
        headers=world.auth("alice"),
    )
    assert patch.json()["is_archived"] is True and patch.json()["archived_at"]
    assert (await client.get(url, headers=world.auth("alice"))).json() == []
    listed = await client.get(url, params={"include_archived": "true"}, headers=world.auth("alice"))
    assert [m["slug"] for m in listed.json()] == ["old"]
    restored = await client.patch(
        f"{BASE}/catalog/products/{model['id']}/model-repository",
        json={"is_archived": False},
        headers=world.auth("alice"),
    )
    assert restored.json()["is_archived"] is False


async def test_update_changes_only_what_is_sent(client: httpx.AsyncClient, world: World) -> None:
    model = (await create(client, world, CHURN)).json()
    url = f"{BASE}/catalog/products/{model['id']}/model-repository"
    changes = {
        "deployment_status": "retired",
        "lifecycle_stage": "retirement",
        "limitations": "Retired after the v3 model replaced this workflow.",
    }
    response = await client.patch(url, json=changes, headers=world.auth("alice"))
    assert response.status_code == 200
    updated = response.json()
    for key, value in changes.items():
        assert updated[key] == value
    for key in ("framework", "provider", "input_schema", "intended_use", "name"):
        assert updated[key] == model[key]
    renamed = await client.patch(
        url, json={"name": "Churn v1", "description": None}, headers=world.auth("alice")
    )
    assert renamed.json()["name"] == "Churn v1" and renamed.json()["description"] is None
    assert renamed.json()["slug"] == "churn-prediction-model"
    bad = await client.patch(url, json={"product_type": "Nope"}, headers=world.auth("alice"))
    assert bad.status_code == 422


async def test_update_permissions(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    model = (await create(client, world, {"name": "Guarded"})).json()
    url = f"{BASE}/catalog/products/{model['id']}/model-repository"
    assert (await client.patch(url, json={}, headers=world.auth("bob"))).status_code == 403
    assert (await client.patch(url, json={}, headers=world.auth("dave"))).status_code == 404
    assert (await client.patch(url, json={}, headers=world.auth("carol"))).status_code == 200
    missing = f"{BASE}/catalog/products/00000000-0000-4000-8000-000000000000/model-repository"
    assert (await client.patch(missing, json={}, headers=world.auth("root"))).status_code == 404
    bad_id = f"{BASE}/catalog/products/not-a-uuid/model-repository"
    assert (await client.patch(bad_id, json={}, headers=world.auth("root"))).status_code == 422
    with database.write() as db:
        other = catalog.create_artifact(db, catalog.get_space(db, "acme", "ml"), "data", "artifact")
        other_id = other.id
    not_a_model = f"{BASE}/catalog/products/{other_id}/model-repository"
    assert (await client.patch(not_a_model, json={}, headers=world.auth("root"))).status_code == 404


async def test_organization_listing_covers_visible_spaces(
    client: httpx.AsyncClient, world: World
) -> None:
    await create(client, world, {"name": "In ML"}, space="ml", who="carol")
    await create(client, world, {"name": "In Web"}, space="web", who="carol")
    url = f"{BASE}/organizations/acme/model-repository/models"
    assert await names(await client.get(url, headers=world.auth("bob"))) == ["In ML", "In Web"]
    alice = await client.get(url, headers=world.auth("alice"))
    assert await names(alice) == ["In ML"] and alice.headers["x-total-count"] == "1"
    assert (await client.get(url, headers=world.auth("dave"))).status_code == 404
    other = f"{BASE}/organizations/globex/model-repository/models"
    assert (await client.get(other, headers=world.auth("alice"))).status_code == 404
    assert (
        await client.get(
            f"{BASE}/organizations/nope/model-repository/models", headers=world.auth("root")
        )
    ).status_code == 404


async def test_same_space_slug_in_two_orgs(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    with database.write() as db:
        catalog.create_space(db, catalog.get_org(db, "globex"), "ml")
    url = f"{BASE}/catalog/spaces/ml/model-repository/models"
    # alice sees only acme's ml: no ambiguity for her.
    assert (await client.get(url, headers=world.auth("alice"))).status_code == 200
    ambiguous = await client.get(url, headers=world.auth("root"))
    assert ambiguous.status_code == 422
    assert "acme:ml" in ambiguous.json()["detail"][0]["msg"]
    qualified = await client.get(
        f"{BASE}/catalog/spaces/globex:ml/model-repository/models", headers=world.auth("root")
    )
    assert qualified.status_code == 200


async def test_product_limit(client: httpx.AsyncClient, world: World, app: Any) -> None:
    services = app.state.services
    services.settings = services.settings.model_copy(update={"catalog_product_limit": 1})
    assert (await create(client, world, {"name": "First"})).status_code == 201
    response = await create(client, world, {"name": "Second"})
    assert response.status_code == 403
    assert "catalog product limit of 1" in response.json()["detail"]


async def test_version_summary_follows_releases(client: httpx.AsyncClient, world: World) -> None:
    model = (await create(client, world, {"name": "Released"})).json()
    url = f"/api/v1/orgs/acme/spaces/ml/artifacts/{model['slug']}/versions"
    for release_type in ("major", "minor"):
        response = await client.post(
            url,
            json={
                "label": f"v-{release_type}",
                "release_type": release_type,
                "released_at": "2026-01-02T03:04:05Z",
            },
            headers=world.auth("alice"),
        )
        assert response.status_code == 201, response.text
    latest = response.json()
    listed = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models", headers=world.auth("alice")
    )
    [summary] = listed.json()
    assert summary["version_count"] == 2
    assert summary["current_version_id"] == latest["id"]
    assert summary["current_version_number"] == 2
    assert summary["current_version_type"] == "minor"
    assert summary["current_version_release_date"].startswith("2026-01-02T03:04:05")
    viewer = await client.post(url, json={}, headers=world.auth("bob"))
    assert viewer.status_code == 403


async def test_models_made_by_other_surfaces_are_listed_with_default_cards(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    # Listings read cards alone: a model created by the core (as the ML and native APIs
    # and the Hugging Face surface do) must get one, found by `q` and the default filters.
    with database.write() as db:
        space = catalog.get_space(db, "acme", "ml")
        catalog.create_artifact(db, space, "from-elsewhere", "model", description="Ranker")
        catalog.create_artifact(db, space, "not-a-model", "artifact")
    listed = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models",
        params={"q": "ranker", "deployment_status": "development", "types": "ML Model"},
        headers=world.auth("alice"),
    )
    assert listed.status_code == 200, listed.text
    assert [model["slug"] for model in listed.json()] == ["from-elsewhere"]
    assert listed.headers["X-Total-Count"] == "1"
    everything = await client.get(
        f"{BASE}/catalog/spaces/ml/model-repository/models", headers=world.auth("alice")
    )
    assert [model["slug"] for model in everything.json()] == ["from-elsewhere"]
