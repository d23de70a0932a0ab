"""The built app, as a server's worker builds it."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import httpx
import pytest

from depot.app import create_app
from depot.blobs.store import BlobStore
from depot.db.engine import Database
from depot.services import Services
from depot.settings import Settings
from depot.uploads.service import UploadService

# A worker builds the app and serves: it never migrates, and it needs numpy only once it
# searches or lists a large space. Alembic and numpy together are about 25 MiB of its idle
# memory (the target is 150 MiB for the whole server).
BUILD_AND_REPORT = """
import sys
from depot.app import create_app
from depot.settings import load_settings
create_app(load_settings(data_dir=sys.argv[1]), background_jobs=False)
print(sorted({"alembic", "numpy", "onnxruntime"} & set(sys.modules)))
"""


def test_building_the_app_imports_neither_alembic_nor_numpy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BUILD_AND_REPORT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.anyio
async def test_an_app_that_served_and_was_dropped_frees_its_services(
    settings: Settings, database: Database, store: BlobStore
) -> None:
    # FastAPI keeps the endpoint functions it has seen for the life of the process; an
    # endpoint that closed over the services kept every app a process built alive (the
    # test suite grew to 4 GiB, and its collections stalled live servers for seconds).
    uploads = UploadService(database, store, settings)
    services = Services(settings=settings, database=database, store=store, uploads=uploads)
    app = create_app(settings, services=services, background_jobs=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://depot.test"
    ) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/api/v1/whoami")).status_code == 401
    freed = weakref.ref(services)
    del app, services, uploads, http
    gc.collect()
    assert freed() is None
