"""Upload engine throughput against this machine's read + sha256 + write + fsync pipeline.

Measures, in one run and on the embedded default (SQLite + local files):

- the pipeline: 1 GiB from memory, hashed with SHA-256, written and fsynced (the limit);
- the upload engine receiving the same bytes as 16 MiB chunks in order, one at a time;
- the same with 4 chunks in flight (threads), as a client with parallel connections would;
- completion latency after in-order chunks (no re-read expected) and after chunks received
  by another process (one full re-read expected).

No HTTP is involved: this is the floor under every surface's upload figure.

Run: ``.venv/bin/python bench/upload_engine.py [--size-mib 1024] [--runs 3]``
Writes ``bench/results/upload_engine.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from depot.blobs.local import LocalBlobStore
from depot.db.engine import open_database
from depot.db.migrate import upgrade
from depot.settings import MiB, Settings
from depot.uploads.service import UploadService

BLOCK = MiB
CHUNK = 16 * MiB


def payload(size: int) -> tuple[bytes, Callable[[int, int], Iterator[bytes]]]:
    """A 16 MiB random pattern and a function yielding [offset, offset + length) of the stream."""
    pattern = os.urandom(CHUNK)

    def piece(offset: int, length: int) -> Iterator[bytes]:
        end = offset + length
        while offset < end:
            start = offset % CHUNK
            take = min(BLOCK, CHUNK - start, end - offset)
            yield pattern[start : start + take]
            offset += take

    return pattern, piece


def pipeline(directory: Path, size: int, piece: Callable[[int, int], Iterator[bytes]]) -> float:
    """MB/s of hashing and writing ``size`` bytes to one file, then fsync."""
    path = directory / "pipeline.bin"
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with path.open("wb", buffering=0) as out:
        for block in piece(0, size):
            hasher.update(block)
            out.write(block)
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return size / elapsed / 1e6


def engine(
    directory: Path, size: int, piece: Callable[[int, int], Iterator[bytes]], in_flight: int
) -> dict[str, float]:
    settings = Settings(data_dir=directory, upload_chunk_size=CHUNK)
    database = open_database(settings.effective_database_url)
    upgrade(database)
    store = LocalBlobStore(directory)
    uploads = UploadService(database, store, settings)
    view = uploads.start_upload(space_id=None, created_by_id=None, size=size)
    count = view.chunk_count or 1

    def send(index: int) -> None:
        offset = index * CHUNK
        uploads.receive_chunk(view.id, index, piece(offset, min(CHUNK, size - offset)))

    started = time.perf_counter()
    if in_flight == 1:
        for index in range(count):
            send(index)
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(send, range(count)))
    received = time.perf_counter()
    done = uploads.complete_upload(view.id)
    completed = time.perf_counter()

    # The same bytes again, received here but completed by a "replica" without digest state.
    other = uploads.start_upload(space_id=None, created_by_id=None, size=size)
    for index in range(count):
        offset = index * CHUNK
        uploads.receive_chunk(other.id, index, piece(offset, min(CHUNK, size - offset)))
    replica = UploadService(database, store, settings)
    reread_started = time.perf_counter()
    replica.complete_upload(other.id)
    reread = time.perf_counter() - reread_started

    assert done.size == size
    store.delete(done.blob_sha256 or "")
    database.dispose()
    return {
        "mb_per_s": size / (completed - started) / 1e6,
        "complete_ms": (completed - received) * 1000,
        "complete_reread_ms": reread * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write (default: a temp dir in the current directory's filesystem)",
    )
    args = parser.parse_args()
    size = args.size_mib * MiB
    _pattern, piece = payload(size)
    results: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(dir=args.dir or Path.cwd()) as tmp:
            base = Path(tmp)
            results.setdefault("pipeline_mb_per_s", []).append(pipeline(base, size, piece))
            for in_flight in (1, 4):
                run = engine(base / f"engine{in_flight}", size, piece, in_flight)
                for key, value in run.items():
                    results.setdefault(f"engine_{in_flight}_{key}", []).append(value)
    medians = {key: statistics.median(values) for key, values in results.items()}
    limit = medians["pipeline_mb_per_s"]
    print(f"{'figure':44} {'median':>10}  ratio to pipeline")
    for key, value in medians.items():
        ratio = f"{value / limit:.2f}x" if key.endswith("mb_per_s") else ""
        print(f"{key:44} {value:10.1f}  {ratio}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "upload_engine.json").write_text(
        json.dumps({"size_mib": args.size_mib, "runs": results, "medians": medians}, indent=2)
    )


if __name__ == "__main__":
    main()
