"""The upload engine of ``depot push``: announce, send what is missing, finalize.

A file's SHA-256 is announced up front when the client knows it without reading the
file: the digest cache (:mod:`depot.client.digests`) holds it from an earlier push or
pull and the file has not changed since. Small files and files the cache is unsure
about are hashed first; that costs little and lets the server skip content it already
holds in a space the caller may write. Every other file is hashed while it is sent, and
its digest is given when its upload is completed, where the server checks it against
the bytes it received: each byte is read once.

A push is resumable. A small journal in the cache directory, keyed by the server, the
artifact and the local files (path, size, modification time), keeps the id of the staged
version. Running the same push again asks the server which chunks of which upload
sessions it already holds and sends only the rest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from depot.client.digests import DigestCache
from depot.client.disk import read_sequentially
from depot.client.errors import (
    ClientError,
    NotFoundError,
    TransportError,
    error_from_response,
)
from depot.client.progress import ProgressCallback, ProgressMeter

__all__ = ["LocalFile", "PushReport", "collect_files", "push_files"]

_BLOCK = 1024 * 1024
# Files smaller than this are hashed before they are announced even when the digest
# cache does not know them: reading them twice costs little, and content the server
# holds (a shared tokenizer, an unchanged config) is then not sent at all.
HASH_FIRST_BELOW = 16 * 1024 * 1024
# Temporary files of `depot pull` are never pushed.
_PARTIAL_SUFFIXES = (".depot-partial", ".depot-partial.json")


@dataclass(frozen=True)
class LocalFile:
    """A file to push: where it goes in the version, where it is on disk, its stat then."""

    path: str
    source: Path
    stat: os.stat_result

    @property
    def size(self) -> int:
        return self.stat.st_size

    @property
    def mtime_ns(self) -> int:
        return self.stat.st_mtime_ns

    def check_unchanged(self) -> os.stat_result:
        """The file's stat now, if its size and modification time are those collected.

        Raises:
            ClientError: the file changed since it was collected.
        """
        now = self.source.stat()
        if (now.st_size, now.st_mtime_ns) != (self.size, self.mtime_ns):
            raise ClientError(f"{self.source} changed while it was read; push again")
        return now


@dataclass(frozen=True)
class PushReport:
    """What a push did."""

    version: dict[str, Any]
    uploaded: list[str]
    present: list[str]
    bytes_sent: int
    resumed: bool


def collect_files(paths: Sequence[Path]) -> list[LocalFile]:
    """The files of ``paths``: a file goes in under its name, a directory's files under
    their path inside it (so ``depot push s/m ./model`` puts ``./model/a/b`` at ``a/b``).

    Raises:
        ClientError: a path does not exist, holds no files, or two files land on one path.
    """
    found: dict[str, LocalFile] = {}

    def add(path: str, source: Path) -> None:
        if path in found:
            raise ClientError(
                f"two files would be pushed as {path}: {found[path].source}, {source}"
            )
        found[path] = LocalFile(path, source, source.stat())

    for root in paths:
        if root.is_file():
            add(root.name, root)
        elif root.is_dir():
            for current, dirs, names in os.walk(root, followlinks=False):
                dirs.sort()
                for name in sorted(names):
                    source = Path(current) / name
                    if name.endswith(_PARTIAL_SUFFIXES) or not source.is_file():
                        continue
                    add(source.relative_to(root).as_posix(), source)
        else:
            raise ClientError(f"{root} does not exist")
    if not found:
        raise ClientError("nothing to push: no files under the given paths")
    return [found[path] for path in sorted(found)]


class _Journal:
    """What a push remembers between runs: the staged version's id."""

    def __init__(self, directory: Path, key: str) -> None:
        self.path = directory / "pushes" / f"{key}.json"
        self.data: dict[str, Any] = {"version_id": None}
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self.data = loaded
        except (OSError, ValueError):
            pass  # no journal yet, or a torn one: start afresh

    @property
    def version_id(self) -> str | None:
        value = self.data.get("version_id")
        return str(value) if value else None

    @version_id.setter
    def version_id(self, value: str | None) -> None:
        self.data["version_id"] = value
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(json.dumps(self.data))
        os.replace(temp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _journal_key(server: str, artifact_url: str, files: Sequence[LocalFile]) -> str:
    manifest = [[f.path, str(f.source.resolve()), f.size, f.mtime_ns] for f in files]
    text = json.dumps([server, artifact_url, manifest])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _digests_up_front(
    files: Sequence[LocalFile],
    cache: DigestCache,
    meter: ProgressMeter,
    workers: int,
    stop: threading.Event,
    hash_first: bool,
) -> dict[str, str]:
    """The digests to announce: those the cache knows, and those of files worth hashing first.

    A file left out is hashed while it is sent.
    """
    digests: dict[str, str] = {}
    to_hash: list[LocalFile] = []
    for file in files:
        cached = cache.lookup(file.source, file.stat)
        if cached is not None and cached.trusted:
            digests[file.path] = cached.sha256
        elif hash_first or cached is not None or file.size < HASH_FIRST_BELOW:
            to_hash.append(file)
            continue
        meter.add(skipped=file.size, files=1)

    def hash_one(file: LocalFile) -> None:
        hasher = hashlib.sha256()
        started = time.time_ns()
        with file.source.open("rb", buffering=0) as handle:
            read_sequentially(handle.fileno())
            while block := handle.read(_BLOCK):
                if stop.is_set():
                    raise ClientError("push stopped")
                hasher.update(block)
                meter.add(moved=len(block))
        cache.record(file.source, file.check_unchanged(), hasher.hexdigest(), started)
        digests[file.path] = hasher.hexdigest()
        meter.add(files=1)

    _run_all(workers, [functools.partial(hash_one, file) for file in to_hash], stop)
    return digests


def _run_all(workers: int, tasks: Sequence[Callable[[], None]], stop: threading.Event) -> None:
    """Run ``tasks`` on ``workers`` threads.

    The first failure (or Ctrl-C in the calling thread) sets ``stop``, which running
    tasks check between blocks, and cancels the tasks that have not started.
    """
    if not tasks:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    futures: list[Future[None]] = [pool.submit(task) for task in tasks]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Sender:
    """Sends requests with retries on broken connections and server-side failures."""

    def __init__(self, http: httpx.Client, retries: int, stop: threading.Event) -> None:
        self.http, self.retries, self.stop = http, retries, stop

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        body_factory: Callable[[], Iterator[bytes]] | None = kwargs.pop("body_factory", None)
        for attempt in range(self.retries + 1):
            if self.stop.is_set():
                raise ClientError("push stopped")
            try:
                if body_factory is not None:
                    kwargs["content"] = body_factory()
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise TransportError(f"{method} {url} failed: {exc}") from exc
            else:
                retryable = response.status_code >= 500 or response.status_code in (409, 429)
                if response.is_success:
                    return response
                if not retryable or attempt == self.retries:
                    raise error_from_response(response)
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


def _read_range(
    file: LocalFile, offset: int, length: int, stop: threading.Event
) -> Iterator[bytes]:
    """The bytes ``[offset, offset + length)`` of a file to push, read in blocks."""
    fd = os.open(file.source, os.O_RDONLY)
    try:
        position, end = offset, offset + length
        while position < end:
            if stop.is_set():
                raise ClientError("push stopped")
            block = os.pread(fd, min(_BLOCK, end - position), position)
            if not block:
                raise ClientError(f"{file.source} is shorter than when it was collected")
            position += len(block)
            yield block
    finally:
        os.close(fd)


def _chunk_body(
    file: LocalFile,
    offset: int,
    length: int,
    meter: ProgressMeter,
    stop: threading.Event,
    counted: list[int],
    hasher: hashlib._Hash | None,
) -> Iterator[bytes]:
    """The bytes of one chunk read from disk in blocks, hashed and counted as they go out."""
    for block in _read_range(file, offset, length, stop):
        if hasher is not None:
            hasher.update(block)
        yield block
        counted[0] += len(block)
        meter.add(moved=len(block))


def push_files(
    http: httpx.Client,
    artifact_url: str,
    files: Sequence[LocalFile],
    *,
    journal_dir: Path,
    kind: str | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    alias: str | None = None,
    workers: int = 4,
    progress: ProgressCallback | None = None,
    retries: int = 4,
    hash_first: bool = False,
) -> PushReport:
    """Push ``files`` as a new version of the artifact at ``artifact_url``.

    Args:
        http: a client with the server's base URL and the token.
        artifact_url: ``/api/v1/orgs/ORG/spaces/SPACE/artifacts/NAME``.
        journal_dir: the cache directory: push journals (they go once the push is
            finalized) and the digest cache live there.
        workers: files sent at once (each file's chunks go in order, one at a time).
        hash_first: hash every file the digest cache does not vouch for before
            announcing it, so that none whose content the server holds is sent (at the
            price of reading those files twice).

    Raises:
        ClientError: the server refused something (its message is kept), a file changed
            while being pushed, or the connection failed for good; running the same push
            again continues where this one stopped.
    """
    meter = ProgressMeter(progress, sum(f.size for f in files), len(files))
    stop = threading.Event()
    sender = _Sender(http, retries, stop)
    journal = _Journal(journal_dir, _journal_key(str(http.base_url), artifact_url, files))
    cache = DigestCache(journal_dir)
    by_path = {file.path: file for file in files}
    try:
        meter.report("hash")
        digests = _digests_up_front(files, cache, meter, workers, stop, hash_first)
        state, resumed = _resume(sender, journal)
        if state is None:
            offers = [
                {
                    "path": file.path,
                    "size": file.size,
                    "sha256": digests.get(file.path),
                    "content_type": mimetypes.guess_type(file.path)[0]
                    or "application/octet-stream",
                }
                for file in files
            ]
            body = {"kind": kind, "description": description, "metadata": metadata or {}}
            state = sender.call(
                "POST", f"{artifact_url}/pushes", json={**body, "files": offers}
            ).json()
            journal.version_id = state["version_id"]
        if state["status"] == "ready":
            version = _finalize(sender, state["version_id"], alias)
            journal.remove()
            return PushReport(version, [], sorted(by_path), 0, resumed)
        meter.restart("transfer")
        tasks, uploaded, present = _plan(sender, state, by_path, digests, cache, meter, stop)
        _run_all(workers, tasks, stop)
        version = _finalize(sender, state["version_id"], alias)
        journal.remove()
        meter.report("done")
        return PushReport(version, uploaded, present, meter.moved_bytes, resumed)
    except BaseException:
        stop.set()
        raise
    finally:
        cache.close()


def _resume(sender: _Sender, journal: _Journal) -> tuple[dict[str, Any] | None, bool]:
    """The state of the journal's staged version, if it can still be continued."""
    if journal.version_id is None:
        return None, False
    try:
        state: dict[str, Any] = sender.call("GET", f"/api/v1/pushes/{journal.version_id}").json()
    except NotFoundError:
        return None, False
    usable = state["status"] == "ready" or (
        state["status"] == "staged"
        and all(
            item["upload"] is None
            or item["upload"]["status"] in ("initialized", "uploading", "completed")
            for item in state["files"]
        )
    )
    return (state, True) if usable else (None, False)


def _plan(
    sender: _Sender,
    state: dict[str, Any],
    by_path: dict[str, LocalFile],
    digests: dict[str, str],
    cache: DigestCache,
    meter: ProgressMeter,
    stop: threading.Event,
) -> tuple[list[Callable[[], None]], list[str], list[str]]:
    """One task per file still missing chunks: it sends them in order, then completes.

    Why in order: chunks that reach the server in order are hashed on the way and written
    past the page cache; one that arrives before those in front of it is parked in the
    cache and read back to be hashed. Over loopback on the 2-core VM of
    docs/performance.md a 1 GiB file went at 454–490 MB/s this way, against 366–378 MB/s
    with four of its chunks in flight. Parallelism comes from files, as with container
    registries' layers.
    """
    tasks: list[Callable[[], None]] = []
    uploaded, present = [], []
    for item in state["files"]:
        file, upload = by_path[item["path"]], item["upload"]
        if upload is None or upload["status"] == "completed":
            present.append(file.path) if upload is None else uploaded.append(file.path)
            meter.add(skipped=file.size, files=1)
            continue
        uploaded.append(file.path)
        chunk_size = int(upload["chunk_size"] or max(file.size, 1))
        missing = sorted(upload["missing_chunks"])
        received = file.size - sum(
            min(chunk_size, file.size - index * chunk_size) for index in missing
        )
        meter.add(skipped=received)
        sending = _FileUpload(
            sender,
            upload["id"],
            file,
            chunk_size,
            int(upload["chunk_count"] or 1),
            missing,
            item["sha256"] or digests.get(file.path),
            cache,
            meter,
            stop,
        )
        tasks.append(sending.run)
    return tasks, uploaded, present


@dataclass
class _FileUpload:
    """One file's upload: its missing chunks in order, then the completion.

    Without a digest announced for the file, every chunk is hashed as it is read, those
    the server already has included (they are read, not sent), and the digest goes with
    the completion for the server to check; the digest cache then remembers it.
    """

    sender: _Sender
    upload_id: str
    file: LocalFile
    chunk_size: int
    chunk_count: int
    missing: Sequence[int]
    sha256: str | None
    cache: DigestCache
    meter: ProgressMeter
    stop: threading.Event

    def run(self) -> None:
        hasher = hashlib.sha256() if self.sha256 is None else None
        started = time.time_ns()
        missing = set(self.missing)
        for index in range(self.chunk_count) if hasher is not None else self.missing:
            offset = index * self.chunk_size
            length = min(self.chunk_size, self.file.size - offset)
            if index in missing:
                hasher = self._send_chunk(index, offset, length, hasher)
            elif hasher is not None:
                self._hash_chunk(offset, length, hasher)
        if hasher is not None:
            after = self.file.check_unchanged()
            self.sha256 = hasher.hexdigest()
        # Always given: a resumed push may know a digest it did not announce.
        self.sender.call(
            "POST", f"/api/v1/uploads/{self.upload_id}/complete", json={"sha256": self.sha256}
        )
        if hasher is not None:
            self.cache.record(self.file.source, after, hasher.hexdigest(), started)
        self.meter.add(files=1)

    def _send_chunk(
        self, index: int, offset: int, length: int, hasher: hashlib._Hash | None
    ) -> hashlib._Hash | None:
        """Send one chunk; the file's hasher as it stands after the chunk's bytes."""
        counted = [0]
        attempt: list[hashlib._Hash | None] = [None]

        def body() -> Iterator[bytes]:
            # A retried chunk is sent whole again: take back what the failed try counted,
            # and hash its bytes from where the chunk began.
            self.meter.add(moved=-counted[0])
            counted[0] = 0
            attempt[0] = hasher.copy() if hasher is not None else None
            return _chunk_body(
                self.file, offset, length, self.meter, self.stop, counted, attempt[0]
            )

        self.sender.call(
            "PUT",
            f"/api/v1/uploads/{self.upload_id}/chunks/{index}",
            body_factory=body,
            headers={"Content-Length": str(length)},
        )
        return attempt[0]

    def _hash_chunk(self, offset: int, length: int, hasher: hashlib._Hash) -> None:
        """Hash a chunk the server received in an earlier run, without sending it."""
        for block in _read_range(self.file, offset, length, self.stop):
            hasher.update(block)


def _finalize(sender: _Sender, version_id: str, alias: str | None) -> dict[str, Any]:
    response = sender.call("POST", f"/api/v1/pushes/{version_id}/finalize", json={"alias": alias})
    version: dict[str, Any] = response.json()
    return version
