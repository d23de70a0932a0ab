"""Shared fixtures: the two configurations Depot runs in, services, the app.

Every test that takes ``database`` (or what builds on it: ``store``, ``services``,
``app``, ``client``) runs twice:

- **embedded**: SQLite and blobs on the local filesystem (the default install);
- **scale-out**: PostgreSQL and an S3 store (SeaweedFS, started by a fixture on free
  loopback ports for the whole run).

PostgreSQL is the server at 127.0.0.1:5432 (user postgres); each test run creates its
own database and drops it at the end. An unreachable PostgreSQL fails the run: deselect
the scale-out tests with ``-m "not postgres"`` on a machine without one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from depot.access import service as access
from depot.app import create_app
from depot.blobs import open_store
from depot.blobs.memory import MemoryBlobStore
from depot.blobs.store import BlobStore
from depot.db.base import Base
from depot.db.engine import Database, open_database
from depot.db.migrate import upgrade
from depot.db.tables import import_models
from depot.services import Services
from depot.settings import Settings
from depot.uploads.service import UploadService
from tests.seaweedfs import SeaweedFS, create_bucket, run_seaweedfs

PG_ADMIN_DSN = os.environ.get("DEPOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

import_models()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"depot_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_DSN} is unreachable ({exc}); the DB-backed tests"
            " need it (deselect them with -m 'not postgres')",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'depot.db'}"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 server for the whole run."""
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs: SeaweedFS) -> str:
    return create_bucket(seaweedfs, "depot-tests")


@pytest.fixture(
    scope="session",
    params=["embedded", pytest.param("scale-out", marks=pytest.mark.postgres)],
)
def configuration(request: pytest.FixtureRequest) -> str:
    """Which configuration the test runs in: embedded or scale-out."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def database_url(configuration: str, request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database of the configuration."""
    url: str = request.getfixturevalue(
        "sqlite_url" if configuration == "embedded" else "postgres_url"
    )
    database = open_database(url)
    upgrade(database)
    database.dispose()
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The migrated database, emptied after each test."""
    database = open_database(database_url)
    try:
        yield database
    finally:
        with database.write() as db:
            for table in reversed(Base.metadata.sorted_tables):
                db.execute(table.delete())
        database.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def storage_url(configuration: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's blobs go: the data directory, or a fresh prefix of the S3 bucket."""
    if configuration == "embedded":
        return data_dir.as_uri()
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(
    configuration: str,
    data_dir: Path,
    database_url: str,
    storage_url: str,
    request: pytest.FixtureRequest,
) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "storage_url": storage_url,
        "gc_grace_seconds": 0,
    }
    if configuration == "scale-out":
        server: SeaweedFS = request.getfixturevalue("seaweedfs")
        # Depot streams downloads itself here, so tests read bytes without leaving the app;
        # the redirect path has tests of its own.
        values.update(
            s3_endpoint_url=server.endpoint_url,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            aws_region=server.region,
            s3_downloads="proxy",
            s3_response_headers=False,
        )
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(settings: Settings) -> BlobStore:
    return open_store(settings)


@pytest.fixture
def memory_store() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def services(settings: Settings, database: Database, store: BlobStore) -> Services:
    return Services(
        settings=settings,
        database=database,
        store=store,
        uploads=UploadService(database, store, settings),
    )


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    return create_app(settings, services=services, background_jobs=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://depot.test") as http:
        yield http


class World:
    """A small populated registry: org acme with spaces ml and web, and a few users."""

    def __init__(self, database: Database) -> None:
        from depot.catalog import service as catalog

        with database.write() as db:
            self.acme = catalog.create_org(db, "acme", name="Acme")
            self.ml = catalog.create_space(db, self.acme, "ml")
            self.web = catalog.create_space(db, self.acme, "web")
            self.other_org = catalog.create_org(db, "globex")
            self.secret = catalog.create_space(db, self.other_org, "secret")
            self.tokens: dict[str, str] = {}
            for name in ("root", "alice", "bob", "carol", "dave"):
                user = access.create_user(db, name, is_superuser=name == "root")
                self.tokens[name] = access.create_token(db, user)[1]
            alice = access.get_user(db, "alice")
            bob = access.get_user(db, "bob")
            carol = access.get_user(db, "carol")
            # alice edits space ml; bob views the whole org; carol admins it; dave has nothing.
            access.grant_role(db, "editor", access.Scope(space_id=self.ml.id), user=alice)
            access.grant_role(db, "viewer", access.Scope(org_id=self.acme.id), user=bob)
            access.grant_role(db, "admin", access.Scope(org_id=self.acme.id), user=carol)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def world(database: Database) -> World:
    return World(database)
