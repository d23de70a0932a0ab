"""Metadata GETs under load: requests per second over keep-alive connections, 2 cores.

Starts `depot serve` (the embedded default: SQLite + local files) with one worker (the
default) and again with two (``--workers 2``, one per core), creates an ML repo
holding a model version pushed with the Python client and a Model Repository record, then
loads, one after the other, over --connections keep-alive connections for --seconds each:

- ``GET /healthz`` (pings the database; no token): the floor of the stack, for reference;
- ``GET /api/v1/orgs/{org}/spaces/{space}/artifacts/{name}`` (native artifact);
- ``GET /api/v1/orgs/{org}/spaces/{space}/artifacts/{name}/versions/1`` (a version and
  its files);
- ``GET /api/svc/v1/ml-repos/{id}`` (ML API);
- ``GET /api/v1.0/catalog/spaces/{space}/model-repository/models?limit=20`` (a page of
  model summaries, with its pagination headers).

Every request carries the admin token, so authentication (token lookup) is in each figure.
The load comes from wrk (Debian's package) when it is installed, else from a small
asyncio client in its own process; wrk and the server share the machine's two cores.
Target: >= 2,000 requests/s for each metadata GET.

Run: ``.venv/bin/python bench/metadata_load.py [--seconds 10] [--connections 16]``.
Writes ``bench/results/metadata_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

from _common import DepotServer, Row, write_results

from depot.client import Client

GROUP = "Metadata GETs under load"
ORG = "bench"


def api(server: DepotServer, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = Request(f"{server.url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {server.token}")
    request.add_header("Content-Type", "application/json")
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def prepare(server: DepotServer, scratch: Path) -> dict[str, str]:
    """Create what the GETs read; returns figure label -> path."""
    server.admin("create-org", ORG)
    repo = api(
        server,
        "PUT",
        "/api/svc/v1/ml-repos",
        {"manifest": {"type": "ml-repo", "name": "models", "storage_integration_fqn": "x"}},
    )
    assert isinstance(repo, dict)
    repo_id = repo["data"]["id"]
    weights = scratch / "model.safetensors"
    weights.write_bytes(b"\0" * 4096)
    (scratch / "config.json").write_text('{"layers": 6}')
    with Client(server.url, token=server.token) as client:
        client.push(f"{ORG}/models/ranker", [weights, scratch / "config.json"], kind="model")
    api(
        server,
        "POST",
        "/api/v1.0/catalog/spaces/models/model-repository/models",
        {"name": "Churn model", "description": "Predicts churn", "model_family": "traditional_ml"},
    )
    artifact = f"/api/v1/orgs/{ORG}/spaces/models/artifacts/ranker"
    return {
        "GET /healthz (no token, pings the database; reference)": "/healthz",
        "native: one artifact": artifact,
        "native: one version with its files": f"{artifact}/versions/1",
        "ML API: one ML repo": f"/api/svc/v1/ml-repos/{repo_id}",
        "Model Repository: first page of models (limit 20)": (
            "/api/v1.0/catalog/spaces/models/model-repository/models?limit=20"
        ),
    }


def with_wrk(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{url} answered errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"requests_per_s": rate, "p99_ms": float(p99[1]) * scale[p99[2]] if p99 else -1}


async def _load(host: str, port: int, request: bytes, seconds: int, connections: int) -> int:
    count = 0
    end = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
            count += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return count


def with_python(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    """The fallback load: an asyncio client in its own process (this file, --client)."""
    job = json.dumps({"url": url, "token": token, "seconds": seconds, "conns": connections})
    result = subprocess.run(
        [sys.executable, __file__, "--client", job], capture_output=True, text=True, check=True
    )
    return {"requests_per_s": float(result.stdout) / seconds, "p99_ms": -1}


def client_main(job: dict[str, object]) -> None:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", str(job["url"]))
    assert match is not None
    host, port, path = match[1], int(match[2]), match[3]
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {job['token']}\r\n\r\n"
    ).encode()
    seconds, conns = int(str(job["seconds"])), int(str(job["conns"]))
    print(asyncio.run(_load(host, port, request, seconds, conns)))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        client_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="worker counts to measure, e.g. 1,2 (1 is the default of `depot serve`)",
    )
    args = parser.parse_args()
    load = with_wrk if shutil.which("wrk") else with_python
    tool = "wrk" if load is with_wrk else "asyncio client (wrk not installed)"
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory(dir="bench/results") as tmp:
            scratch = Path(tmp) / "files"
            scratch.mkdir()
            with DepotServer(Path(tmp) / "data", "--workers", str(workers)) as server:
                targets = prepare(server, scratch)
                measured = results.setdefault(f"{workers} worker(s)", {})
                for label, path in targets.items():
                    url = f"{server.url}{path}"
                    load(url, server.token, 1, args.connections)  # warm-up: caches, pools
                    measured[label] = load(url, server.token, args.seconds, args.connections)
    rows = []
    print(f"\nMetadata GETs, {args.connections} keep-alive connections, {tool}")
    for setup, measured in results.items():
        for label, figures in measured.items():
            reference = label.startswith("GET /healthz")
            rows.append(
                Row(
                    GROUP,
                    f"{label}, {setup}",
                    round(figures["requests_per_s"]),
                    "req/s",
                    target="" if reference else ">= 2,000 req/s",
                )
            )
            p99 = f"p99 {figures['p99_ms']:.1f} ms" if figures["p99_ms"] >= 0 else ""
            print(f"{label + ', ' + setup:72} {figures['requests_per_s']:8.0f} req/s  {p99}")
    out = write_results(
        "metadata_load",
        {"tool": tool, "connections": args.connections, "seconds": args.seconds, **results},
        rows,
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
