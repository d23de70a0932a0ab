"""Listing model records over 100k models, on SQLite and PostgreSQL, over HTTP.

For each database (the embedded SQLite of a fresh data directory; a PostgreSQL database the
benchmark creates on 127.0.0.1:5432 as user postgres and drops afterwards):

- migrates an empty database (`depot db upgrade`) and bulk-inserts, through SQLAlchemy Core,
  org ``bench`` with space ``models`` holding --models model records (artifact + governance
  card: names, descriptions made of words, families, types, statuses, task types, risk
  classes drawn from the enumerations, ~5% archived; ~20% with releases, ~10% with a model
  file) and a second space ``labs`` with --models / 20 more, so the org spans two spaces;
- starts `depot serve` on it and, as an org viewer over one keep-alive connection, measures
  p50/p95/p99 over --requests requests each of:
  (a) the space listing with 3 filters + ``q``, limit 50 (filters and ``q`` vary, taken from
      real rows; ~1 in 4 asks for a later page);
  (b) the organisation-wide listing, with ``X-Total-Count`` (no filter, one filter, or
      ``types``; ~1 in 4 a later page);
  (c) the plain first page of the space;
  (d) the queries of (a) again, each right after a change to one of the space's models (as
      the admin): the space's in-memory index first takes in the change (its catch-up).

PostgreSQL gets ``VACUUM ANALYZE`` after the load, as autovacuum would do; SQLite runs as
`depot serve` leaves it (no ``ANALYZE``).

Run: ``.venv/bin/python bench/listing.py [--models 100000] [--requests 300]
[--databases sqlite,postgresql]``. Writes ``bench/results/listing.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _common import DepotServer, Row, postgres_database, write_results
from sqlalchemy import insert, select, text

from depot.blobs.models import Blob
from depot.catalog.models import Artifact, File, Org, Space, Version
from depot.db.engine import Database, open_database
from depot.model_records.models import ModelCard, ModelFile
from depot.model_records.schemas import MODEL_FAMILIES

GROUP = "Listing, 100k models"
TARGETS = {
    ("filtered", "sqlite"): "< 20 ms",
    ("filtered", "postgresql"): "< 30 ms",
    ("org", "sqlite"): "< 50 ms",
    ("org", "postgresql"): "< 50 ms",
}
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

# -- what the generated models look like ---------------------------------------------------

# Each model works in one domain (a few are common, most are rare), which shows in its name and
# description; long descriptions add words from a wider vocabulary, as people write them.


def _items(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


DOMAINS = _items(
    "churn, fraud detection, credit risk, demand forecast, price optimization, product"
    " recommendation, document classification, support triage, invoice extraction, claim"
    " severity, lead scoring, energy load, predictive maintenance, sensor anomaly, route"
    " planning, inventory replenishment, customer lifetime value, sentiment analysis, search"
    " ranking, speech transcription, image moderation, defect detection, contract review,"
    " email routing, ticket summarization, code review, sales assistant, knowledge retrieval,"
    " translation, payment risk, loan default, insurance pricing, patient readmission, drug"
    " interaction, supply chain delay, warehouse picking, fleet utilization, network"
    " intrusion, login anomaly, ad click, marketing mix, campaign uplift, store traffic,"
    " basket analysis, returns prediction, talent matching, employee attrition, weather"
    " impact, grid balancing, crop yield, satellite imagery, retail shelf, voice of customer,"
    " policy compliance, audit sampling, tax classification, expense categorization, meeting"
    " notes, onboarding assistant, release notes"
)
NOUNS = {
    "traditional_ml": ("Classifier", "Regressor", "Forecaster", "Scorer", "Model", "Detector"),
    "genai": ("Assistant", "Generator", "Summarizer", "Copilot"),
    "foundation_model": ("Foundation Model", "Base Model"),
    "embedding_model": ("Embedder", "Encoder"),
    "agent": ("Agent", "Orchestrator"),
    "ai_app": ("App", "Workbench"),
    "prompt_collection": ("Prompts", "Prompt Pack"),
    "other": ("Model", "Toolkit"),
}
VERBS = (
    "predicts",
    "scores",
    "detects",
    "estimates",
    "ranks",
    "classifies",
    "flags",
    "generates",
    "summarizes",
    "recommends",
)
AUDIENCES = _items(
    "customer success, retail banking, claims handling, field operations, the finance team,"
    " merchandising, the support desk, underwriting, marketing analytics, site reliability,"
    " procurement, the legal team, clinical operations, logistics planning, product growth"
)
SOURCES = _items(
    "transaction history, clickstream events, support tickets, call transcripts, sensor"
    " telemetry, purchase orders, claim notes, web sessions, billing records, product catalog"
    " data, shipment scans, meter readings, chat logs, contract text, satellite tiles"
)
_VOCABULARY = (
    "accuracy adoption aggregate alert baseline batch benchmark bias boundary budget cadence"
    " calibration canary capacity cardinality challenger champion checkpoint cohort coverage"
    " cutoff dashboard dataset decay deployment drift encoder ensemble error evaluation feature"
    " feedback fairness freshness gradient holdout horizon hyperparameter imbalance incident"
    " inference interpretability label latency leakage lineage monitoring nightly outlier"
    " overfitting pipeline precision quantization quarterly recall refresh regional retraining"
    " rollout sampling schema seasonality segment shadow signal stability threshold throughput"
    " tokenizer training validation variance weekly window europe americas apac global"
    " regulated audited approved reviewed experimental deprecated internal external vendor"
)
WORDS = tuple(_VOCABULARY.split())
_DOMAIN_WEIGHTS = tuple(1 / (rank + 1) ** 0.8 for rank in range(len(DOMAINS)))
STOP = {"with", "from", "data", "team", "the", "for", "and", "model", "support", "decisions"}
TASKS = {
    "traditional_ml": (
        "classification",
        "regression",
        "clustering",
        "forecasting",
        "anomaly_detection",
        "recommendation",
        "ranking",
    ),
    "genai": ("llm", "classification", "other"),
    "foundation_model": ("llm", "embedding"),
    "embedding_model": ("embedding", "ranking"),
    "agent": ("agent", "llm"),
    "ai_app": ("llm", "recommendation", "other"),
    "prompt_collection": ("llm",),
    "other": ("other", "regression", "classification"),
}
TYPES = {
    "traditional_ml": ("ML Model",),
    "genai": ("AI System", "ML Model"),
    "foundation_model": ("ML Model",),
    "embedding_model": ("ML Model", "AI System"),
    "agent": ("LLM Agent", "Agent"),
    "ai_app": ("AI App",),
    "prompt_collection": ("Prompt Collection",),
    "other": ("ML Model", "AI System"),
}
FAMILY_WEIGHTS = (35, 20, 8, 10, 10, 7, 5, 5)
STATUSES = (
    ("development", 40),
    ("staging", 15),
    ("production", 30),
    ("shadow", 5),
    ("retired", 10),
)
RISKS = (("minimal", 40), ("limited", 35), ("high", 20), ("unacceptable", 5))
STAGES = ("design", "training", "validation", "deployment", "monitoring", "retirement")
FRAMEWORKS = (
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "pytorch",
    "tensorflow",
    "transformers",
    "onnx",
    "jax",
)
ARCHITECTURES = (
    "XGBoost",
    "Random Forest",
    "Logistic Regression",
    "ResNet-50",
    "BERT",
    "Llama 3",
    "Mistral 7B",
    "Temporal Fusion Transformer",
    "Prophet",
    "Isolation Forest",
)
PROVIDERS = ("ml-platform", "data-science", "openai", "anthropic", "huggingface", "vertex", None)
FILE_NAMES = ("model.onnx", "model.safetensors", "model.joblib", "weights.pt", "model.gguf")


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in weighted], [w for _, w in weighted])[0]


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _model(rng: random.Random, number: int, space_id: int, created: datetime) -> dict[str, Any]:
    """The rows of one model record: the artifact and its card (plain dicts for Core)."""
    family = rng.choices(MODEL_FAMILIES, FAMILY_WEIGHTS)[0]
    domain = rng.choices(DOMAINS, _DOMAIN_WEIGHTS)[0]
    display = f"{domain.title()} {rng.choice(NOUNS[family])} {number}"
    slug = "-".join(display.lower().split())
    description = (
        f"{rng.choice(VERBS).capitalize()} {domain} for {rng.choice(AUDIENCES)}"
        f" from {rng.choice(SOURCES)}."
    )
    archived = created + timedelta(days=30) if rng.random() < 0.05 else None
    artifact = {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "space_id": space_id,
        "name": slug,
        "kind": "model",
        "display_name": display,
        "description": description,
        "metadata": {},
        "archived_at": archived,
        "created_by_id": None,
        "created_at": created,
        "updated_at": archived or created,
    }
    card = {
        "artifact_id": artifact["id"],
        "product_type": rng.choice(TYPES[family]),
        "provider": rng.choice(PROVIDERS),
        "environment": rng.choice(("development", "staging", "production")),
        "risk_classification": _pick(rng, RISKS) if rng.random() < 0.9 else None,
        "lifecycle_stage": rng.choice(STAGES),
        "model_family": family,
        "model_task_type": rng.choice(TASKS[family]),
        "model_architecture": rng.choice(ARCHITECTURES),
        "framework": rng.choice(FRAMEWORKS),
        "long_description": _sentence(rng, 20, 60) if rng.random() < 0.5 else None,
        "intended_use": f"Support {rng.choice(AUDIENCES)} with {domain} decisions.",
        "limitations": _sentence(rng, 5, 12) if rng.random() < 0.6 else None,
        "deployment_status": _pick(rng, STATUSES),
        "serving_url": f"https://models.example.com/{slug}" if rng.random() < 0.3 else None,
        "input_schema": {"type": "object"},
        "output_schema": None,
        "ai_system_type": None,
        "vendor_name": None,
        "vendor_product_name": None,
        "vendor_model_id": None,
        "deployment_environment": None,
        "business_use_case": None,
        "is_gpai": family in ("genai", "foundation_model"),
    }
    # The same text the service keeps (depot.model_records.service._search_text).
    parts = [slug, display, artifact["description"]]
    parts += [
        card[name]
        for name in (
            "long_description",
            "intended_use",
            "limitations",
            "model_architecture",
            "framework",
            "provider",
        )
    ]
    card["search_text"] = " ".join(part for part in parts if part).lower()
    # Cards copy their model's space and times (migration 0006); older schemas lack them.
    for name in ("space_id", "created_at", "archived_at"):
        if name in ModelCard.__table__.c:
            card[name] = artifact[name]
    return {"artifact": artifact, "card": card}


def generate(
    database: Database, count: int, *, seed: int = 42, batch: int = 5000
) -> list[dict[str, Any]]:
    """Bulk-insert org ``bench`` with space ``models`` (``count`` models) and ``labs``.

    Returns the cards of the ``models`` space, to build queries from.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    cards: list[dict[str, Any]] = []
    with database.engine.begin() as connection:
        org_id = connection.execute(
            insert(Org.__table__)
            .values(slug="bench", name="Bench", created_at=now)
            .returning(Org.__table__.c.id)
        ).scalar_one()
        spaces = {}
        for slug, size in (("models", count), ("labs", max(count // 20, 1))):
            spaces[slug] = (
                connection.execute(
                    insert(Space.__table__)
                    .values(
                        org_id=org_id,
                        slug=slug,
                        name=slug.title(),
                        description="",
                        metadata={},
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Space.__table__.c.id)
                ).scalar_one(),
                size,
            )
        for slug, (space_id, size) in spaces.items():
            start = now - timedelta(days=3 * 365)
            step = timedelta(days=3 * 365) / size
            for first in range(0, size, batch):
                rows = [
                    _model(rng, n, space_id, start + step * n + timedelta(seconds=rng.random()))
                    for n in range(first, min(first + batch, size))
                ]
                connection.execute(insert(Artifact.__table__), [row["artifact"] for row in rows])
                connection.execute(insert(ModelCard.__table__), [row["card"] for row in rows])
                _releases_and_files(connection, rng, rows)
                if slug == "models":
                    cards += [row["card"] for row in rows]
    return cards


def _releases_and_files(connection: Any, rng: random.Random, rows: list[dict[str, Any]]) -> None:
    versions, blobs, files, infos = [], [], [], []
    for row in rows:
        artifact = row["artifact"]
        created = artifact["created_at"]
        if rng.random() < 0.2:
            for number in range(1, rng.randint(1, 3) + 1):
                released = created + timedelta(days=number)
                versions.append(
                    {
                        "id": uuid.uuid4(),
                        "artifact_id": artifact["id"],
                        "number": number,
                        "status": "ready",
                        "label": f"v{number}.0.0",
                        "release_type": rng.choice(("major", "minor", "patch")),
                        "released_at": released,
                        "description": "",
                        "metadata": {},
                        "manifest": {},
                        "tags": [],
                        "commit_id": uuid.uuid4().hex + uuid.uuid4().hex[:8],
                        "created_by_id": None,
                        "created_at": released,
                        "updated_at": released,
                        "finalized_at": released,
                    }
                )
        if rng.random() < 0.1:
            file_id = uuid.uuid4()
            sha = hashlib.sha256(file_id.bytes).hexdigest()
            size = rng.randint(10**5, 10**9)
            blobs.append(
                {"sha256": sha, "size": size, "created_at": created, "touched_at": created}
            )
            files.append(
                {
                    "id": file_id,
                    "artifact_id": artifact["id"],
                    "version_id": None,
                    "path": rng.choice(FILE_NAMES),
                    "blob_sha256": sha,
                    "size": size,
                    "content_type": "application/octet-stream",
                    "metadata": {},
                    "created_by_id": None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            infos.append(
                {
                    "file_id": file_id,
                    "artifact_id": artifact["id"],
                    "artifact_kind": "model_binary",
                    "version_label": None,
                    "version_id": None,
                    "training_run_id": None,
                    "external_uri": None,
                    "is_current": True,
                    "upload_id": None,
                    "uploaded_by_id": None,
                    "uploaded_at": created,
                }
            )
    for model, values in ((Version, versions), (Blob, blobs), (File, files), (ModelFile, infos)):
        if values:
            connection.execute(insert(model.__table__), values)


# -- the requests ----------------------------------------------------------------------------

_FILTERS = ("model_family", "deployment_status", "model_task_type", "risk_classification", "types")


def _filter_value(card: dict[str, Any], name: str) -> str | None:
    value = card["product_type"] if name == "types" else card[name]
    return value if isinstance(value, str) else None


def filtered_queries(rng: random.Random, cards: list[dict[str, Any]], n: int) -> list[str]:
    """(a): 3 filters and a word (or part of one) of a real model; 1 in 4 a later page."""
    queries = []
    while len(queries) < n:
        card = rng.choice(cards)
        names = rng.sample(_FILTERS, 3)
        params = [(name, _filter_value(card, name)) for name in names]
        if any(value is None for _, value in params):
            continue
        q = _query_word(rng, card)
        skip = rng.choice((50, 100)) if rng.random() < 0.25 else 0
        params += [("q", q), ("limit", "50"), ("skip", str(skip))]
        queries.append(urlencode(params))
    return queries


def _query_word(rng: random.Random, card: dict[str, Any]) -> str:
    """What someone types: mostly a word of the name, else of the text; 1 in 5 a part of one."""
    name, _, rest = card["search_text"].partition(" ")
    source = name.replace("-", " ") if rng.random() < 0.6 else rest
    words = [w.strip(".,") for w in source.split() if len(w) >= 4 and not w.isdigit()]
    word = rng.choice([w for w in words if w not in STOP] or ["model"])
    if rng.random() < 0.2:
        start = rng.randint(0, max(0, len(word) - 4))
        word = word[start : start + rng.randint(3, 6)]
    return word


def org_queries(rng: random.Random, cards: list[dict[str, Any]], n: int) -> list[str]:
    """(b): the org-wide listing: no filter, one filter, or types; 1 in 4 a later page."""
    queries = []
    for _ in range(n):
        card = rng.choice(cards)
        shape = rng.random()
        params: list[tuple[str, str]] = []  # below 0.4: no filter at all
        if 0.4 <= shape < 0.7:
            params.append(("types", card["product_type"]))
        elif shape >= 0.7:
            name = rng.choice(("model_family", "deployment_status", "model_task_type"))
            params.append((name, card[name]))
        skip = rng.choice((50, 500, 5000)) if rng.random() < 0.25 else 0
        params += [("limit", "50"), ("skip", str(skip))]
        queries.append(urlencode(params))
    return queries


class Client:
    """One keep-alive connection; ``get`` returns (status, headers, body, milliseconds)."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes, float]:
        return self.request("GET", path)

    def request(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, http.client.HTTPMessage, bytes, float]:
        started = time.perf_counter()
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, response.headers, body, elapsed


def percentiles(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": ordered[-1],
        "requests": len(ordered),
    }


def measure(client: Client, paths: list[str], warmup: int = 20) -> dict[str, Any]:
    """Time each path once (after ``warmup`` untimed ones); check 200 and the headers."""
    for path in paths[:warmup]:
        client.get(path)
    timings, totals, sizes = [], [], []
    for path in paths:
        status, headers, body, elapsed = client.get(path)
        if status != 200 or "x-total-count" not in headers:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        timings.append(elapsed)
        totals.append(int(headers["x-total-count"]))
        sizes.append(len(json.loads(body)))
    return {
        **percentiles(timings),
        "median_total": statistics.median(totals),
        "median_items": statistics.median(sizes),
        "empty_pages": sum(1 for size in sizes if size == 0),
    }


def measure_after_changes(
    client: Client, editor: Client, cards: list[dict[str, Any]], paths: list[str]
) -> dict[str, Any]:
    """Time each path right after ``editor`` changed one of the models (untimed)."""
    timings = []
    for number, path in enumerate(paths):
        card = cards[number * 7919 % len(cards)]
        status, _, body, _ = editor.request(
            "PATCH",
            f"/api/v1.0/catalog/products/{card['artifact_id']}/model-repository",
            {"limitations": f"reviewed in round {number}"},
        )
        if status != 200:
            raise RuntimeError(f"PATCH model {card['artifact_id']}: {status} {body[:300]!r}")
        status, _, body, elapsed = client.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        timings.append(elapsed)
    return percentiles(timings)


# -- one database -------------------------------------------------------------------------------


def depot(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "depot", *args], capture_output=True, text=True, env=env
    )
    if result.returncode:
        raise RuntimeError(f"depot {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def run_one(kind: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tmp / kind / "data"
    env = dict(os.environ)
    with postgres_database("listing") if kind == "postgresql" else _nothing() as pg_url:
        url = pg_url or f"sqlite:///{data_dir / 'depot.db'}"
        if pg_url:
            env["DEPOT_DATABASE_URL"] = pg_url
        depot("db", "upgrade", "--data-dir", str(data_dir), env=env)
        database = open_database(url)
        started = time.perf_counter()
        cards = generate(database, args.models)
        load_seconds = time.perf_counter() - started
        if kind == "postgresql":
            with database.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE")
                )
        with database.engine.connect() as connection:
            total = connection.execute(select(Artifact.id).limit(1)).first()
            assert total is not None
        database.dispose()
        print(f"{NAMES[kind]}: {args.models} models loaded in {load_seconds:.0f} s", flush=True)
        rng = random.Random(7)
        plans = {
            "filtered": [
                f"/api/v1.0/catalog/spaces/models/model-repository/models?{query}"
                for query in filtered_queries(rng, cards, args.requests)
            ],
            "org": [
                f"/api/v1.0/organizations/bench/model-repository/models?{query}"
                for query in org_queries(rng, cards, args.requests)
            ],
            "first_page": ["/api/v1.0/catalog/spaces/models/model-repository/models"]
            * args.requests,
        }
        with DepotServer(data_dir, env=env) as server:
            token = server.admin("create-user", "viewer", "--org", "bench").strip().splitlines()[-1]
            client = Client(server.port, token)
            figures = {name: measure(client, paths) for name, paths in plans.items()}
            editor = Client(server.port, server.token)
            figures["after_change"] = measure_after_changes(
                client, editor, cards, plans["filtered"][: max(args.requests // 3, 20)]
            )
            editor.connection.close()
            client.connection.close()
    return {"load_seconds": load_seconds, "figures": figures}


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    results: dict[str, Any] = {}
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="bench/results") as tmp:
        for kind in kinds:
            results[kind] = run_one(kind, Path(tmp), args)
    labels = {
        "filtered": "space list, 3 filters + q, limit 50",
        "org": "org-wide list with X-Total-Count",
        "first_page": "space list, first page",
        "after_change": "space list, 3 filters + q, after a change",
    }
    rows = []
    print(f"\nListing, {args.models} models in a space, {args.requests} requests each")
    print(f"{'figure':48} {'p50':>7} {'p95':>7} {'p99':>7}  target")
    for kind in kinds:
        for name, label in labels.items():
            figure = results[kind]["figures"][name]
            target = TARGETS.get((name, kind), "")
            print(
                f"{label + ' (' + NAMES[kind] + ')':48} {figure['p50_ms']:7.1f}"
                f" {figure['p95_ms']:7.1f} {figure['p99_ms']:7.1f}  {target}"
            )
            rows.append(
                Row(
                    group=GROUP,
                    figure=f"{label}, p95 ({NAMES[kind]})",
                    value=round(figure["p95_ms"], 2),
                    unit="ms",
                    target=target,
                    lower_is_better=True,
                )
            )
    out = write_results(
        "listing", {"models": args.models, "requests": args.requests, **results}, rows
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
