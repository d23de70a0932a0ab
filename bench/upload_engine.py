"""Upload engine throughput against this machine's read + sha256 + write + fsync pipeline.

Measures, in one run and on the embedded default (SQLite + local files):

- the pipeline: 1 GiB hashed with SHA-256, written and fsynced (the limit);
- the upload engine receiving the same amount in chunks of the default size (64 MiB),
  in order, one at a time;
- the same with 4 chunks in flight (threads), as a client with parallel connections would;
- completion latency after those chunks (no re-read expected) and after chunks received
  by another process (one full re-read expected).

No HTTP is involved: this is the floor under every surface's upload figure.

Run: ``.venv/bin/python bench/upload_engine.py [--size-mib 1024] [--runs 3]``
Writes ``bench/results/upload_engine.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import MiB, Payload, Row, pipeline_mb_per_s, write_results

from depot.blobs.local import LocalBlobStore
from depot.blobs.s3 import S3BlobStore
from depot.blobs.store import BlobStore
from depot.db.engine import open_database
from depot.db.migrate import upgrade
from depot.settings import Settings
from depot.uploads.service import UploadService

CHUNK = Settings.model_fields["upload_chunk_size"].default


def engine(
    directory: Path, payload: Payload, in_flight: int, store: BlobStore | None = None
) -> dict[str, float]:
    settings = Settings(data_dir=directory, upload_chunk_size=CHUNK)
    database = open_database(settings.effective_database_url)
    upgrade(database)
    store = store or LocalBlobStore(directory)
    uploads = UploadService(database, store, settings)
    size = payload.size

    def send_all(service: UploadService, upload: uuid.UUID, lanes: int) -> None:
        count = -(-size // CHUNK)

        def send(index: int) -> None:
            offset = index * CHUNK
            blocks = payload.blocks(offset, min(CHUNK, size - offset))
            service.receive_chunk(upload, index, (bytes(block) for block in blocks))

        if lanes == 1:
            for index in range(count):
                send(index)
        else:
            with ThreadPoolExecutor(lanes) as pool:
                list(pool.map(send, range(count)))

    view = uploads.start_upload(space_id=None, created_by_id=None, size=size)
    started = time.perf_counter()
    send_all(uploads, view.id, in_flight)
    received = time.perf_counter()
    done = uploads.complete_upload(view.id)
    completed = time.perf_counter()
    store.delete(done.blob_sha256 or "")

    # The same bytes again, received here but completed by a "replica" without digest state.
    other = uploads.start_upload(space_id=None, created_by_id=None, size=size)
    send_all(uploads, other.id, 1)
    replica = UploadService(database, store, settings)
    reread_started = time.perf_counter()
    again = replica.complete_upload(other.id)
    reread = time.perf_counter() - reread_started
    # NOTE: this VM's disk writes fresh blocks at about half the speed of freed ones, so
    # every figure is taken after the bytes of the one before are deleted.
    store.delete(again.blob_sha256 or "")
    database.dispose()
    return {
        "mb_per_s": size / (completed - started) / 1e6,
        "complete_ms": (completed - received) * 1000,
        "complete_reread_ms": reread * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--s3",
        action="store_true",
        help="stage into a SeaweedFS S3 gateway (started here) instead of files",
    )
    args = parser.parse_args()
    size = args.size_mib * MiB
    results: dict[str, list[float]] = {}
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(_seaweedfs()) if args.s3 else None
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(dir="bench/results") as tmp:
                base = Path(tmp)
                limit = pipeline_mb_per_s(base, Payload(size, 100 + run))
                results.setdefault("pipeline_mb_per_s", []).append(limit)
                for in_flight in (1, 4):
                    store = s3() if s3 else None
                    figures = engine(
                        base / f"engine{in_flight}",
                        Payload(size, run * 10 + in_flight),
                        in_flight,
                        store,
                    )
                    for key, value in figures.items():
                        results.setdefault(f"engine_{in_flight}_{key}", []).append(value)
    medians = {key: statistics.median(values) for key, values in results.items()}
    limit = medians["pipeline_mb_per_s"]
    where = "S3 (SeaweedFS)" if args.s3 else "local files"
    print(f"Upload engine (no HTTP, {where}), {args.size_mib} MiB, median of {args.runs} run(s)")
    print(f"{'figure':34} {'median':>10}  vs pipeline")
    for key, value in medians.items():
        ratio = f"{value / limit:.2f}x" if key.endswith("mb_per_s") else ""
        print(f"{key:34} {value:10.1f}  {ratio:>11}")
    name = "upload_engine_s3" if args.s3 else "upload_engine"
    group = f"Upload engine alone ({where}), {args.size_mib} MiB"
    rows = [
        Row(group, "pipeline: read + sha256 + write + fsync (limit)", limit, "MB/s"),
        Row(
            group,
            "engine, chunks in order",
            medians["engine_1_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
        ),
        Row(
            group,
            "engine, 4 chunks in flight",
            medians["engine_4_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
        ),
        Row(group, "completion after in-order chunks", medians["engine_1_complete_ms"], "ms"),
        Row(
            group,
            "completion by another replica (re-read)",
            medians["engine_1_complete_reread_ms"],
            "ms",
        ),
    ]
    out = write_results(
        name, {"size_mib": args.size_mib, "runs": results, "medians": medians}, rows
    )
    print(f"written to {out}")


@contextlib.contextmanager
def _seaweedfs() -> Iterator[Callable[[], BlobStore]]:
    """A SeaweedFS S3 gateway for the run; yields a maker of fresh S3 stores in it."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.seaweedfs import create_bucket, run_seaweedfs

    with tempfile.TemporaryDirectory(dir="bench/results") as tmp, run_seaweedfs(Path(tmp)) as s3:
        bucket = create_bucket(s3)
        yield lambda: S3BlobStore(
            bucket,
            uuid.uuid4().hex[:8],
            endpoint_url=s3.endpoint_url,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
        )


if __name__ == "__main__":
    main()
