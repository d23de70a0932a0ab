"""Pieces the benchmarks share: payloads, the pipeline limit, a `depot serve` process, RSS."""

from __future__ import annotations

import hashlib
import http.client
import json
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
RESULTS = Path(__file__).parent / "results"


class Payload:
    """Reproducible bytes of any length, generated without copying.

    The bytes are a random 64 MiB pattern repeated; the first 16 bytes carry
    ``seed``, so payloads with different seeds are different blobs and nothing
    deduplicates by accident. Blocks are views into the pattern: producing them
    costs the benchmark client almost nothing.
    """

    _pattern = os.urandom(64 * MiB)

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        head = bytearray(self._pattern[:MiB])
        head[:16] = seed.to_bytes(16, "little")
        self._head = bytes(head)

    def blocks(self, offset: int, length: int) -> Iterator[bytes | memoryview]:
        """The bytes [offset, offset + length), in blocks of at most 1 MiB."""
        view = memoryview(self._pattern)
        end = offset + length
        while offset < end:
            start = offset % len(self._pattern)
            take = min(MiB - offset % MiB, end - offset, len(self._pattern) - start)
            # The first MiB comes from the seeded head, the rest straight from the pattern.
            source = memoryview(self._head) if offset < MiB else view
            yield source[start : start + take]
            offset += take

    def sha256(self) -> str:
        hasher = hashlib.sha256()
        for block in self.blocks(0, self.size):
            hasher.update(block)
        return hasher.hexdigest()

    def write_to(self, path: Path) -> str:
        """Write the bytes to ``path``; their SHA-256."""
        hasher = hashlib.sha256()
        with path.open("wb") as out:
            for block in self.blocks(0, self.size):
                hasher.update(block)
                out.write(block)
        return hasher.hexdigest()


def pipeline_mb_per_s(directory: Path, payload: Payload) -> float:
    """The limit: read (generate) + sha256 + write + fsync of the payload in one process."""
    path = directory / "pipeline.bin"
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with path.open("wb", buffering=0) as out:
        for block in payload.blocks(0, payload.size):
            hasher.update(block)
            out.write(block)
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return payload.size / elapsed / 1e6


def disk_read_write_mb_per_s(directory: Path, source: Path) -> float:
    """The disk's limit for a download into a file on the same disk: ``source`` read while
    as many bytes are written to a new file and fsynced, both past the page cache
    (``O_DIRECT``, 8 MiB at a time, in two threads); MB/s until both are done."""
    size = source.stat().st_size - source.stat().st_size % (8 * MiB)
    target = directory / "disk-limit.bin"

    def run(path: Path, flags: int, move: Any) -> None:
        fd = os.open(path, flags | os.O_DIRECT, 0o644)
        buffer = mmap.mmap(-1, 8 * MiB)
        try:
            for offset in range(0, size, 8 * MiB):
                move(fd, buffer, offset)
            os.fsync(fd)
        finally:
            buffer.close()
            os.close(fd)

    reader = threading.Thread(
        target=run, args=(source, os.O_RDONLY, lambda fd, b, at: os.preadv(fd, [b], at))
    )
    started = time.perf_counter()
    reader.start()
    run(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, lambda fd, b, at: os.pwrite(fd, b, at))
    reader.join()
    elapsed = time.perf_counter() - started
    target.unlink()
    return size / elapsed / 1e6


def touch_free_memory(keep_free: int = 1024 * MiB, at_most: int = 32 * 1024 * MiB) -> int:
    """Write once to the memory the kernel holds free (but ``keep_free``, and ``at_most``
    in all: more than the comparison's files fill), then free it.

    Why: this VM's hypervisor backs a guest page the first time it is touched, and that
    first touch costs the writer about 2.4 s of CPU a GiB; a page touched before and since
    freed costs 0.2-0.8 s (docs/performance.md). On a fresh VM a benchmark's first
    transfers write into untouched memory and its later ones into memory touched by the
    earlier ones, so a side's figure depended on its place in the run (MLflow's upload:
    237 MB/s in the first run, 501-549 in the next two). A server that has run for a while
    has touched its memory. Returns the bytes touched.
    """
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    free = int(fields["MemFree"].split()[0]) * 1024
    size = max(0, min(free - keep_free, at_most)) // MiB * MiB
    if size == 0:
        return 0
    block = b"\x01" * MiB  # not zeros, which a hypervisor may share
    with mmap.mmap(-1, size) as area:
        for _ in range(size // MiB):
            area.write(block)
    return size


def read_through_cache(path: Path) -> None:
    """Read the file at ``path`` once, so that the page cache holds it."""
    with path.open("rb", buffering=0) as source:
        while source.read(8 * MiB):
            pass


def request_json(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> Any:
    """Send a JSON request on a keep-alive connection and return the decoded answer.

    The server closes a keep-alive connection left idle for long (a control connection
    while gigabytes move on another): the request is sent again on a new one, as any
    client would.
    """
    payload = json.dumps(body).encode() if body is not None else None
    headers = {**headers, "Content-Type": "application/json"}
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        connection.close()
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data) if data else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids += process_tree(int(child))
    return pids


def rss_mib(pid: int) -> float:
    """Resident memory of a process tree, summed, in MiB."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


class RssSampler:
    """Samples a process tree's RSS in a thread; ``peak`` is the highest sum seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(self.interval)


class DepotServer:
    """`depot serve` on a free loopback port with a fresh data directory."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self._extra = extra
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DepotServer:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "depot",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self._extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.token = (self.data_dir / "admin.token").read_text().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def admin(self, *args: str) -> str:
        """Run `depot admin ...` on this server's data directory."""
        result = subprocess.run(
            [sys.executable, "-m", "depot", "admin", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=True,
            env=self._env,
        )
        return result.stdout

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def write_results(name: str, data: dict[str, Any], rows: list[Row] | None = None) -> Path:
    """Write ``bench/results/NAME.json``: the raw ``data`` and, under ``"rows"``, the
    figures `make bench` gathers into its one table (bench/run.py)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {**data, "rows": [row.as_dict() for row in rows or []]}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class Row:
    """One figure of the summary table, beside what it is measured against.

    ``reference`` names the limit or peer measured in the same run ("pipeline", "bare
    FileResponse", "MLflow", ...) and ``reference_value`` its figure in the same unit;
    ``ratio`` is value ÷ reference (or reference ÷ value when ``lower_is_better``).
    ``target`` is the goal as PERFORMANCE.md states it: ``">= 0.8x"`` for ratios,
    ``"< 50 ms"`` / ``">= 2000 req/s"`` for plain values; ``met`` says whether it holds.
    """

    group: str
    figure: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    target: str = ""
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if not self.reference_value or not self.value:
            return None
        if self.lower_is_better:
            return self.reference_value / self.value
        return self.value / self.reference_value

    @property
    def met(self) -> bool | None:
        """Whether ``target`` holds: ``OP NUMBER`` with an ``x`` suffix for ratios."""
        if not self.target:
            return None
        op, _, number = self.target.partition(" ")
        amount = number.split()[0]
        subject = self.ratio if amount.endswith("x") else self.value
        if subject is None:
            return None
        bound = float(amount.rstrip("x").replace(",", ""))
        return {
            "<": subject < bound,
            "<=": subject <= bound,
            ">": subject > bound,
            ">=": subject >= bound,
        }[op]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(purpose: str) -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (user postgres), dropped afterwards."""
    import psycopg

    name = f"depot_bench_{purpose}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
