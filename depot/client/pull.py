"""The download engine of ``depot pull``: a verified stream per file, files in parallel, resumable.

Each file comes as one ranged GET from the first byte not yet on disk, hashed as it
arrives and written past the page cache, like a container registry's layers: bytes that
arrive in order need no reading back to be hashed. ``workers`` files move at once. A
thread of the file's own hashes and writes its bytes while the calling thread receives
the next ones, through a few page-aligned buffers.

The bytes go into a partial file beside the destination, ``.<name>.depot-partial``; a
sidecar, ``.<name>.depot-partial.json``, lists the segments (``segment_size`` bytes each)
that are on disk, so running the same pull again fetches only the rest. A broken
connection is taken up again from the byte it reached. Only bytes whose digest and size
match what the server announced are moved onto the destination, atomically; a
destination that already holds them is left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import mmap
import os
import queue
import re
import stat
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from depot.client.body import BodyReader
from depot.client.digests import DigestCache, same_stat
from depot.client.disk import ALIGNMENT, drop_from_cache, read_sequentially, set_direct
from depot.client.errors import ClientError, IntegrityError, TransportError, error_from_response
from depot.client.progress import ProgressCallback, ProgressMeter

__all__ = ["PullReport", "RemoteFile", "pull_files"]

_BLOCK = 1024 * 1024
_PARTIAL = ".depot-partial"
_BACKOFF = 0.5  # seconds before the first retry, doubled for each one after
# Four buffers of 8 MiB per file in flight: one filling, one being hashed, one being
# written, one spare. In a prototype over loopback on the VM of docs/performance.md, 1 GiB
# came at 610–700 MB/s with 4, 8 or 16 MiB buffers alike (and at 350–420 MB/s as four
# parallel ranges, hashed by reading them back, in the same run).
_BUFFER = 8 * 1024 * 1024
_BUFFERS = 4
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """A file of a version, as the server announced it.

    Attributes:
        path: Relative, '/'-separated path inside the version (``config/params.json``).
        size: Its size in bytes.
        sha256: The lowercase hex SHA-256 of its bytes.
        url: Where its bytes are, relative to the client's ``base_url`` or absolute;
            a GET there must honour ``Range``.
    """

    path: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class PullReport:
    """What a pull did.

    Attributes:
        downloaded: Paths written in this run: fetched wholly or partly, finished from
            a partial file an earlier run left, or (empty files) created.
        skipped: Paths whose destination already held the right bytes.
        bytes_downloaded: Bytes received over the network in this run.
    """

    downloaded: list[str]
    skipped: list[str]
    bytes_downloaded: int


def pull_files(
    http: httpx.Client,
    files: Sequence[RemoteFile],
    dest: Path,
    *,
    workers: int = 4,
    segment_size: int = 32 * 1024 * 1024,
    progress: ProgressCallback | None = None,
    retries: int = 4,
    digests: DigestCache | None = None,
) -> PullReport:
    """Download ``files`` into the directory ``dest``, verifying every byte.

    Destinations that already hold a file's bytes (same size and SHA-256) are skipped.
    The other files are fetched ``workers`` at a time, each as one stream from the first
    byte an interrupted run left missing, into a partial file that replaces the
    destination only once its SHA-256 and size match.

    A stream that breaks, or is answered with a 5xx or a 429, is asked again from the
    byte it reached after 0.5 s, 1 s, 2 s and so on: ``retries`` times at most without a
    whole segment coming through in between. When a file fails for good the pull stops:
    files not started are cancelled, running ones stop at their next block, and the
    partial files stay for the next run.

    Args:
        http: The client for the server: its ``base_url``, an ``Authorization`` header,
            and ``follow_redirects=True`` so that a 307 to a pre-signed store URL is
            followed (httpx drops the header when the redirect leaves the origin).
        files: What to download, with the sizes and digests the server announced.
        dest: The directory the files' paths are relative to; created if missing.
        workers: How many files are downloaded at once.
        segment_size: The unit of resuming: every ``segment_size`` bytes the partial
            file is synced and the sidecar records it. A run resumes a partial file only
            if it uses the same segment size.
        progress: Called with a ``TransferProgress`` when hashing existing files starts,
            when the transfer starts, after every block of about 1 MiB and once at the
            end (phase ``"done"``); never from two threads at once.
        retries: How often a stream is asked again without progress before the pull
            gives up.
        digests: The client's digest cache: a destination it vouches for is not read
            again to be checked, and every file found intact or written is recorded, so
            that pushing it back sends nothing.

    Returns:
        The paths downloaded and skipped, and the bytes received.

    Raises:
        ValueError: ``workers`` or ``segment_size`` is below 1, or ``retries`` below 0.
        ClientError: A path is unsafe (absolute, with ``..``, empty parts or a
            backslash), appears twice or is both a file and a directory, a digest is
            malformed, or the server answered a range with something else. A 4xx is
            raised as its own subclass (``NotFoundError``, ``AuthError``...) at once.
        IntegrityError: A file's bytes do not match its SHA-256 or size; its partial
            file and sidecar are removed, so the next run fetches it afresh.
        TransportError: A file still failed after ``retries`` retries.
    """
    if workers < 1 or segment_size < 1 or retries < 0:
        raise ValueError("workers and segment_size must be at least 1, retries at least 0")
    targets = _targets(Path(dest), files)
    meter = ProgressMeter(progress, sum(file.size for file in files), len(files))
    stop = threading.Event()
    downloaded: list[str] = []
    skipped: list[str] = []
    downloads: list[_Download] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="depot-pull")
    try:
        meter.report("hash")
        present = list(
            pool.map(lambda file, target: _check(file, target, meter, digests), files, targets)
        )
        for file, target, here in zip(files, targets, present, strict=True):
            if here:
                skipped.append(file.path)
                _remove_partial(target)
                continue
            downloaded.append(file.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.size == 0:
                _write_empty(file, target)
                if digests is not None:
                    _remember(digests, file, target)
                meter.add(files=1, report=False)
                continue
            download = _Download(file, target, segment_size)
            meter.add(skipped=download.resume(), report=False)
            downloads.append(download)
        meter.report("transfer")
        fetcher = _Fetcher(http, meter, stop, retries)
        futures = [pool.submit(fetcher.fetch, download) for download in downloads]
        wait(futures, return_when=FIRST_EXCEPTION)
        if digests is not None:
            for download, future in zip(downloads, futures, strict=True):
                if future.done() and _error(future) is None:
                    _remember(digests, download.file, download.target)
        if any(_error(future) for future in futures):
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise _first_error(futures)
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for download in downloads:
            download.close()
    meter.report("done")
    return PullReport(downloaded=downloaded, skipped=skipped, bytes_downloaded=meter.moved_bytes)


class _Cancelled(Exception):
    """Another file failed for good: this one stops without recording anything more."""


def _error(future: Future[None]) -> BaseException | None:
    if not future.done() or future.cancelled():
        return None
    return future.exception()


def _first_error(futures: Sequence[Future[None]]) -> BaseException:
    """The error that stopped the pull, rather than one of the ``_Cancelled`` it caused
    (which can finish first: the failing thread raises the stop flag before its future
    holds the error)."""
    errors = [error for future in futures if (error := _error(future)) is not None]
    return next((error for error in errors if not isinstance(error, _Cancelled)), errors[0])


class _Retry(Exception):
    """A failure worth another attempt: a 5xx, a 429, or a body cut short."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Download:
    """One file on its way: its partial file, the sidecar, and its leading done segments.

    NOTE: a segment enters the sidecar only after its bytes were fdatasync'ed, so a
    sidecar never claims bytes a crash could lose. Bytes arrive in order, so the done
    segments are always the first ``done`` ones; a sidecar from an older client that
    lists others is taken up to its first gap.
    """

    def __init__(self, file: RemoteFile, target: Path, segment_size: int) -> None:
        self.file, self.target, self.segment_size = file, target, segment_size
        self.partial = target.with_name(f".{target.name}{_PARTIAL}")
        self.sidecar = target.with_name(f".{target.name}{_PARTIAL}.json")
        self.count = -(-file.size // segment_size)
        self.done = 0
        self.wants_direct = False  # whether the bytes still to come can go past the cache
        self.direct: bool | None = None  # whether they do; decided at the first write
        self._fd: int | None = None

    @property
    def done_bytes(self) -> int:
        return min(self.done * self.segment_size, self.file.size)

    def resume(self) -> int:
        """Take over the leading segments a previous run left on disk; their bytes.

        A sidecar for other bytes (another SHA-256, size or segment size), a torn one,
        or a partial file of the wrong length is discarded with its partial file.
        """
        try:
            state: Any = json.loads(self.sidecar.read_text())
            done = state["done"]
            valid = (
                state["sha256"] == self.file.sha256
                and state["size"] == self.file.size
                and state["segment_size"] == self.segment_size
                and isinstance(done, list)
                and all(type(i) is int and 0 <= i < self.count for i in done)
                and self.partial.stat().st_size == self.file.size
            )
        except (OSError, ValueError, TypeError, KeyError):
            valid = False
        if not valid:
            _remove_partial(self.target)
            return 0
        present = set(done)
        while self.done in present:
            self.done += 1
        return self.done_bytes

    def open(self) -> int:
        """The partial file, created at its full length if new."""
        if self._fd is None:
            fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o666)
            if os.fstat(fd).st_size != self.file.size:
                os.ftruncate(fd, self.file.size)
            self._fd = fd
        return self._fd

    def hash_done(self, digest: hashlib._Hash) -> None:
        """Feed the bytes of the done segments, read back from the partial file, to ``digest``."""
        position, end = 0, self.done_bytes
        if not end:
            return
        fd = self.open()
        read_sequentially(fd)
        while position < end:
            block = os.pread(fd, min(_BLOCK, end - position), position)
            if not block:
                raise IntegrityError(f"{self.file.path}: the partial file {self.partial} shrank")
            digest.update(block)
            position += len(block)
        drop_from_cache(fd, 0, end)

    def write(self, data: memoryview, position: int) -> None:
        """Write ``data`` at ``position``; past the page cache while both are aligned."""
        fd = self.open()
        if self.direct is None:
            self.direct = self.wants_direct and set_direct(fd, True)
        if self.direct and (position % ALIGNMENT or len(data) % ALIGNMENT):
            self.direct = set_direct(fd, False)  # the file's unaligned tail
        while data:
            written = os.pwrite(fd, data, position)
            if written <= 0:
                raise OSError(f"{self.partial} took no bytes")
            data, position = data[written:], position + written
            if data and self.direct and written % ALIGNMENT:
                self.direct = set_direct(fd, False)

    def record(self, end: int) -> None:
        """Sync the file and record in the sidecar the segments that end by byte ``end``."""
        done = self.count if end >= self.file.size else end // self.segment_size
        if done <= self.done:
            return
        fd = self.open()
        os.fdatasync(fd)
        first = self.done_bytes
        self.done = done
        temp = self.sidecar.with_name(f"{self.sidecar.name}.tmp")
        temp.write_text(
            json.dumps(
                {
                    "sha256": self.file.sha256,
                    "size": self.file.size,
                    "segment_size": self.segment_size,
                    "done": list(range(done)),
                }
            )
        )
        os.replace(temp, self.sidecar)
        if not self.direct:
            # What went through the cache is on disk now and nothing reads it again.
            drop_from_cache(fd, first, self.done_bytes - first)

    def finish(self, digest: hashlib._Hash) -> None:
        """Move the partial file onto the destination if its bytes are the announced ones.

        Raises:
            IntegrityError: They are not; the partial file and sidecar are removed.
        """
        fd = self.open()
        sha256 = digest.hexdigest()
        size = os.fstat(fd).st_size
        if size != self.file.size or not hmac.compare_digest(sha256, self.file.sha256):
            self.close()
            _remove_partial(self.target)
            raise IntegrityError(
                f"{self.file.path}: downloaded {size} bytes with SHA-256 {sha256}, expected"
                f" {self.file.size} bytes with {self.file.sha256}; the partial file was removed"
            )
        os.fsync(fd)
        self.close()
        os.replace(self.partial, self.target)
        self.sidecar.unlink(missing_ok=True)
        _fsync_directory(self.target.parent)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Landing:
    """Hashes and writes a file's bytes in order, in two threads of their own.

    The receiving thread fills page-aligned buffers and hands each one over when it is
    full or ends a segment; one thread hashes it, then the other writes it at its place
    (with ``O_DIRECT`` where it can) and records finished segments. SHA-256 and the writes
    leave the GIL, so receiving, hashing and writing overlap. Hashing and writing in one
    thread, a 1 GiB pull spent 2.0–2.2 s of its 2.3 s landing (the writes 0.7–1.0 s of
    it), at 470–480 MB/s. A file that fits in one buffer is landed by the receiving
    thread itself.
    """

    def __init__(self, download: _Download, digest: hashlib._Hash, stop: threading.Event) -> None:
        self.download, self.digest, self.stop = download, digest, stop
        remaining = download.file.size - download.done_bytes
        size = min(_BUFFER, -(-remaining // ALIGNMENT) * ALIGNMENT)
        count = _BUFFERS if remaining > size else 1
        self._buffers = [mmap.mmap(-1, size) for _ in range(count)]
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        for buffer in self._buffers:
            self._free.put(buffer)
        self._to_hash: queue.Queue[tuple[mmap.mmap, int, int] | None] = queue.Queue()
        self._to_write: queue.Queue[tuple[mmap.mmap, int, int] | None] = queue.Queue()
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []
        if count > 1:
            for stage in (self._hashing, self._writing):
                name = f"depot-pull{stage.__name__}-{download.file.path}"
                self._threads.append(threading.Thread(target=stage, name=name, daemon=True))
                self._threads[-1].start()

    def take(self) -> mmap.mmap:
        """An empty buffer, once one is free.

        Raises:
            _Cancelled: The pull is stopping.
            Exception: What stopped the landing (a full disk, say).
        """
        while True:
            if self._failure is not None:
                raise self._failure
            if self.stop.is_set():
                raise _Cancelled
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue

    def hand(self, buffer: mmap.mmap, filled: int, position: int) -> None:
        """Hash and write the first ``filled`` bytes of ``buffer``, which go at ``position``."""
        if not self._threads:
            self._hash(buffer, filled)
            self._write(buffer, filled, position)
            self._free.put(buffer)
        else:
            self._to_hash.put((buffer, filled, position))

    def close(self) -> None:
        """Wait for every buffer handed over to land, and let the buffers go.

        Raises:
            Exception: What stopped the landing.
        """
        try:
            if self._threads:
                self._to_hash.put(None)
                for thread in self._threads:
                    thread.join()
            if self._failure is not None:
                raise self._failure
        finally:
            for buffer in self._buffers:
                buffer.close()

    def _hashing(self) -> None:
        while (item := self._to_hash.get()) is not None:
            self._step(self._hash, item[:2])
            self._to_write.put(item)
        self._to_write.put(None)

    def _writing(self) -> None:
        while (item := self._to_write.get()) is not None:
            self._step(self._write, item)
            self._free.put(item[0])

    def _step(self, work: Callable[..., None], arguments: tuple[Any, ...]) -> None:
        # After a failure, or once the pull stops, buffers only pass through.
        if self._failure is None and not self.stop.is_set():
            try:
                work(*arguments)
            except BaseException as exc:  # handed to the receiving thread
                self._failure = exc

    def _hash(self, buffer: mmap.mmap, filled: int) -> None:
        with memoryview(buffer) as view, view[:filled] as data:
            self.digest.update(data)

    def _write(self, buffer: mmap.mmap, filled: int, position: int) -> None:
        with memoryview(buffer) as view, view[:filled] as data:
            self.download.write(data, position)
        self.download.record(position + filled)


class _Fetcher:
    """Downloads files with ``http``, retrying what is worth retrying."""

    def __init__(
        self, http: httpx.Client, meter: ProgressMeter, stop: threading.Event, retries: int
    ) -> None:
        self.http, self.meter, self.stop, self.retries = http, meter, stop, retries

    def fetch(self, download: _Download) -> None:
        """Download what ``download`` misses, verify the whole file and put it in place.

        Raises:
            ClientError: The server refused the request (4xx) or answered with another
                range than the one asked for.
            IntegrityError: The server sent more bytes than the file has, or the file
                does not verify.
            TransportError: The stream failed ``retries + 1`` times without a segment
                coming through.
        """
        try:
            digest = hashlib.sha256()
            download.hash_done(digest)
            position = download.done_bytes
            if position < download.file.size:
                download.wants_direct = position % ALIGNMENT == 0 and (
                    download.segment_size % ALIGNMENT == 0 or download.count == 1
                )
                landing = _Landing(download, digest, self.stop)
                try:
                    self._receive(download, landing, position)
                finally:
                    landing.close()
            download.finish(digest)
            self.meter.add(files=1)
        except _Cancelled:
            raise
        except BaseException:
            # The failing thread raises the flag itself: waiting for the main thread to
            # notice would let this worker take the next file and start it.
            self.stop.set()
            raise

    def _receive(self, download: _Download, landing: _Landing, position: int) -> None:
        """Receive bytes ``position``.. of the file into ``landing``'s buffers, in order."""
        file, size, segment = download.file, download.file.size, download.segment_size
        buffer, filled, start = landing.take(), 0, position
        failures, mark = 0, position  # failed attempts since the segment that held ``mark``
        last: Exception | None = None
        while position < size:
            if failures:
                if failures > self.retries:
                    status = last.status if isinstance(last, _Retry) else None
                    raise TransportError(
                        f"{file.path}: bytes {position}-{size - 1} failed {failures} times,"
                        f" last with {type(last).__name__}: {last}",
                        status=status,
                    ) from last
                if self.stop.wait(_BACKOFF * 2 ** (failures - 1)):
                    raise _Cancelled
            headers = {"Accept-Encoding": "identity"}
            if position:  # a whole file may go out by `sendfile`; a range never does
                headers["Range"] = f"bytes={position}-{size - 1}"
            counted = position
            try:
                with self.http.stream("GET", file.url, headers=headers) as response:
                    _check_response(response, file, position, size - 1)
                    body = BodyReader(response)
                    while position < size:
                        if self.stop.is_set():
                            raise _Cancelled
                        # A buffer ends where it is full or where a segment ends, so that
                        # each segment is recorded as soon as it is on disk.
                        room = min(len(buffer) - filled, segment - position % segment)
                        end = filled + min(room, size - position)
                        with memoryview(buffer) as view, view[filled:end] as window:
                            got = body.readinto(window)
                        if not got:
                            break
                        filled, position = filled + got, position + got
                        if got == room or position == size:
                            landing.hand(buffer, filled, start)
                            if position < size:
                                buffer = landing.take()
                            filled, start = 0, position
                        if position - counted >= _BLOCK:  # report about once per MiB
                            self.meter.add(moved=position - counted)
                            counted = position
                    if position == size and body.more():
                        raise IntegrityError(
                            f"{file.path}: the server sent more than the {size} bytes announced"
                        )
                if position < size:
                    raise _Retry(f"the response ended at byte {position} of {size}")
            except (httpx.TransportError, _Retry) as exc:
                last = exc
                if position // segment > mark // segment:
                    failures, mark = 0, position
                failures += 1
            finally:
                self.meter.add(moved=position - counted)


def _check_response(response: httpx.Response, file: RemoteFile, start: int, end: int) -> None:
    """Accept a 206 for exactly ``start``-``end``, or a 200 if that is the whole file.

    Raises:
        _Retry: A 5xx or a 429.
        ClientError: Any other status, or another range than the one asked for.
        IntegrityError: The server's file has another size than announced.
    """
    status = response.status_code
    if status == 206:
        header = response.headers.get("content-range", "")
        match = _CONTENT_RANGE.match(header)
        if match is None or int(match[1]) != start or int(match[2]) != end:
            raise ClientError(
                f"{file.path}: asked for bytes {start}-{end}, got Content-Range {header!r}",
                status=status,
            )
        if match[3] != "*" and int(match[3]) != file.size:
            raise IntegrityError(
                f"{file.path}: the server has {match[3]} bytes, {file.size} were announced",
                status=status,
            )
    elif status == 200:
        if start != 0 or end != file.size - 1:
            raise ClientError(
                f"{file.path}: asked for bytes {start}-{end}, the server sent the whole file",
                status=status,
            )
    elif status == 429 or status >= 500:
        raise _Retry(f"HTTP {status}", status)
    else:
        response.read()
        raise error_from_response(response)


def _targets(dest: Path, files: Sequence[RemoteFile]) -> list[Path]:
    """Where each file goes under ``dest``.

    Raises:
        ClientError: A path could land outside ``dest`` or clash with another, or a
            size or digest is malformed.
    """
    root = dest.resolve()
    seen: set[str] = set()
    directories: set[str] = set()
    targets = []
    for file in files:
        path = file.path
        parts = path.split("/")
        if (
            not path
            or "\\" in path
            or "\x00" in path
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise ClientError(
                f"refusing the file path {path!r}: it must be relative and '/'-separated,"
                " without empty, '.' or '..' parts or backslashes"
            )
        if _PARTIAL in parts[-1]:
            raise ClientError(f"refusing the file path {path!r}: {_PARTIAL} names are the pull's")
        if path in seen:
            raise ClientError(f"the file path {path!r} appears twice")
        if file.size < 0 or not _SHA256.match(file.sha256):
            raise ClientError(f"{path}: size {file.size} or SHA-256 {file.sha256!r} is malformed")
        seen.add(path)
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        target = dest.joinpath(*parts)
        # A symlinked directory inside dest must not lead the bytes elsewhere.
        if not target.parent.resolve().is_relative_to(root):
            raise ClientError(f"refusing the file path {path!r}: it leads outside {dest}")
        targets.append(target)
    if clash := seen & directories:
        raise ClientError(f"{sorted(clash)[0]!r} is both a file and a directory")
    return targets


def _check(
    file: RemoteFile, target: Path, meter: ProgressMeter, digests: DigestCache | None
) -> bool:
    """Whether ``target`` already holds the file's bytes (counted as done if so).

    Raises:
        ClientError: A directory is where the file goes.
    """
    try:
        info = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(info.st_mode):
        raise ClientError(f"{file.path}: {target} is a directory")
    if not stat.S_ISREG(info.st_mode) or info.st_size != file.size:
        return False
    cached = digests.lookup(target, info) if digests is not None else None
    if cached is None or not cached.trusted or cached.sha256 != file.sha256:
        started = time.time_ns()
        digest = hashlib.sha256()
        with target.open("rb", buffering=0) as source:
            read_sequentially(source.fileno())
            while block := source.read(_BLOCK):
                digest.update(block)
        if not hmac.compare_digest(digest.hexdigest(), file.sha256):
            return False
        if digests is not None and same_stat(target.stat(), info):
            digests.record(target, info, file.sha256, started)
    meter.add(skipped=file.size, files=1)
    return True


def _remember(digests: DigestCache, file: RemoteFile, target: Path) -> None:
    """Record the digest of a file just written (its bytes were checked as they came)."""
    with contextlib.suppress(OSError):  # gone already: nothing to remember
        digests.record(target, target.stat(), file.sha256, time.time_ns())


def _write_empty(file: RemoteFile, target: Path) -> None:
    """Create an empty file at ``target`` through a temporary name.

    Raises:
        IntegrityError: The announced SHA-256 is not that of empty content.
    """
    if file.sha256 != _EMPTY_SHA256:
        raise IntegrityError(f"{file.path}: size 0 was announced with SHA-256 {file.sha256}")
    partial = target.with_name(f".{target.name}{_PARTIAL}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, target)
    target.with_name(f"{partial.name}.json").unlink(missing_ok=True)
    _fsync_directory(target.parent)


def _remove_partial(target: Path) -> None:
    partial = target.with_name(f".{target.name}{_PARTIAL}")
    partial.unlink(missing_ok=True)
    partial.with_name(f"{partial.name}.json").unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory entry is.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
