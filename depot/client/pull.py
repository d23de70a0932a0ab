"""The download engine of ``depot pull``: parallel byte ranges, resumable, verified as they land.

Every file is cut into segments of ``segment_size`` bytes and the segments of all files
share one pool of threads. Each segment is one ranged GET, written in place into a
partial file beside the destination, ``.<name>.depot-partial``; a sidecar,
``.<name>.depot-partial.json``, lists the segments whose bytes are on disk, so running
the same pull again fetches only the rest.

A file's SHA-256 advances over its leading run of finished segments as they finish,
reading them back from the partial file, so the digest is ready when the last byte
lands. Only bytes whose digest and size match what the server announced are moved onto
the destination, atomically; a destination that already holds them is left alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from depot.client.disk import drop_from_cache, read_sequentially
from depot.client.errors import ClientError, IntegrityError, TransportError, error_from_response
from depot.client.progress import ProgressCallback, ProgressMeter

__all__ = ["PullReport", "RemoteFile", "pull_files"]

_BLOCK = 1024 * 1024
_PARTIAL = ".depot-partial"
_BACKOFF = 0.5  # seconds before the first retry of a segment, doubled for each one after
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
        bytes_downloaded: Bytes received over the network in this run, including those
            of attempts that failed and were retried.
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
) -> PullReport:
    """Download ``files`` into the directory ``dest``, verifying every byte.

    Destinations that already hold a file's bytes (same size and SHA-256) are skipped.
    The other files are fetched as byte ranges of ``segment_size`` by ``workers``
    threads into partial files, resuming the segments an interrupted run left on disk,
    and each file replaces its destination only once its SHA-256 and size match.

    A segment that fails with a broken connection, a 5xx or a 429 is fetched again
    from its start after 0.5 s, 1 s, 2 s and so on, ``retries`` times at most. When a
    segment fails for good the pull stops: segments not started are cancelled, running
    ones stop at their next block, and the partial files stay for the next run.

    Args:
        http: The client for the server: its ``base_url``, an ``Authorization`` header,
            and ``follow_redirects=True`` so that a 307 to a pre-signed store URL is
            followed (httpx drops the header when the redirect leaves the origin).
        files: What to download, with the sizes and digests the server announced.
        dest: The directory the files' paths are relative to; created if missing.
        workers: How many segments are downloaded at once.
        segment_size: Bytes per ranged request, and the unit of resuming. A run
            resumes a partial file only if it uses the same segment size.
        progress: Called with a ``TransferProgress`` when hashing existing files starts,
            when the transfer starts, after every block of about 1 MiB and once at the
            end (phase ``"done"``); never from two threads at once.
        retries: How often a segment is retried before the pull gives up.

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
        TransportError: A segment still failed after ``retries`` retries.
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
        present = list(pool.map(lambda file, target: _check(file, target, meter), files, targets))
        for file, target, here in zip(files, targets, present, strict=True):
            if here:
                skipped.append(file.path)
                _remove_partial(target)
                continue
            downloaded.append(file.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.size == 0:
                _write_empty(file, target)
                meter.add(files=1, report=False)
                continue
            download = _Download(file, target, segment_size)
            meter.add(skipped=download.resume(), report=False)
            downloads.append(download)
        meter.report("transfer")
        fetcher = _Fetcher(http, meter, stop, retries)
        futures: list[Future[None]] = []
        for download in downloads:
            missing = [i for i in range(download.count) if i not in download.done]
            for index in missing:
                futures.append(pool.submit(fetcher.fetch, download, index))
            if not missing:  # a previous run got every segment but stopped before the end
                futures.append(pool.submit(fetcher.finish, download))
        wait(futures, return_when=FIRST_EXCEPTION)
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
    """Another segment failed for good: this one stops without recording anything."""


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
    """One file on its way: its partial file, the sidecar, and the digest so far.

    NOTE: a segment enters ``done`` (and the sidecar) only after its bytes were
    fdatasync'ed, so a sidecar never claims bytes a crash could lose. The digest covers
    segments ``[0, hashed)``; whichever thread holds ``_hashing`` advances it over the
    segments done since, and a thread that finds the lock taken leaves its segment to
    the holder, which looks again after letting go; no thread waits to hash.
    """

    def __init__(self, file: RemoteFile, target: Path, segment_size: int) -> None:
        self.file, self.target, self.segment_size = file, target, segment_size
        self.partial = target.with_name(f".{target.name}{_PARTIAL}")
        self.sidecar = target.with_name(f".{target.name}{_PARTIAL}.json")
        self.count = -(-file.size // segment_size)
        self.done: set[int] = set()
        self.hashed = 0
        self._digest = hashlib.sha256()
        self._finished = False
        self._fd: int | None = None
        self._state = threading.Lock()  # done, the sidecar, the file descriptor
        self._hashing = threading.Lock()

    def span(self, index: int) -> tuple[int, int]:
        """The first and last byte of segment ``index``."""
        start = index * self.segment_size
        return start, min(start + self.segment_size, self.file.size) - 1

    def resume(self) -> int:
        """Take over the segments a previous run left on disk, and return their bytes.

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
        self.done = set(done)
        return sum(end - start + 1 for start, end in map(self.span, self.done))

    def write(self, data: bytes, offset: int) -> None:
        fd = self._open()
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written

    def segment_done(self, index: int) -> bool:
        """Record segment ``index`` as on disk, then advance the digest.

        Returns:
            True if this call finished the file (verified and in place).

        Raises:
            IntegrityError: see ``advance``.
        """
        os.fdatasync(self._open())
        with self._state:
            self.done.add(index)
            temp = self.sidecar.with_name(f"{self.sidecar.name}.tmp")
            temp.write_text(
                json.dumps(
                    {
                        "sha256": self.file.sha256,
                        "size": self.file.size,
                        "segment_size": self.segment_size,
                        "done": sorted(self.done),
                    }
                )
            )
            os.replace(temp, self.sidecar)
        return self.advance()

    def advance(self) -> bool:
        """Hash the segments done since the last call and, after the last, finish the file.

        Returns:
            True if this call finished the file (verified and in place).

        Raises:
            IntegrityError: The bytes do not match the file's SHA-256 or size; the
                partial file and sidecar are removed.
        """
        while self._hashing.acquire(blocking=False):
            try:
                while self._ready():
                    self._hash(self.hashed)
                    self._drop_cached(self.hashed)
                    self.hashed += 1
                if self.hashed == self.count and not self._finished:
                    self._finished = True
                    self._finish()
                    return True
            finally:
                self._hashing.release()
            if not self._ready():
                return False
            # a segment finished while we held the lock and its thread left it to us
        return False

    def _ready(self) -> bool:
        with self._state:
            return self.hashed < self.count and self.hashed in self.done

    def _hash(self, index: int) -> None:
        fd = self._open()
        start, end = self.span(index)
        while start <= end:
            block = os.pread(fd, min(_BLOCK, end - start + 1), start)
            if not block:
                raise IntegrityError(f"{self.file.path}: the partial file {self.partial} shrank")
            self._digest.update(block)
            start += len(block)

    def _drop_cached(self, index: int) -> None:
        """Let the kernel reuse the page cache of a segment that is on disk and hashed.

        Why: nothing reads it again during the pull, and writing into pages just freed is
        much cheaper than into fresh ones: a VM backs a fresh page only when it is first
        touched. On the 2-core VM of docs/performance.md, 1 GiB written in 32 MiB segments,
        each fdatasync'ed, took 2.0 GB/s with the segments dropped and 0.4–0.55 GB/s
        without. A pull of a file larger than memory also no longer pushes out the
        cache of everything else.
        """
        start, end = self.span(index)
        drop_from_cache(self._open(), start, end - start + 1)

    def _finish(self) -> None:
        fd = self._open()
        digest = self._digest.hexdigest()
        size = os.fstat(fd).st_size
        if size != self.file.size or not hmac.compare_digest(digest, self.file.sha256):
            self.close()
            _remove_partial(self.target)
            raise IntegrityError(
                f"{self.file.path}: downloaded {size} bytes with SHA-256 {digest}, expected"
                f" {self.file.size} bytes with {self.file.sha256}; the partial file was removed"
            )
        os.fsync(fd)
        self.close()
        os.replace(self.partial, self.target)
        self.sidecar.unlink(missing_ok=True)
        _fsync_directory(self.target.parent)

    def _open(self) -> int:
        # Opened on first use and closed when the file is finished, so a pull of many
        # files holds only the descriptors of the files in flight.
        with self._state:
            if self._fd is None:
                fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o666)
                if os.fstat(fd).st_size != self.file.size:
                    os.ftruncate(fd, self.file.size)
                self._fd = fd
            return self._fd

    def close(self) -> None:
        with self._state:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class _Fetcher:
    """Downloads segments with ``http``, retrying what is worth retrying."""

    def __init__(
        self, http: httpx.Client, meter: ProgressMeter, stop: threading.Event, retries: int
    ) -> None:
        self.http, self.meter, self.stop, self.retries = http, meter, stop, retries

    def fetch(self, download: _Download, index: int) -> None:
        """Download segment ``index`` of ``download`` into its partial file.

        Raises:
            ClientError: The server refused the request (4xx) or answered the range
                with another one.
            IntegrityError: The server sent more bytes than the file has, or the file
                is finished and does not verify.
            TransportError: The segment failed ``retries + 1`` times.
        """
        start, end = download.span(index)
        last: Exception | None = None
        with self._stopping_all():
            for attempt in range(self.retries + 1):
                if attempt and self.stop.wait(_BACKOFF * 2 ** (attempt - 1)):
                    raise _Cancelled
                if self.stop.is_set():
                    raise _Cancelled
                try:
                    self._stream(download, start, end)
                except (httpx.TransportError, _Retry) as exc:
                    last = exc
                    continue
                if download.segment_done(index):
                    self.meter.add(files=1)
                return
            status = last.status if isinstance(last, _Retry) else None
            raise TransportError(
                f"{download.file.path}: bytes {start}-{end} failed {self.retries + 1} times,"
                f" last with {type(last).__name__}: {last}",
                status=status,
            ) from last

    def finish(self, download: _Download) -> None:
        """Verify and place a file whose segments are all on disk already.

        Raises:
            IntegrityError: The file does not verify.
        """
        with self._stopping_all():
            if download.advance():
                self.meter.add(files=1)

    @contextmanager
    def _stopping_all(self) -> Iterator[None]:
        # The failing thread raises the flag itself: waiting for the main thread to
        # notice would let this worker take the next segment and start it.
        try:
            yield
        except _Cancelled:
            raise
        except BaseException:
            self.stop.set()
            raise

    def _stream(self, download: _Download, start: int, end: int) -> None:
        """GET bytes ``start``-``end`` into the partial file."""
        written = counted = 0
        headers = {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}
        try:
            with self.http.stream("GET", download.file.url, headers=headers) as response:
                _check_response(response, download.file, start, end)
                # The pieces as they come off the socket (64 KiB): joining them into bigger
                # blocks first (iter_bytes(n)) costs more than half the throughput.
                for block in response.iter_bytes():
                    if self.stop.is_set():
                        raise _Cancelled
                    if written + len(block) > end - start + 1:
                        raise IntegrityError(
                            f"{download.file.path}: the server sent more than the"
                            f" {download.file.size} bytes announced"
                        )
                    download.write(block, start + written)
                    written += len(block)
                    if written - counted >= _BLOCK:  # report about once per MiB
                        self.meter.add(moved=written - counted)
                        counted = written
            self.meter.add(moved=written - counted)
            counted = written
            if written != end - start + 1:
                raise _Retry(f"the response ended after {written} of {end - start + 1} bytes")
        except (httpx.TransportError, _Retry):
            # The next attempt receives these bytes again: they are no longer done.
            self.meter.add(moved=written - counted, lost=written, report=False)
            raise


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


def _check(file: RemoteFile, target: Path, meter: ProgressMeter) -> bool:
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
    digest = hashlib.sha256()
    with target.open("rb", buffering=0) as source:
        read_sequentially(source.fileno())
        while block := source.read(_BLOCK):
            digest.update(block)
    if not hmac.compare_digest(digest.hexdigest(), file.sha256):
        return False
    meter.add(skipped=file.size, files=1)
    return True


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
