"""Depot beside MLflow, measured in the same run: 1 GiB up and down, 2,000 models, search.

Installs MLflow (pinned) into its own virtualenv, ``bench/.venv-mlflow``, never into Depot's,
and starts, side by side on free loopback ports:

- ``mlflow server --serve-artifacts`` with SQLite and a local artifact root (its defaults:
  uvicorn, 4 workers), driven by a helper script run by that virtualenv's Python;
- ``depot serve`` (the embedded default: SQLite + local files).

It writes once to all the machine's free memory and lets the VM take it back (a minute), so
that neither side pays for pages the VM backs for the first time, whichever goes first
(``touch_free_memory``). Then it measures, alternating between the two so that the
machine's noise falls on both:

- 1 GiB files, read from disk: ``mlflow.log_artifact`` (one stream) against the Model
  Repository chunk API on one connection and with 4 chunks in flight, and the Python
  client's ``push`` (each upload of Depot's gets a file of its own, as large, so none
  deduplicates; the push's is new to the client, which hashes it while sending); then
  ``mlflow.artifacts.download_artifacts`` against the Model Repository download endpoint and
  the Python client's ``pull``, each written to disk and checked; the pull again with
  Depot's blob in the page cache, where MLflow's upload left its file; the disk's
  own limit for a pull, 1 GiB read and written at once past the cache; and the two
  servers alone, the same GETs with the client dropping the bytes;
- registering models: ``create_registered_model`` + ``create_model_version`` against a Model
  Repository model + a product version, each pair timed over keep-alive connections;
- search with filters, limit 50: ``search_registered_models`` (``name LIKE`` and tags) against
  the Model Repository list (``q`` and filters);
- each server's resident memory (all its processes) idle after start.

Run: ``.venv/bin/python bench/mlflow_compare.py [--size-mib 1024] [--models 2000]
[--queries 200] [--runs 1]``. Writes ``bench/results/mlflow_compare.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    RESULTS,
    DepotServer,
    MiB,
    Payload,
    Row,
    disk_read_write_mb_per_s,
    free_port,
    pipeline_mb_per_s,
    process_tree,
    read_through_cache,
    rss_mib,
    touch_free_memory,
    write_results,
)

from depot.client import Client as DepotClient

MLFLOW_VERSION = "3.17.2"  # the newest the package index installs (3.18.0 lacks its skinny part)
MLFLOW_VENV = Path(__file__).parent / ".venv-mlflow"
MLFLOW_MARKER = MLFLOW_VENV / "depot-bench-requirement.txt"
GROUP = "MLflow side by side"
ORG, SPACE = "bench", "models"
MR = "/api/v1.0"
BLOCKS = 4  # registration and search alternate between the two servers in this many rounds
IN_FLIGHT = 4
# Neither side should try to reach the internet for usage statistics.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def ensure_mlflow() -> Path:
    """The Python of ``bench/.venv-mlflow``, created with MLflow if missing or out of date."""
    python = MLFLOW_VENV / "bin" / "python"
    requirement = f"mlflow=={MLFLOW_VERSION}"
    marker = MLFLOW_MARKER.read_text().strip() if MLFLOW_MARKER.exists() else ""
    if python.exists() and marker == requirement:
        return python
    print(f"installing {requirement} into {MLFLOW_VENV} ...", flush=True)
    shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, requirement], check=True)
    # Written last: a half-made virtualenv has no marker and is made again next time.
    MLFLOW_MARKER.write_text(requirement + "\n")
    return python


# ---------------------------------------------------------------------------------------
# The MLflow side: a helper run by the MLflow virtualenv's Python. It reads one JSON command
# a line on stdin and answers one JSON line on the original stdout (everything MLflow prints
# goes to stderr, a log file).

MLFLOW_HELPER = r"""
import json, os, sys, time, traceback, urllib.parse

protocol = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import mlflow
from mlflow import MlflowClient


def reply(**data):
    protocol.write(json.dumps(data) + "\n")
    protocol.flush()


def upload(path):
    with mlflow.start_run(run_name="upload") as run:
        started = time.perf_counter()
        mlflow.log_artifact(path)
        seconds = time.perf_counter() - started
    # mlflow-artifacts:/EXPERIMENT/RUN/artifacts, served under /api/2.0/mlflow-artifacts/...
    root = urllib.parse.urlparse(run.info.artifact_uri).path.lstrip("/")
    url = f"/api/2.0/mlflow-artifacts/artifacts/{root}/{os.path.basename(path)}"
    return {"run_id": run.info.run_id, "seconds": seconds, "url": url}


def download(run_id, artifact_path, dst):
    started = time.perf_counter()
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=artifact_path, dst_path=dst
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "path": local, "size": os.path.getsize(local)}


def register(models):
    create_ms, version_ms = [], []
    for model in models:
        started = time.perf_counter()
        client.create_registered_model(
            model["name"], tags=model["tags"], description=model["description"]
        )
        created = time.perf_counter()
        client.create_model_version(model["name"], source=source, run_id=source_run)
        done = time.perf_counter()
        create_ms.append((created - started) * 1000)
        version_ms.append((done - created) * 1000)
    return {"create_ms": create_ms, "version_ms": version_ms}


def search(filters, count):
    timings = {item["label"]: [] for item in filters}
    for index in range(count):
        item = filters[index % len(filters)]
        started = time.perf_counter()
        found = client.search_registered_models(filter_string=item["mlflow"], max_results=50)
        elapsed = (time.perf_counter() - started) * 1000
        if len(found) != min(50, item["expect"]):
            raise RuntimeError(f"{item['mlflow']}: {len(found)} results, not {item['expect']}")
        timings[item["label"]].append(elapsed)
    return {"timings": timings}


client = MlflowClient()
mlflow.set_experiment("depot-bench")
with mlflow.start_run(run_name="registry") as run:
    # Model versions are registered from this run's "model" folder: a minimal MLmodel file.
    mlflow.log_text("artifact_path: model\nflavors: {}\n", "model/MLmodel")
source_run = run.info.run_id
source = run.info.artifact_uri + "/model"
reply(ready=True, version=mlflow.__version__)
operations = {"upload": upload, "download": download, "register": register, "search": search}
while line := sys.stdin.readline():
    command = json.loads(line)
    try:
        reply(**operations[command.pop("op")](**command))
    except Exception:
        reply(error=traceback.format_exc())
"""


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def mlflow_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **QUIET}


class MlflowServer:
    """``mlflow server --serve-artifacts`` with SQLite and a local root, in its own process
    group, stopped as a group."""

    def __init__(self, python: Path, root: Path) -> None:
        self.python = python
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "mlflow-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MlflowServer:
        command = [
            str(self.python.parent / "mlflow"),
            "server",
            "--serve-artifacts",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=mlflow_env(self.python),
                start_new_session=True,
            )
        try:
            self._wait_ready(deadline=time.monotonic() + 180)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{tail(self.log)}")
            # OSError: not listening yet.
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer:\n{tail(self.log)}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process is None:
            return
        # The CLI starts uvicorn, which starts workers: the whole process group goes.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                self.process.poll()  # reap the leader, or the group never looks empty
                if not _group_alive(self.process.pid):
                    return
                time.sleep(0.1)
        self.process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class MlflowDriver:
    """The helper script under the MLflow virtualenv: ``call(op, ...)`` returns its answer."""

    def __init__(self, python: Path, root: Path, url: str) -> None:
        self.python = python
        self.root = root
        self.url = url
        self.log = root / "mlflow-client.log"
        self.process: subprocess.Popen[str] | None = None
        self.version = ""

    def __enter__(self) -> MlflowDriver:
        script = self.root / "mlflow_side.py"
        script.write_text(MLFLOW_HELPER)
        env = {**mlflow_env(self.python), "MLFLOW_TRACKING_URI": self.url}
        with self.log.open("wb") as err:
            self.process = subprocess.Popen(
                [str(self.python), "-u", str(script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.root,
                env=env,
                text=True,
                start_new_session=True,
            )
        try:
            self.version = self._answer()["version"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the MLflow helper stopped:\n{tail(self.log)}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the MLflow helper failed:\n{answer['error']}")
        return answer

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# ---------------------------------------------------------------------------------------
# The Depot side: keep-alive http.client connections, as bench/model_repository.py.


class Http:
    """A keep-alive HTTP connection to `depot serve`, with its admin token."""

    def __init__(self, server: DepotServer) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        self.auth = {"Authorization": f"Bearer {server.token}"}
        self.used = time.monotonic()

    def _request(self, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
        # NOTE: servers drop keep-alive connections idle for a few seconds, and the MLflow
        # rounds in between last longer: a fresh connection then avoids writing a request
        # into a socket the server has already closed.
        if time.monotonic() - self.used > 1.0:
            self.connection.close()
        self.connection.request(method, path, body=body, headers=headers)

    def _response(self) -> http.client.HTTPResponse:
        response = self.connection.getresponse()
        self.used = time.monotonic()
        return response

    def json(self, method: str, path: str, body: Any = None) -> tuple[Any, http.client.HTTPMessage]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**self.auth, "Content-Type": "application/json"}
        self._request(method, path, payload, headers)
        response = self._response()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data), response.headers

    def put(self, path: str, blocks: Iterator[bytes], length: int) -> None:
        headers = {
            **self.auth,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(length),
        }
        self._request("PUT", path, blocks, headers)
        response = self._response()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"PUT {path}: {response.status} {data[:300]!r}")

    def download(self, path: str, dest: Path) -> int:
        """GET ``path`` into the file ``dest``; the number of bytes written."""
        self._request("GET", path, None, self.auth)
        response = self._response()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        buffer = memoryview(bytearray(MiB))
        received = 0
        with dest.open("wb") as out:
            while count := response.readinto(buffer):
                out.write(buffer[:count])
                received += count
        return received

    def close(self) -> None:
        self.connection.close()


def get_and_drop(port: int, path: str, headers: dict[str, str]) -> int:
    """GET ``path`` on a fresh connection, reading the body into one buffer and dropping it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        buffer = memoryview(bytearray(MiB))
        received = 0
        while count := response.readinto(buffer):
            received += count
        return received
    finally:
        connection.close()


def file_blocks(fd: int, offset: int, length: int) -> Iterator[bytes]:
    """The bytes [offset, offset + length) of an open file, in blocks of at most 1 MiB."""
    end = offset + length
    while offset < end:
        block = os.pread(fd, min(MiB, end - offset), offset)
        if not block:
            raise RuntimeError(f"the file ended at {offset}, before {end}")
        yield block
        offset += len(block)


def depot_chunk_upload(
    server: DepotServer, product: str, path: Path, sha256: str, in_flight: int = IN_FLIGHT
) -> tuple[float, float, str]:
    """Upload ``path`` through the chunk API, ``in_flight`` chunks at a time.

    Returns the seconds from initiation to the completion's answer, the seconds the
    completion alone took, and the artifact id.
    """
    size = path.stat().st_size
    base = f"{MR}/catalog/products/{product}/model-artifacts/uploads"
    control = Http(server)
    lanes = [Http(server) for _ in range(in_flight)]
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        session, _ = control.json(
            "POST",
            base,
            {
                "file_name": path.name,
                "content_type": "application/octet-stream",
                "total_size_bytes": size,
                "sha256": sha256,
            },
        )
        chunk = session["chunk_size_bytes"]
        count = -(-size // chunk)

        def lane(number: int) -> None:
            # Lane n sends chunks n, n + in_flight, ... on its own connection, in order.
            for index in range(number, count, in_flight):
                offset = index * chunk
                length = min(chunk, size - offset)
                lanes[number].put(
                    f"{base}/{session['id']}/chunks/{index}",
                    file_blocks(fd, offset, length),
                    length,
                )

        with ThreadPoolExecutor(in_flight) as pool:
            for future in [pool.submit(lane, number) for number in range(in_flight)]:
                future.result()
        last_chunk = time.perf_counter()
        artifact, _ = control.json("POST", f"{base}/{session['id']}/complete", {})
        done = time.perf_counter()
    finally:
        os.close(fd)
        for connection in [control, *lanes]:
            connection.close()
    if artifact["size_bytes"] != size or artifact["sha256"] != sha256:
        raise RuntimeError(f"the stored artifact differs: {artifact}")
    return done - started, done - last_chunk, artifact["id"]


# ---------------------------------------------------------------------------------------
# The models both registries get, and the filters both are searched with.

PREFIXES = ["churn", "fraud", "ranking", "forecast", "vision", "speech", "pricing", "support"]
FAMILIES = ["traditional_ml", "genai", "embedding_model", "foundation_model"]
TASKS = ["classification", "regression"]
RISKS = ["limited", "minimal"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    fields: dict[str, str]  # model_family, model_task_type, risk_classification, framework


def model_specs(count: int) -> list[ModelSpec]:
    """``count`` models: one name prefix in 8 is "churn"; among those, families, tasks and
    risk levels vary, so each filter below matches a known share."""
    specs = []
    for index in range(count):
        prefix = PREFIXES[index % len(PREFIXES)]
        step = index // len(PREFIXES)
        fields = {
            "model_family": FAMILIES[step % 4],
            "model_task_type": TASKS[step // 4 % 2],
            "risk_classification": RISKS[step // 8 % 2],
            "framework": "scikit-learn",
        }
        specs.append(
            ModelSpec(
                name=f"{prefix}-{index:05d}",
                description=f"Bench {prefix} model number {index}.",
                fields=fields,
            )
        )
    return specs


def search_filters(specs: list[ModelSpec]) -> list[dict[str, Any]]:
    """A name prefix alone, with the family, and with three fields; each with its MLflow
    ``filter_string``, Depot's query parameters and the number of models it matches."""
    wanted = [
        {},
        {"model_family": "traditional_ml"},
        {
            "model_family": "traditional_ml",
            "model_task_type": "classification",
            "risk_classification": "limited",
        },
    ]
    filters = []
    for fields in wanted:
        expect = sum(
            spec.name.startswith("churn-")
            and all(spec.fields[key] == value for key, value in fields.items())
            for spec in specs
        )
        mlflow = " AND ".join(
            ["name LIKE 'churn-%'", *(f"tags.{key} = '{value}'" for key, value in fields.items())]
        )
        filters.append(
            {
                "label": "+".join(["name", *fields]) if fields else "name",
                "mlflow": mlflow,
                "depot": urllib.parse.urlencode({"q": "churn", **fields, "limit": 50}),
                "expect": expect,
            }
        )
    return filters


def depot_register(http: Http, specs: list[ModelSpec]) -> dict[str, list[float]]:
    """A Model Repository model and one product version per spec, each call timed."""
    create_ms, version_ms = [], []
    for spec in specs:
        started = time.perf_counter()
        model, _ = http.json(
            "POST",
            f"{MR}/catalog/spaces/{SPACE}/model-repository/models",
            {"name": spec.name, "description": spec.description, **spec.fields},
        )
        created = time.perf_counter()
        http.json(
            "POST",
            f"/api/v1/orgs/{ORG}/spaces/{SPACE}/artifacts/{model['slug']}/versions",
            {"label": "v1", "release_type": "major"},
        )
        done = time.perf_counter()
        create_ms.append((created - started) * 1000)
        version_ms.append((done - created) * 1000)
    return {"create_ms": create_ms, "version_ms": version_ms}


def depot_search(http: Http, filters: list[dict[str, Any]], count: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {item["label"]: [] for item in filters}
    for index in range(count):
        item = filters[index % len(filters)]
        path = f"{MR}/catalog/spaces/{SPACE}/model-repository/models?{item['depot']}"
        started = time.perf_counter()
        found, headers = http.json("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        total = int(headers.get("X-Total-Count", -1))
        if len(found) != min(50, item["expect"]) or total != item["expect"]:
            raise RuntimeError(f"{path}: {len(found)} of {total}, not {item['expect']}")
        timings[item["label"]].append(elapsed)
    return timings


# ---------------------------------------------------------------------------------------
# Figures.


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "mean": statistics.fmean(values),
        "max": max(values),
    }


def pss_mib(pid: int) -> float:
    """Proportional memory of a process tree, in MiB: shared pages counted once overall."""
    total = 0
    for member in process_tree(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))
    return total / 1024


def warm_up(
    driver: MlflowDriver,
    mlflow_port: int,
    depot: DepotServer,
    http: Http,
    client: DepotClient,
    product: str,
    root: Path,
) -> None:
    """Untimed small transfers through every path measured, twice on each side: the first
    ones pay for imports and connections (MLflow's four workers import lazily)."""
    root.mkdir()
    source = root / "warm-up.bin"
    for seed in range(900_001, 900_003):
        digest = Payload(4 * MiB, seed).write_to(source)
        answer = driver.call("upload", path=str(source))
        driver.call(
            "download", run_id=answer["run_id"], artifact_path=source.name, dst=str(root / "m")
        )
        get_and_drop(mlflow_port, answer["url"], {})
        _, _, artifact = depot_chunk_upload(depot, product, source, digest)
        path = f"{MR}/catalog/products/{product}/model-artifacts/{artifact}/download"
        http.download(path, root / "d.bin")
        get_and_drop(depot.port, path, http.auth)
        Payload(4 * MiB, seed + 1000).write_to(source)
        pushed = client.push(f"{SPACE}/warm-up", [source], kind="model", journal_dir=root / "j")
        client.pull(f"{SPACE}/warm-up:{pushed.version.number}", root / f"p{seed}")
    shutil.rmtree(root)


def enter_depot(stack: contextlib.ExitStack, server: DepotServer) -> DepotServer:
    """Enter ``server`` on ``stack``; a server that started but never answered is stopped."""
    try:
        return stack.enter_context(server)
    except BaseException:
        if server.process is not None and server.process.poll() is None:
            server.__exit__()
        raise


def size_label(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200, help="searches on each side")
    parser.add_argument("--runs", type=int, default=3, help="transfers of the file, median")
    args = parser.parse_args()
    if args.size_mib < 1 or args.runs < 1 or args.models < len(PREFIXES):
        parser.error(f"--size-mib and --runs need 1 or more, --models {len(PREFIXES)} or more")
    if args.queries < BLOCKS * 3:
        parser.error(f"--queries needs {BLOCKS * 3} or more: each filter in each round")
    size = args.size_mib * MiB
    begun = time.perf_counter()
    python = ensure_mlflow()
    specs = model_specs(args.models)
    filters = search_filters(specs)
    transfers: dict[str, list[float]] = {}
    registration: dict[str, dict[str, list[float]]] = {
        side: {"create_ms": [], "version_ms": []} for side in ("mlflow", "depot")
    }
    searches: dict[str, dict[str, list[float]]] = {
        side: {item["label"]: [] for item in filters} for side in ("mlflow", "depot")
    }
    memory: dict[str, float] = {}
    phases: dict[str, float] = {}  # wall seconds of each part of the run
    mark_phase = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark_phase
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - mark_phase
        mark_phase = now

    def record(key: str, value: float) -> None:
        transfers.setdefault(key, []).append(value)

    RESULTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tmp = Path(
            stack.enter_context(tempfile.TemporaryDirectory(dir=RESULTS, prefix="mlflow-compare-"))
        )
        (tmp / "mlflow").mkdir()
        print("starting mlflow server and depot serve ...", flush=True)
        mlflow_server = stack.enter_context(MlflowServer(python, tmp / "mlflow"))
        phase("mlflow_start")
        depot = enter_depot(stack, DepotServer(tmp / "data"))
        phase("depot_start")
        depot.admin("create-org", ORG)
        depot.admin("create-space", ORG, SPACE)
        time.sleep(2)  # let both settle before their idle memory is read
        for side, pid in (("mlflow", mlflow_server.pid), ("depot", depot.pid)):
            memory[f"{side}_rss_idle_mib"] = rss_mib(pid)
            memory[f"{side}_pss_idle_mib"] = pss_mib(pid)
            memory[f"{side}_processes"] = len(process_tree(pid))
        driver = stack.enter_context(MlflowDriver(python, tmp / "mlflow", mlflow_server.url))
        http = Http(depot)
        stack.callback(http.close)
        # The client's digest cache (pushes and pulls record into it) stays in the run's
        # directory, not the user's.
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
        client = stack.enter_context(DepotClient(depot.url, depot.token, org=ORG))
        product, _ = http.json(
            "POST", f"{MR}/catalog/spaces/{SPACE}/model-repository/models", {"name": "Bench upload"}
        )
        phase("setup")
        # Both sides then write into memory the VM has backed before, whichever goes first.
        touched = touch_free_memory()
        print(f"touched {touched / 2**30:.1f} GiB of free memory once", flush=True)
        # Pages freed moments ago are cheaper still, until the VM takes them back (about
        # 2 s): let it, so that the first run starts where the next ones do.
        time.sleep(5)
        phase("touch_memory")
        warm_up(driver, mlflow_server.port, depot, http, client, product["id"], tmp / "warm-up")
        phase("warm_up")

        for run in range(args.runs):
            print(
                f"transfers of {size_label(args.size_mib)}, run {run + 1}/{args.runs}", flush=True
            )
            record("pipeline_mb_per_s", pipeline_mb_per_s(tmp, Payload(size, seed=10_000 + run)))
            # MLflow and the chunk API upload the same file. The push gets a file of its own,
            # as large but with other bytes: it would send nothing of content the server
            # holds, and a chunk upload of held content measures discarding a duplicate.
            source = tmp / f"upload-{run}" / "model.bin"
            pushed_source = tmp / f"upload-{run}" / "push" / "model.bin"
            single_source = tmp / f"upload-{run}" / "single" / "model.bin"
            pushed_source.parent.mkdir(parents=True)
            single_source.parent.mkdir(parents=True)
            digest = Payload(size, seed=3 * run + 1).write_to(source)
            Payload(size, seed=3 * run + 2).write_to(pushed_source)
            single_digest = Payload(size, seed=3 * run + 3).write_to(single_source)

            os.sync()
            uploaded = driver.call("upload", path=str(source))
            record("mlflow_upload_mb_per_s", size / uploaded["seconds"] / 1e6)
            os.sync()
            started = time.perf_counter()
            pushed = client.push(
                f"{SPACE}/upload-{run}",
                [pushed_source],
                kind="model",
                workers=IN_FLIGHT,
                journal_dir=tmp / "journal",
            )
            done = time.perf_counter()
            if pushed.bytes_sent != size:
                raise RuntimeError(f"push sent {pushed.bytes_sent} bytes, not {size}")
            record("depot_push_mb_per_s", size / (done - started) / 1e6)
            os.sync()
            seconds, completion, artifact = depot_chunk_upload(depot, product["id"], source, digest)
            record("depot_chunk_upload_mb_per_s", size / seconds / 1e6)
            record("depot_chunk_complete_ms", completion * 1000)
            os.sync()
            # One connection, chunks one after another: like log_artifact's single stream.
            seconds, _, _ = depot_chunk_upload(
                depot, product["id"], single_source, single_digest, in_flight=1
            )
            record("depot_chunk_single_mb_per_s", size / seconds / 1e6)

            # Downloads, each into a file on the same disk.
            os.sync()
            fetched = driver.call(
                "download",
                run_id=uploaded["run_id"],
                artifact_path=source.name,
                dst=str(tmp / f"mlflow-download-{run}"),
            )
            if fetched["size"] != size:
                raise RuntimeError(f"MLflow downloaded {fetched['size']} bytes, not {size}")
            record("mlflow_download_mb_per_s", size / fetched["seconds"] / 1e6)
            shutil.rmtree(tmp / f"mlflow-download-{run}")
            os.sync()

            ref = f"{SPACE}/upload-{run}:{pushed.version.number}"

            def pull_mb_per_s(dest: Path, ref: str = ref) -> float:
                started = time.perf_counter()
                pulled = client.pull(ref, dest, workers=IN_FLIGHT)
                elapsed = time.perf_counter() - started
                if pulled.bytes_downloaded != size:
                    raise RuntimeError(f"pull fetched {pulled.bytes_downloaded} bytes, not {size}")
                shutil.rmtree(dest)
                return size / elapsed / 1e6

            record("depot_pull_mb_per_s", pull_mb_per_s(tmp / f"pull-{run}"))
            # That pull read the blob from the disk (uploads are written past the page
            # cache) while writing it to the same disk: its limit is the disk doing both.
            os.sync()
            record("disk_read_write_mb_per_s", disk_read_write_mb_per_s(tmp, pushed_source))
            # MLflow's file is in the page cache, where its upload left it: the same pull
            # with Depot's blob there too.
            blob = (tmp / "data").rglob(pushed.version.files[0].sha256)
            read_through_cache(next(blob))
            os.sync()
            record("depot_pull_cached_mb_per_s", pull_mb_per_s(tmp / f"pull-cached-{run}"))
            os.sync()
            target = tmp / f"download-{run}.bin"
            started = time.perf_counter()
            received = http.download(
                f"{MR}/catalog/products/{product['id']}/model-artifacts/{artifact}/download",
                target,
            )
            record("depot_download_mb_per_s", size / (time.perf_counter() - started) / 1e6)
            if received != size or target.stat().st_size != size:
                raise RuntimeError(f"downloaded {received} bytes, not {size}")
            target.unlink()

            # The servers alone: the same GETs, the bytes read and dropped.
            started = time.perf_counter()
            received = get_and_drop(mlflow_server.port, uploaded["url"], {})
            record("mlflow_get_dropped_mb_per_s", size / (time.perf_counter() - started) / 1e6)
            if received != size:
                raise RuntimeError(f"MLflow served {received} bytes, not {size}")
            started = time.perf_counter()
            received = get_and_drop(
                depot.port,
                f"{MR}/catalog/products/{product['id']}/model-artifacts/{artifact}/download",
                http.auth,
            )
            record("depot_get_dropped_mb_per_s", size / (time.perf_counter() - started) / 1e6)
            if received != size:
                raise RuntimeError(f"Depot served {received} bytes, not {size}")
            shutil.rmtree(source.parent)
            for stored in (tmp / "mlflow" / "artifacts").rglob(source.name):
                stored.unlink()

        phase("transfers")

        # Registration, in rounds that alternate between the two.
        for block in range(BLOCKS):
            part = specs[block * len(specs) // BLOCKS : (block + 1) * len(specs) // BLOCKS]
            print(f"registering models {len(part)} x 2, round {block + 1}/{BLOCKS}", flush=True)
            phase("register_other")
            answer = driver.call(
                "register",
                models=[
                    {"name": s.name, "description": s.description, "tags": s.fields} for s in part
                ],
            )
            phase("register_mlflow")
            mine = depot_register(http, part)
            phase("register_depot")
            for side, times in (("mlflow", answer), ("depot", mine)):
                for key in ("create_ms", "version_ms"):
                    registration[side][key] += times[key]

        # Search: one untimed query per filter on each side (a check), then timed rounds.
        driver.call("search", filters=filters, count=len(filters))
        depot_search(http, filters, len(filters))
        for block in range(BLOCKS):
            count = (block + 1) * args.queries // BLOCKS - block * args.queries // BLOCKS
            print(f"searching {count} x 2, round {block + 1}/{BLOCKS}", flush=True)
            phase("search_other")
            answer = driver.call("search", filters=filters, count=count)["timings"]
            phase("search_mlflow")
            mine = depot_search(http, filters, count)
            phase("search_depot")
            for side, timings in (("mlflow", answer), ("depot", mine)):
                for label, values in timings.items():
                    searches[side][label] += values

        for side, pid in (("mlflow", mlflow_server.pid), ("depot", depot.pid)):
            memory[f"{side}_rss_after_mib"] = rss_mib(pid)
        mlflow_version = driver.version
    phase("stop")
    wall = time.perf_counter() - begun

    medians = {key: statistics.median(values) for key, values in transfers.items()}
    pairs = {
        side: [a + b for a, b in zip(times["create_ms"], times["version_ms"], strict=True)]
        for side, times in registration.items()
    }
    registered = {
        side: {
            "pair_ms": summary(pairs[side]),
            "create_ms": summary(times["create_ms"]),
            "version_ms": summary(times["version_ms"]),
        }
        for side, times in registration.items()
    }
    searched = {
        side: {
            "all": summary([v for values in by_filter.values() for v in values]),
            **{label: summary(values) for label, values in by_filter.items()},
        }
        for side, by_filter in searches.items()
    }
    label = size_label(args.size_mib)

    def versus(figure: str, depot_value: float, mlflow_value: float, unit: str, **kw: Any) -> Row:
        return Row(GROUP, figure, depot_value, unit, "MLflow", mlflow_value, **kw)

    up, down = medians["mlflow_upload_mb_per_s"], medians["mlflow_download_mb_per_s"]
    rows = [
        versus(
            f"upload {label}, chunk API, one connection",
            medians["depot_chunk_single_mb_per_s"],
            up,
            "MB/s",
            target=">= 1.5x",
        ),
        versus(
            f"upload {label}, chunk API, {IN_FLIGHT} in flight",
            medians["depot_chunk_upload_mb_per_s"],
            up,
            "MB/s",
            target=">= 1.5x",
        ),
        versus(
            f"upload {label}, Python client push",
            medians["depot_push_mb_per_s"],
            up,
            "MB/s",
            target=">= 1.5x",
        ),
        versus(
            f"download {label}, Model Repository API",
            medians["depot_download_mb_per_s"],
            down,
            "MB/s",
            target=">= 3x",
        ),
        versus(
            f"download {label}, Python client pull",
            medians["depot_pull_mb_per_s"],
            down,
            "MB/s",
            target=">= 3x",
        ),
        versus(
            f"download {label}, pull, blob cached like MLflow's",
            medians["depot_pull_cached_mb_per_s"],
            down,
            "MB/s",
            target=">= 3x",
        ),
        Row(
            GROUP,
            f"download {label}, pull, against the disk's limit",
            medians["depot_pull_mb_per_s"],
            "MB/s",
            "disk read + write at once",
            medians["disk_read_write_mb_per_s"],
        ),
        # The servers alone: what the two send when the client drops the bytes (no disk,
        # no fresh page cache on the client's side, which bound the rows above).
        versus(
            f"download {label}, Model Repository API, bytes dropped",
            medians["depot_get_dropped_mb_per_s"],
            medians["mlflow_get_dropped_mb_per_s"],
            "MB/s",
        ),
        versus(
            f"create model + version, p50 ({args.models:,} models)",
            registered["depot"]["pair_ms"]["p50"],
            registered["mlflow"]["pair_ms"]["p50"],
            "ms",
            target=">= 10x",
            lower_is_better=True,
        ),
        versus(
            f"search, filters, limit 50, p50 ({args.models:,} models)",
            searched["depot"]["all"]["p50"],
            searched["mlflow"]["all"]["p50"],
            "ms",
            lower_is_better=True,
        ),
        versus(
            f"search, filters, limit 50, p95 ({args.models:,} models)",
            searched["depot"]["all"]["p95"],
            searched["mlflow"]["all"]["p95"],
            "ms",
            lower_is_better=True,
        ),
        versus(
            "server RSS idle, all processes",
            memory["depot_rss_idle_mib"],
            memory["mlflow_rss_idle_mib"],
            "MiB",
            target="< 150 MiB",
            lower_is_better=True,
        ),
    ]

    print()
    print(
        f"{GROUP}: Depot vs MLflow {mlflow_version} (mlflow server --serve-artifacts, SQLite), "
        f"{label}, {args.models:,} models, {args.queries} searches, {args.runs} run(s), "
        f"{wall:.0f} s"
    )
    print(f"{'figure':48} {'Depot':>9} {'against':>9} {'unit':>5} {'ratio':>7}  target     met")
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        met = {True: "yes", False: "NO", None: ""}[row.met]
        print(
            f"{row.figure:48} {row.value:9.1f} {row.reference_value or 0:9.1f} {row.unit:>5} "
            f"{ratio:>7}  {row.target:10} {met}"
        )
    print(f"(against: MLflow, except the disk's limit: {label} read and written at once)")
    print()
    print(f"pipeline (read + sha256 + write + fsync) {medians['pipeline_mb_per_s']:.0f} MB/s")
    for side in ("depot", "mlflow"):
        times = registered[side]
        print(
            f"{side:6} create p50/p95 {times['create_ms']['p50']:.1f}/"
            f"{times['create_ms']['p95']:.1f} ms, version p50/p95 "
            f"{times['version_ms']['p50']:.1f}/{times['version_ms']['p95']:.1f} ms, "
            f"pair p95/p99 {times['pair_ms']['p95']:.1f}/{times['pair_ms']['p99']:.1f} ms"
        )
    for item in filters:
        text = ", ".join(
            f"{side} {searched[side][item['label']]['p50']:.1f}/"
            f"{searched[side][item['label']]['p95']:.1f}/{searched[side][item['label']]['p99']:.1f}"
            for side in ("depot", "mlflow")
        )
        print(f"search {item['label']:40} ({item['expect']:4} match) p50/p95/p99 ms: {text}")
    print(
        f"idle PSS depot {memory['depot_pss_idle_mib']:.0f} MiB "
        f"({memory['depot_processes']:.0f} processes), mlflow {memory['mlflow_pss_idle_mib']:.0f} "
        f"MiB ({memory['mlflow_processes']:.0f} processes); RSS after the run depot "
        f"{memory['depot_rss_after_mib']:.0f}, mlflow {memory['mlflow_rss_after_mib']:.0f} MiB"
    )
    print("seconds: " + ", ".join(f"{name} {value:.0f}" for name, value in phases.items()))
    out = write_results(
        "mlflow_compare",
        {
            "mlflow_version": mlflow_version,
            "size_mib": args.size_mib,
            "models": args.models,
            "queries": args.queries,
            "runs": args.runs,
            "wall_s": wall,
            "transfers": transfers,
            "medians": medians,
            "registration": registered,
            "search": searched,
            "filters": filters,
            "memory": memory,
            "phases_s": phases,
        },
        rows,
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
