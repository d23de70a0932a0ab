"""Download 1 GiB from every surface, beside a bare Starlette FileResponse of the same file.

Starts `depot serve` (SQLite + local files), puts the same 1 GiB into Depot through the
native push, the Model Repository API, the ML API and the agent artifacts API (one blob:
storage is content-addressed), and serves that blob's file from a bare Starlette app on
granian with Depot's server settings. Then, interleaved, median of --runs:

- bare FileResponse (the limit);
- the native API's file URL; the Model Repository download; the ML API's signed READ URL;
  the agent artifacts API's signed download URL.

Run: ``.venv/bin/python bench/downloads.py [--size-mib 1024] [--runs 9]``
Writes ``bench/results/downloads.json``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _common import DepotServer, MiB, Payload, Row, free_port, write_results
from ml_api import API, Http, finalize, stage

from depot.blobs.layout import blob_key
from depot.client import Client

BENCH = Path(__file__).parent


def drain(port: int, path: str, headers: dict[str, str] | None = None) -> float:
    """GET ``path`` on a fresh connection, reading into one buffer; MB/s."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    buffer = bytearray(MiB)
    started = time.perf_counter()
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
    received = 0
    while count := response.readinto(buffer):
        received += count
    elapsed = time.perf_counter() - started
    connection.close()
    return received / elapsed / 1e6


class BareServer:
    """granian serving bench/_bare_file_app.py on a free port, like `depot serve` does."""

    def __init__(self, file: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "BARE_FILE": str(file)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--no-ws",
                "_bare_file_app:app",
            ],
            cwd=BENCH,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                probe.request("HEAD", "/file")
                probe.getresponse().read()
                break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the bare file server exited") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            finally:
                probe.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    # NOTE: one 1 GiB transfer takes a third of a second at 3 GB/s, and single rounds on
    # this VM ranged from 1.5 to 4.1 GB/s: three rounds left the ratio to chance.
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    size = args.size_mib * MiB
    payload = Payload(size, seed=4242)
    runs: dict[str, list[float]] = {}
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir="bench/results") as tmp,
        DepotServer(Path(tmp) / "data") as server,
    ):
        server.admin("create-org", "bench")
        server.admin("create-space", "bench", "models")
        auth = {"Authorization": f"Bearer {server.token}"}
        source = Path(tmp) / "src" / "model.bin"
        source.parent.mkdir()
        with source.open("wb") as out:
            for block in payload.blocks(0, size):
                out.write(block)

        # The same bytes through every surface.
        Client(server.url, server.token, org="bench").push("models/weights", [source])
        native = "/api/v1/orgs/bench/spaces/models/artifacts/weights/versions/1/files/model.bin"
        api = httpx.Client(base_url=server.url, headers=auth, timeout=600)
        product = api.post(
            "/api/v1.0/catalog/spaces/models/model-repository/models",
            json={"name": "Weights (Model Repository)"},
        ).json()["id"]
        uploads = f"/api/v1.0/catalog/products/{product}/model-artifacts/uploads"
        session = api.post(
            uploads,
            json={
                "file_name": "model.bin",
                "content_type": "application/octet-stream",
                "total_size_bytes": size,
                "sha256": payload.sha256(),
            },
        ).json()
        chunk = session["chunk_size_bytes"]
        with source.open("rb") as handle:
            for index in range(-(-size // chunk)):
                api.put(f"{uploads}/{session['id']}/chunks/{index}", content=handle.read(chunk))
        artifact = api.post(f"{uploads}/{session['id']}/complete", json={}).json()
        repository = (
            f"/api/v1.0/catalog/products/{product}/model-artifacts/{artifact['id']}/download"
        )
        ml = Http(server, server.token)
        ml.json(
            "PUT",
            f"{API}/ml-repos",
            {
                "manifest": {
                    "type": "ml-repo",
                    "name": "bench-repo",
                    "storage_integration_fqn": "depot:default",
                }
            },
        )
        staged = stage(ml, "weights")
        [entry] = ml.json(
            "POST",
            f"{API}/artifact-versions/signed-urls",
            {"id": staged["id"], "paths": ["model.bin"], "operation": "WRITE"},
        )["data"]
        Http(server).send("PUT", entry["signed_url"], payload.blocks(0, size), size)
        version_id = finalize(ml, "weights", staged["storage_root"])["id"]
        with source.open("rb") as handle:
            agent = api.post(
                "/v1/orgs/bench/workspaces/models/namespaces/bench/artifacts/upload",
                files={"file": ("model.bin", handle, "application/octet-stream")},
                data={"name": "weights"},
            ).json()
        blob = (Path(tmp) / "data").resolve() / blob_key(payload.sha256())
        bare = BareServer(blob)
        # Let the uploads' writeback finish, so the first downloads do not pay for it.
        os.sync()
        time.sleep(2)
        try:
            for run in range(args.runs + 1):  # the first round warms up and is not kept
                if run == 1:
                    runs.clear()
                runs.setdefault("bare", []).append(drain(bare.port, "/file"))
                runs.setdefault("native", []).append(drain(server.port, native, auth))
                runs.setdefault("model_repository", []).append(drain(server.port, repository, auth))
                [entry] = ml.json(
                    "POST",
                    f"{API}/artifact-versions/signed-urls",
                    {"id": version_id, "paths": ["model.bin"], "operation": "READ"},
                )["data"]
                parts = urlsplit(entry["signed_url"])
                runs.setdefault("ml_api", []).append(
                    drain(server.port, f"{parts.path}?{parts.query}")
                )
                link = api.get(
                    "/v1/orgs/bench/workspaces/models/namespaces/bench/artifacts/"
                    f"{agent['artifact_id']}/download"
                ).json()["download_url"]
                parts = urlsplit(link)
                runs.setdefault("agent_artifacts", []).append(
                    drain(server.port, f"{parts.path}?{parts.query}")
                )
        finally:
            bare.stop()
    medians = {key: statistics.median(values) for key, values in runs.items()}
    names = {
        "native": "native API file",
        "model_repository": "Model Repository download",
        "ml_api": "ML API signed READ URL",
        "agent_artifacts": "agent artifacts signed URL",
    }
    group = f"Download {args.size_mib} MiB"
    rows = [Row(group, "bare Starlette FileResponse (limit)", medians["bare"], "MB/s")]
    rows += [
        Row(group, label, medians[key], "MB/s", "bare FileResponse", medians["bare"], ">= 0.9x")
        for key, label in names.items()
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio else ""
        print(f"{row.figure:40} {row.value:9.1f} {row.unit:6} {ratio:>7}  {row.target}")
    out = write_results("downloads", {"size_mib": args.size_mib, "runs": runs}, rows)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
