"""Instructions per metadata GET, counted by callgrind: a figure the host's noise cannot move.

Requests per second on this shared VM swing by a factor of two within an hour, so a change
of 10-20 % to a request's cost is lost in them. Callgrind counts the instructions the
process executes, which repeat to four digits from run to run whatever else the machine
does. This script prepares the data of ``metadata_load.py`` (an ML repo, a pushed model
version, a Model Repository record), then, for each GET, runs the app in process (ASGI
calls, no network) under ``valgrind --tool=callgrind`` twice: with 0 and with
--requests requests after the same warm-up. The difference over --requests is the cost
of one request, the thread pool's share included. One to two minutes per GET on 2 cores.

Not part of ``make bench`` (valgrind makes it slow). Compare two commits by running it in
each (``git worktree add``, ``PYTHONPATH=<worktree>``); Python's hash seed is fixed so
that both runs take the same paths.

Run: ``.venv/bin/python bench/request_cost.py [--requests 200] [--only artifact]``.
Writes ``bench/results/request_cost.json`` beside this script (run over another commit's code,
it overwrites this checkout's figures: copy them first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import RESULTS, DepotServer, write_results
from metadata_load import prepare

WARM_UP = 100


def child(job: dict[str, str | int]) -> None:
    """Build the app over ``job["data"]`` and make the requests (run under valgrind)."""
    import gc

    from depot.app import create_app
    from depot.settings import Settings

    app = create_app(Settings(data_dir=Path(str(job["data"]))), background_jobs=False)
    gc.collect()
    gc.freeze()
    path, _, query = str(job["path"]).partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {job['token']}".encode())]

    async def request() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "extensions": {},
            "state": {},
        }
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent

    async def requests(count: int) -> None:
        for _ in range(count):
            await request()

    asyncio.run(requests(WARM_UP + int(job["requests"])))


def instructions(job: dict[str, str | int]) -> int:
    """Instructions callgrind counted in one child run."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable,
                __file__,
                "--child",
                json.dumps(job),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(result.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", default="", help="GETs whose label contains this text")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    RESULTS.mkdir(exist_ok=True)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        scratch = Path(tmp) / "files"
        scratch.mkdir()
        data = Path(tmp) / "data"
        with DepotServer(data) as server:
            targets = prepare(server, scratch)
            token = server.token
        for label, path in targets.items():
            if args.only not in label:
                continue
            jobs = [
                {"data": str(data), "token": token, "path": path, "requests": count}
                for count in (0, args.requests)
            ]
            with ThreadPoolExecutor(2) as pool:  # the two runs side by side, one per core
                without, with_requests = pool.map(instructions, jobs)
            figures[label] = (with_requests - without) / args.requests
            print(f"{label:60} {figures[label] / 1e6:6.2f}M instructions per request")
    out = write_results("request_cost", {"requests": args.requests, "instructions": figures})
    print(f"written to {out}")


if __name__ == "__main__":
    main()
