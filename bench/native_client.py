"""Push and pull 1 GiB through the Python client (`depot push` / `depot pull`), beside the limit.

Starts `depot serve` (SQLite + local files) on a free loopback port and measures, in one run:

- the pipeline limit: read + sha256 + write + fsync of the same bytes in one process;
- a push of one 1 GiB file new to the client (its chunks in order, hashed while sent);
- the same push again: the digest cache vouches for the unchanged file, so nothing is read
  or sent; and after touching the file, with ``hash_first`` (``--hash-first``): the file is
  hashed, its content found on the server, and not sent;
- a pull into an empty directory (one stream, verified as it lands), and again (all skipped).

Run: ``.venv/bin/python bench/native_client.py [--size-mib 1024] [--runs 3]``
Writes ``bench/results/native_client.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DepotServer, MiB, Payload, Row, pipeline_mb_per_s, write_results

from depot.client import Client


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
        # The client's digest cache (pushes and pulls record into it) stays in the run's
        # directory, not the user's.
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        client = Client(server.url, server.token, org="bench")
        for run in range(args.runs):
            payload = Payload(size, seed=1000 + run)
            record("pipeline_mb_per_s", pipeline_mb_per_s(Path(tmp), payload))
            source = Path(tmp) / f"model-{run}"
            source.mkdir()
            payload.write_to(source / "weights.bin")
            # The digest cache trusts what it records of a file only if the file had not
            # changed for two seconds when it was read (digests.SETTLED_NS).
            time.sleep(2.5)
            journal = Path(tmp) / "journal"
            started = time.perf_counter()
            pushed = client.push("models/weights", [source], journal_dir=journal, workers=4)
            assert pushed.bytes_sent == size
            record("push_mb_per_s", size / (time.perf_counter() - started) / 1e6)
            started = time.perf_counter()
            again = client.push("models/weights", [source], journal_dir=journal)
            assert again.bytes_sent == 0
            record("push_again_s", time.perf_counter() - started)
            (source / "weights.bin").touch()
            started = time.perf_counter()
            touched = client.push("models/weights", [source], journal_dir=journal, hash_first=True)
            assert touched.bytes_sent == 0
            record("push_again_hashed_s", time.perf_counter() - started)

            target = Path(tmp) / f"pulled-{run}"
            started = time.perf_counter()
            pulled = client.pull(f"models/weights:{pushed.version.number}", target, workers=4)
            record("pull_mb_per_s", size / (time.perf_counter() - started) / 1e6)
            assert pulled.bytes_downloaded == size
            started = time.perf_counter()
            client.pull(f"models/weights:{pushed.version.number}", target)
            record("pull_again_s", time.perf_counter() - started)
            for path in (source / "weights.bin", target / "weights.bin"):
                path.unlink()
            # NOTE: this VM's disk writes fresh blocks at about half the speed of freed
            # ones: delete the pushed artifact and collect its blob before the next run.
            client.delete("models/weights")
            subprocess.run(
                [sys.executable, "-m", "depot", "gc", "--grace", "0"]
                + ["--data-dir", str(server.data_dir)],
                check=True,
                capture_output=True,
            )
    medians = {key: statistics.median(values) for key, values in runs.items()}
    limit = medians["pipeline_mb_per_s"]
    print(f"Python client push/pull, {args.size_mib} MiB, median of {args.runs} run(s)")
    print(f"{'figure':28} {'median':>10}  vs pipeline")
    for key, value in medians.items():
        ratio = f"{value / limit:.2f}x" if key.endswith("mb_per_s") else ""
        print(f"{key:28} {value:10.2f}  {ratio:>11}")
    group = f"Python client (depot push / pull), {args.size_mib} MiB"
    rows = [
        Row(
            group,
            "push of a new file (hashed while sent)",
            medians["push_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
        ),
        Row(group, "push again, unchanged (digest cache)", medians["push_again_s"], "s"),
        Row(
            group,
            "push again, touched, --hash-first",
            medians["push_again_hashed_s"],
            "s",
        ),
        Row(
            group,
            "pull, one stream, verified",
            medians["pull_mb_per_s"],
            "MB/s",
            "pipeline",
            limit,
        ),
        Row(group, "pull again (all present)", medians["pull_again_s"], "s"),
    ]
    out = write_results(
        "native_client", {"size_mib": args.size_mib, "runs": runs, "medians": medians}, rows
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
