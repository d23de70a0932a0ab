"""Upload and download a 1 GiB artifact through the Model Repository API, beside the limit.

Starts `depot serve` (the embedded default: SQLite + local files) on a free loopback port and
measures, in one run:

- the pipeline limit: read + sha256 + write + fsync of the same bytes in one process;
- upload through the chunk API, one connection, chunks one after another;
- the same with 4 chunks in flight on 4 connections;
- completion latency (last chunk answered → complete answered);
- download of the artifact;
- the server's RSS (all its processes) idle, and at its peak during the uploads.

Run: ``.venv/bin/python bench/model_repository.py [--size-mib 1024] [--runs 3]``
Writes ``bench/results/model_repository.json``.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    DepotServer,
    MiB,
    Payload,
    Row,
    RssSampler,
    pipeline_mb_per_s,
    request_json,
    rss_mib,
    write_results,
)


class Client:
    """A keep-alive HTTP connection to the server, speaking JSON and raw bytes."""

    def __init__(self, server: DepotServer) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        self.auth = {"Authorization": f"Bearer {server.token}"}

    def json(self, method: str, path: str, body: Any = None) -> Any:
        return request_json(self.connection, method, path, body, self.auth)

    def put_chunk(self, path: str, payload: Payload, offset: int, length: int) -> None:
        headers = {
            **self.auth,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(length),
        }
        self.connection.request("PUT", path, body=payload.blocks(offset, length), headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"chunk at {offset}: {response.status} {data[:300]!r}")

    def download(self, path: str) -> int:
        self.connection.request("GET", path, headers=self.auth)
        response = self.connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download: {response.status} {response.read()[:300]!r}")
        received = 0
        while block := response.read(MiB):
            received += len(block)
        return received

    def close(self) -> None:
        self.connection.close()


def upload(server: DepotServer, product: str, payload: Payload, in_flight: int) -> dict[str, Any]:
    """One upload through the three-step flow; returns MB/s, completion ms and the artifact id."""
    base = f"/api/v1.0/catalog/products/{product}/model-artifacts/uploads"
    control = Client(server)
    session = control.json(
        "POST",
        base,
        {
            "file_name": "model.bin",
            "content_type": "application/octet-stream",
            "total_size_bytes": payload.size,
            "sha256": payload.sha256(),
        },
    )
    chunk = session["chunk_size_bytes"]
    count = -(-payload.size // chunk)
    clients = [Client(server) for _ in range(in_flight)]

    def send(index: int) -> None:
        offset = index * chunk
        clients[index % in_flight].put_chunk(
            f"{base}/{session['id']}/chunks/{index}",
            payload,
            offset,
            min(chunk, payload.size - offset),
        )

    started = time.perf_counter()
    if in_flight == 1:
        for index in range(count):
            send(index)
    else:
        # Each worker thread owns one connection: chunk i goes on connection i % in_flight.
        with ThreadPoolExecutor(in_flight) as pool:
            for lane in range(in_flight):
                pool.submit(lambda lane=lane: [send(i) for i in range(lane, count, in_flight)])
    last_chunk = time.perf_counter()
    artifact = control.json("POST", f"{base}/{session['id']}/complete", {})
    done = time.perf_counter()
    for client in [control, *clients]:
        client.close()
    assert artifact["size_bytes"] == payload.size
    return {
        "mb_per_s": payload.size / (done - started) / 1e6,
        "complete_ms": (done - last_chunk) * 1000,
        "artifact": artifact["id"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    runs: dict[str, list[float]] = {}

    def record(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    Path("bench/results").mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir="bench/results") as tmp,
        DepotServer(Path(tmp) / "data") as server,
    ):
        server.admin("create-org", "bench")
        server.admin("create-space", "bench", "models")
        record("server_rss_idle_mib", rss_mib(server.pid))
        product = Client(server).json(
            "POST",
            "/api/v1.0/catalog/spaces/models/model-repository/models",
            {"name": "Bench model"},
        )["id"]
        seed = 0
        for _ in range(args.runs):
            seed += 1
            record("pipeline_mb_per_s", pipeline_mb_per_s(Path(tmp), Payload(size, seed)))
            for in_flight in (1, 4):
                seed += 1
                with RssSampler(server.pid) as sampler:
                    result = upload(server, product, Payload(size, seed), in_flight)
                record(f"upload_{in_flight}_mb_per_s", result["mb_per_s"])
                record(f"upload_{in_flight}_complete_ms", result["complete_ms"])
                record("server_rss_peak_mib", sampler.peak)
                path = (
                    f"/api/v1.0/catalog/products/{product}/model-artifacts/"
                    f"{result['artifact']}/download"
                )
                client = Client(server)
                started = time.perf_counter()
                assert client.download(path) == size
                record("download_mb_per_s", size / (time.perf_counter() - started) / 1e6)
                # NOTE: this VM's disk writes fresh blocks at about half the speed of freed
                # ones: delete each upload (and collect its blob) before the next figure.
                client.json("DELETE", path.removesuffix("/download"))
                client.close()
                subprocess.run(
                    [sys.executable, "-m", "depot", "gc", "--grace", "0"]
                    + ["--data-dir", str(server.data_dir)],
                    check=True,
                    capture_output=True,
                )
    medians = {key: statistics.median(values) for key, values in runs.items()}
    limit = medians["pipeline_mb_per_s"]
    print(f"Model Repository API, {args.size_mib} MiB, median of {args.runs} run(s)")
    print(f"{'figure':34} {'median':>10}  vs pipeline  target")
    targets = {
        "upload_1_mb_per_s": ">= 0.8x",
        "upload_4_mb_per_s": ">= 1.0x",
        "upload_1_complete_ms": "< 50 ms",
        "server_rss_peak_mib": "< 200 MiB",
        "server_rss_idle_mib": "< 150 MiB",
    }
    for key, value in medians.items():
        ratio = f"{value / limit:.2f}x" if key.endswith("mb_per_s") else ""
        print(f"{key:34} {value:10.1f}  {ratio:>11}  {targets.get(key, '')}")
    group = f"Model Repository API, {args.size_mib} MiB"
    rows = [
        Row(
            group,
            "upload, one connection, chunks in order",
            medians["upload_1_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
            ">= 0.8x",
        ),
        Row(
            group,
            "upload, 4 chunks in flight",
            medians["upload_4_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
            ">= 1.0x",
        ),
        Row(
            group,
            "completion after in-order chunks",
            medians["upload_1_complete_ms"],
            "ms",
            target="< 50 ms",
        ),
        Row(group, "download", medians["download_mb_per_s"], "MB/s", "pipeline", limit),
    ]
    out = write_results(
        "model_repository", {"size_mib": args.size_mib, "runs": runs, "medians": medians}, rows
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
