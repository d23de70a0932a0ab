"""The agent artifacts API against a real `depot serve`: background indexing, then a query."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import depot, serving

pytestmark = pytest.mark.e2e


def test_artifacts_are_indexed_in_the_background_and_found_by_meaning(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as (url, _log):
        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        depot("admin", "create-space", "acme", "research", "--data-dir", str(data_dir))
        token = depot("admin", "create-user", "bot", "--data-dir", str(data_dir)).split()[-1]
        depot("admin", "grant", "bot", "editor", "space:acme/research", "--data-dir", str(data_dir))
        api = httpx.Client(
            base_url=f"{url}/v1/orgs/acme/workspaces/research/namespaces/kb",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        notes = {
            "Feline nutrition": "Cats are obligate carnivores; they need taurine from meat.",
            "Quarterly taxes": "File the estimated payment before the fifteenth of April.",
        }
        ids = [
            api.post("/artifacts", json={"name": name, "content": text}).json()["artifact_id"]
            for name, text in notes.items()
        ]
        deadline = time.monotonic() + 60
        while not all(api.get(f"/artifacts/{id_}").json()["is_indexed"] for id_ in ids):
            assert time.monotonic() < deadline, "the background indexer did not run"
            time.sleep(0.2)
        answer = api.post("/artifacts/query", json={"query": "what does the cat eat"}).json()
        assert answer["results"][0]["artifact"]["name"] == "Feline nutrition"
        link = api.get(f"/artifacts/{ids[0]}/download").json()
        assert httpx.get(link["download_url"]).text == notes["Feline nutrition"]
