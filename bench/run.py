"""`make bench`: run every benchmark, then print one table of every figure beside its limit
or peer measured in the same run, with the ratio and the target.

Each benchmark is its own script (run alone for details, see its docstring) and writes
``bench/results/NAME.json`` with its rows; this runner runs them one after another (they
must not compete for the two cores), gathers the rows, prints the table, and writes
``bench/results/summary.json`` and ``bench/results/summary.md``.

Run: ``.venv/bin/python bench/run.py [--only NAME ...] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"

# name -> (script, arguments, quick arguments); in the order they run.
SUITE: dict[str, tuple[str, list[str], list[str]]] = {
    "upload_engine": ("upload_engine.py", [], ["--size-mib", "256", "--runs", "1"]),
    "model_repository": ("model_repository.py", [], ["--size-mib", "256", "--runs", "1"]),
    "ml_api": ("ml_api.py", [], ["--size-mib", "256", "--runs", "1"]),
    "native_client": ("native_client.py", [], ["--size-mib", "256", "--runs", "1"]),
    "downloads": ("downloads.py", [], ["--size-mib", "256", "--runs", "1"]),
    "memory": ("memory.py", [], ["--size-gib", "1"]),
    "listing": ("listing.py", [], ["--models", "20000"]),
    "metadata_load": ("metadata_load.py", [], ["--seconds", "5"]),
    "search": ("search.py", [], ["--chunks", "2000", "--queries", "50"]),
    "mlflow_compare": ("mlflow_compare.py", [], ["--size-mib", "256", "--models", "200"]),
}


def _cell(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| figure | value | reference (same run) | ratio | target | met |",
        "| --- | ---: | --- | ---: | --- | :---: |",
    ]
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"| **{group}** | | | | | |")
        reference = (
            f"{row['reference']}: {_cell(row['reference_value'], row['unit'])}"
            if row["reference"]
            else ""
        )
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        lines.append(
            f"| {row['figure']} | {_cell(row['value'], row['unit'])} | {reference} | {ratio}"
            f" | {row['target']} | {met} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SUITE), help="run only these")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument(
        "--table-only", action="store_true", help="print the table from the last results"
    )
    args = parser.parse_args()
    names = args.only or list(SUITE)
    failed: list[str] = []
    timings: dict[str, float] = {}
    if not args.table_only:
        for name in names:
            script, arguments, quick = SUITE[name]
            command = [sys.executable, str(BENCH / script), *(quick if args.quick else arguments)]
            print(f"== {name}: {' '.join(command[1:])}", flush=True)
            started = time.perf_counter()
            result = subprocess.run(command, cwd=BENCH.parent, check=False)
            timings[name] = time.perf_counter() - started
            if result.returncode != 0:
                failed.append(name)
    rows: list[dict[str, Any]] = []
    for name in names:
        path = RESULTS / f"{name}.json"
        if name not in failed and path.is_file():
            rows += json.loads(path.read_text()).get("rows", [])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    header = (
        f"Depot benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, commit {commit or '?'},"
        f" {os.cpu_count()} cores, {platform.platform()}" + (" (quick sizes)" if args.quick else "")
    )
    lines = [header, "", *_table(rows)]
    if failed:
        lines += ["", f"failed: {', '.join(failed)}"]
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(text + "\n")
    summary = {"header": header, "rows": rows, "failed": failed, "seconds": timings}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {RESULTS / 'summary.md'} and summary.json")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
