"""A live Depot server (uvicorn in a thread) on the test app, for the client and the CLI.

Conftests that want it import its fixtures: `from tests.live import server_url, services`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from depot.services import Services
from depot.settings import MiB
from depot.uploads.service import UploadService

CHUNK = 5 * MiB


@pytest.fixture
def services(services: Services) -> Services:
    # The smallest chunk size the server allows, so multi-chunk files stay small in tests.
    services.settings = services.settings.model_copy(update={"upload_chunk_size": CHUNK})
    services.uploads = UploadService(services.database, services.store, services.settings)
    return services


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The URL of a server running ``app`` on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)
