"""`depot push` and `depot pull` as processes against a real `depot serve`: a 2 GiB
directory of mixed files, the push SIGKILLed half-way and run again, the pull too."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import depot, serving

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
BLOCK = os.urandom(16 * MiB)


def write_file(path: Path, size: int) -> None:
    """``size`` bytes unique to ``path``: its name, then a random block over and over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        head = hashlib.sha256(str(path).encode()).digest()
        out.write(head[: min(size, len(head))])
        left = size - min(size, len(head))
        while left:
            piece = BLOCK[: min(left, len(BLOCK))]
            out.write(piece)
            left -= len(piece)


def make_directory(root: Path) -> dict[str, int]:
    """About 2 GiB: a 1 GiB file, a few of hundreds of MiB, many small ones, nested, empty."""
    sizes = {"model.safetensors": 1024 * MiB, "optimizer.pt": 600 * MiB}
    sizes |= {f"shards/part-{i}.bin": 100 * MiB + i for i in range(4)}
    sizes |= {f"tokenizer/merges-{i}.txt": 1000 * i + 7 for i in range(200)}
    sizes |= {"config.json": 300, "README.md": 5000, "empty.txt": 0}
    for path, size in sizes.items():
        write_file(root / path, size)
    return sizes


def digests(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            hasher = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(8 * MiB):
                    hasher.update(block)
            found[path.relative_to(root).as_posix()] = hasher.hexdigest()
    return found


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "depot", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def kill_when(process: subprocess.Popen[bytes], ready: callable, log: Path) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + 300
    while not ready():
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, "the transfer never got half-way"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_2_gib_push_and_pull_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as (url, _log):
        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        depot("admin", "create-space", "acme", "ml", "--data-dir", str(data_dir))
        token = depot("admin", "create-user", "maria", "--data-dir", str(data_dir)).split()[-1]
        depot("admin", "grant", "maria", "editor", "space:acme/ml", "--data-dir", str(data_dir))
        env = {
            **os.environ,
            "DEPOT_URL": url,
            "DEPOT_TOKEN": token,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            # A terminal as far as Rich is concerned, so the progress bar is drawn live.
            "FORCE_COLOR": "1",
            "COLUMNS": "120",
        }
        sizes = make_directory(tmp_path / "model")
        total = sum(sizes.values())
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

        def received() -> int:
            journals = list((tmp_path / "cache" / "depot" / "pushes").glob("*.json"))
            if not journals:
                return 0
            try:
                version_id = json.loads(journals[0].read_text()).get("version_id")
            except (ValueError, FileNotFoundError):
                return 0  # caught between write and rename, or after the push removed it
            if not version_id:
                return 0
            state = api.get(f"/api/v1/pushes/{version_id}").json()
            done = 0
            for item in state["files"]:
                upload = item["upload"]
                if upload is None or upload["status"] == "completed":
                    done += item["size"]
                else:
                    size, step = item["size"], upload["chunk_size"]
                    done += sum(min(step, size - i * step) for i in upload["received_chunks"])
            return done

        # Push, and SIGKILL the process once half the bytes are on the server.
        push = ["push", "ml/llm", str(tmp_path / "model"), "--kind", "model", "--alias", "prod"]
        first_log = tmp_path / "push-1.log"
        kill_when(start(push, env, first_log), lambda: received() >= total // 2, first_log)
        shown = first_log.read_text(errors="replace")
        assert shown.count("files") >= 3, shown  # the progress bar was drawn as it went
        # Chunks whose bytes were all in before the kill are still being recorded: settle.
        arrived, previous = received(), -1
        while arrived != previous:
            time.sleep(0.5)
            arrived, previous = received(), arrived
        assert total // 2 <= arrived < total

        # The same command again continues, re-sending nothing that arrived.
        again = subprocess.run(
            [sys.executable, "-m", "depot", *push, "--json", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
        result = json.loads(again.stdout)
        assert result["resumed"] is True and result["version"]["number"] == 1
        assert result["bytes_sent"] == total - arrived

        # Pull, SIGKILL it half-way, pull again: every byte verified.
        out = tmp_path / "out"
        pull = ["pull", "ml/llm@prod", str(out)]

        def pulled() -> int:
            # Blocks, not sizes: partial files are sparse at their full size from the start.
            total_blocks = 0
            for path in out.rglob("*") if out.exists() else ():
                # A finished part may be renamed into place between listing and stat.
                with contextlib.suppress(FileNotFoundError):
                    total_blocks += path.lstat().st_blocks if path.is_file() else 0
            return total_blocks * 512

        second_log = tmp_path / "pull-1.log"
        kill_when(start(pull, env, second_log), lambda: pulled() >= total // 2, second_log)
        finished = subprocess.run(
            [sys.executable, "-m", "depot", *pull, "--json", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert finished.returncode == 0, finished.stderr
        report = json.loads(finished.stdout)
        assert report["skipped"] or report["downloaded"]
        assert digests(out) == digests(tmp_path / "model")
        assert not [p for p in out.rglob("*") if ".depot-partial" in p.name]

        # The pulled files pushed back, hashed first: the server has every byte.
        back = subprocess.run(
            [sys.executable, "-m", "depot", "push", "ml/copy", str(out), "--hash-first"]
            + ["--json", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["bytes_sent"] == 0
