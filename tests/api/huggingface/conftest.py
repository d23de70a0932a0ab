"""Fixtures for driving the stock Hugging Face clients against a live Depot.

- ``server_url`` (from ``tests.live``): a live server on the test app; ``hf_endpoint`` is
  its ``/hf/acme`` surface, what ``HF_ENDPOINT`` would be.
- ``requests_seen``: every (method, path) the server received, in order.
- ``depot``: Depot's own Python client as alice (editor on acme/ml); ``push`` puts files
  in a new version with it, the way users publish models.
- ``hf_env``: the environment for a subprocess client (``hf``, ``transformers``).

huggingface_hub reads its settings once, at import: the variables below are set before
any test module imports it. In-process tests pass ``endpoint=``, ``token=`` and a fresh
``cache_dir=`` explicitly.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("HF_ENDPOINT", None)
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

from depot.client import Client  # noqa: E402
from depot.client.models import VersionInfo  # noqa: E402
from tests.conftest import World  # noqa: E402
from tests.live import server_url, services  # noqa: E402

__all__ = ["Push", "hf_env", "server_url", "services"]

Push = Callable[..., VersionInfo]


class RecordRequests:
    """ASGI middleware noting the method and path of every HTTP request."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def requests_seen() -> list[tuple[str, str]]:
    """(method, path) of each request the live server received."""
    return []


@pytest.fixture
def app(app: FastAPI, requests_seen: list[tuple[str, str]]) -> FastAPI:
    app.add_middleware(RecordRequests, seen=requests_seen)
    return app


@pytest.fixture
def hf_endpoint(server_url: str) -> str:
    """``HF_ENDPOINT`` for org acme: repo ids are then ``{space}/{artifact}``."""
    return f"{server_url}/hf/acme"


@pytest.fixture
def depot(
    server_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Client]:
    """Depot's own client, as alice (editor on acme/ml)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "depot-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "depot-cache"))
    for name in ("DEPOT_URL", "DEPOT_TOKEN", "DEPOT_ORG"):
        monkeypatch.delenv(name, raising=False)
    with Client(server_url, world.tokens["alice"], org="acme") as client:
        yield client


@pytest.fixture
def push(depot: Client, tmp_path: Path) -> Push:
    """``push("ml/name", {"path": b"bytes"}, alias=None, kind="model")``: a new version."""
    pushes = iter(range(1_000_000))

    def push_files(
        repo: str, files: dict[str, bytes], *, alias: str | None = None, kind: str = "model"
    ) -> VersionInfo:
        folder = tmp_path / f"push-{next(pushes)}"
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        result = depot.push(
            repo, [folder], kind=kind, alias=alias, journal_dir=tmp_path / "journal"
        )
        return result.version

    return push_files


def hf_env(endpoint: str, token: str | None, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess running a stock client against ``endpoint``.

    ``home`` becomes ``HF_HOME`` (cache, token file); ``extra`` adds or overrides
    variables (``HF_HUB_DISABLE_XET="1"`` for uploads, say).
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HF_", "HUGGING_FACE_", "DEPOT_"))
    }
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env
