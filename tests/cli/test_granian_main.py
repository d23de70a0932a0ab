"""The granian worker's loader: the app it builds, and what it leaves the collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from depot.cli import granian_main
from depot.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    # The loader freezes this test process's objects too; hand them back afterwards.
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_worker_app_serves_and_its_objects_are_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    # The loader asks the kernel to kill the worker with its supervisor: not this process.
    monkeypatch.setattr(granian_main, "_die_with_supervisor", lambda: None)
    settings_json = Settings(data_dir=tmp_path).model_dump_json()

    app = granian_main.load_app(settings_json)

    # Everything the build made (modules, routes, models) is out of the full passes...
    assert gc.get_freeze_count() > 10_000
    # ...and a full collection no longer walks it: far fewer objects are left to walk.
    assert len(gc.get_objects()) < gc.get_freeze_count()
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
