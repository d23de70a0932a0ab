"""The download engine of ``depot pull``, against a live server and a few fake ones."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from depot.client import disk
from depot.client.errors import (
    AuthError,
    ClientError,
    IntegrityError,
    NotFoundError,
    TransportError,
)
from depot.client.progress import TransferProgress
from depot.client.pull import PullReport, RemoteFile, pull_files
from depot.settings import MiB
from tests.conftest import World

ML = "/api/v1/orgs/acme/spaces/ml/artifacts"
SEGMENT = 256 * 1024
# Requests to the live server wait this long: on a loaded 2-core CI machine a push's first
# request (S3 multipart starts, PostgreSQL commits) has been seen to take over httpx's 5 s
# default. A server that hangs still fails the test.
TIMEOUT = 60.0

FILES = {
    "weights.bin": os.urandom(3 * MiB + 123),  # 13 segments
    "config/params.json": b'{"k": 1}',
    "data/deep/nested/table.csv": os.urandom(300_000),  # 2 segments
    "empty.txt": b"",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rest(position: int, size: int) -> str | None:
    """The Range of a stream of a file of ``size`` bytes from byte ``position`` to its end:
    none from byte 0 (a plain GET of the whole file)."""
    return f"bytes={position}-{size - 1}" if position else None


def publish(server_url: str, world: World, name: str, files: dict[str, bytes]) -> list[RemoteFile]:
    """Push ``files`` as a new version of artifact ``name`` and return them as the server
    lists them."""
    with httpx.Client(base_url=server_url, headers=world.auth("alice"), timeout=TIMEOUT) as http:
        offered = [{"path": p, "size": len(d), "sha256": sha256(d)} for p, d in files.items()]
        begun = http.post(f"{ML}/{name}/pushes", json={"files": offered})
        assert begun.status_code == 201, begun.text
        for item in begun.json()["files"]:
            if item["status"] != "upload":
                continue
            upload, data = item["upload"], files[item["path"]]
            for index in upload["missing_chunks"]:
                start = index * upload["chunk_size"]
                sent = http.put(
                    f"/api/v1/uploads/{upload['id']}/chunks/{index}",
                    content=data[start : start + upload["chunk_size"]],
                )
                assert sent.status_code == 200, sent.text
            done = http.post(f"/api/v1/uploads/{upload['id']}/complete")
            assert done.status_code == 200, done.text
        final = http.post(f"/api/v1/pushes/{begun.json()['version_id']}/finalize", json={})
        assert final.status_code == 200, final.text
        detail = http.get(f"{ML}/{name}/versions/latest").json()
    number = detail["number"]
    return [
        RemoteFile(
            path=f["path"],
            size=f["size"],
            sha256=f["sha256"],
            url=f"{ML}/{name}/versions/{number}/files/{quote(f['path'])}",
        )
        for f in detail["files"]
    ]


class Recorder:
    """The GETs a client sends: (path of the URL, Range header)."""

    def __init__(self) -> None:
        self.gets: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> None:
        if request.method == "GET":
            with self._lock:
                self.gets.append((request.url.path, request.headers.get("range")))

    def ranges(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of ``path``, in the order they went out."""
        return [r for p, r in self.gets if p.endswith("/files/" + quote(path))]


class Flaky(httpx.BaseTransport):
    """The real transport, except for the requests ``breaks`` picks: those fail as
    ``breaks`` says (an exception to raise, a response to return, or a number of bytes
    after which the body is cut)."""

    def __init__(self, breaks: Callable[[httpx.Request], Exception | httpx.Response | int | None]):
        self.inner = httpx.HTTPTransport()
        self.breaks = breaks
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            failure = self.breaks(request)
        if isinstance(failure, Exception):
            raise failure
        if isinstance(failure, httpx.Response):
            return failure
        response = self.inner.handle_request(request)
        if failure is None:
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=CutStream(response.stream, failure),
            request=request,
        )

    def close(self) -> None:
        self.inner.close()


class CutStream(httpx.SyncByteStream):
    """A body that breaks after ``limit`` bytes, like a connection reset mid-transfer."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.inner:
            if sent + len(chunk) > self.limit:
                yield chunk[: self.limit - sent]
                raise httpx.ReadError("connection reset by peer")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


def client(
    server_url: str,
    world: World,
    recorder: Recorder | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    return httpx.Client(
        base_url=server_url,
        headers=world.auth("bob"),
        follow_redirects=True,
        event_hooks={"request": [recorder or Recorder()]},
        transport=transport,
        timeout=TIMEOUT,
    )


def pull(http: httpx.Client, files: list[RemoteFile], dest: Path, **options: Any) -> PullReport:
    options.setdefault("segment_size", SEGMENT)
    return pull_files(http, files, dest, **options)


def assert_pulled(dest: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        assert (dest / path).read_bytes() == data, path
    assert [p.name for p in dest.rglob("*depot-partial*")] == []


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """Where pulls go: apart from the server's data directory, which is in tmp_path too."""
    return tmp_path / "pulled"


def partial_of(target: Path) -> tuple[Path, Path]:
    partial = target.with_name(f".{target.name}.depot-partial")
    return partial, partial.with_name(partial.name + ".json")


def test_a_version_pulls_with_every_byte_equal(server_url: str, world: World, dest: Path) -> None:
    remote = publish(server_url, world, "model", FILES)
    recorder = Recorder()
    events: list[TransferProgress] = []
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest, workers=4, progress=events.append)

    assert_pulled(dest, FILES)
    assert sorted(report.downloaded) == sorted(FILES) and report.skipped == []
    total = sum(map(len, FILES.values()))
    assert report.bytes_downloaded == total
    # One stream per file, from its first byte: a plain GET, without a Range.
    for path in ("weights.bin", "config/params.json", "data/deep/nested/table.csv"):
        assert recorder.ranges(path) == [rest(0, len(FILES[path]))], path
    assert recorder.ranges("empty.txt") == []
    assert len(recorder.gets) == 3

    assert events[0].phase == "hash"
    assert "transfer" in {event.phase for event in events}
    assert events[-1] == TransferProgress(
        total_bytes=total,
        done_bytes=total,
        skipped_bytes=0,
        total_files=4,
        done_files=4,
        phase="done",
    )
    order = {"hash": 0, "transfer": 1, "done": 2}
    phases = [order[event.phase] for event in events]
    assert phases == sorted(phases) and phases.count(2) == 1
    done = [event.done_bytes for event in events]
    assert done == sorted(done)
    # A report per MiB received at least (the socket hands over 64 KiB at most at a time),
    # and one per finished file.
    assert max(after - before for before, after in pairwise(done)) <= MiB + 64 * 1024
    assert [event.done_files for event in events] == sorted(event.done_files for event in events)
    assert {event.done_files for event in events} == {0, 1, 2, 3, 4}


def test_a_second_pull_skips_everything(server_url: str, world: World, dest: Path) -> None:
    remote = publish(server_url, world, "model", FILES)
    with client(server_url, world) as http:
        pull(http, remote, dest)
    recorder = Recorder()
    events: list[TransferProgress] = []
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest, progress=events.append)

    assert recorder.gets == []
    assert report == PullReport(downloaded=[], skipped=[f.path for f in remote], bytes_downloaded=0)
    total = sum(map(len, FILES.values()))
    assert events[0].phase == "hash"
    assert (events[-1].done_bytes, events[-1].skipped_bytes) == (total, total)
    assert (events[-1].done_files, events[-1].phase) == (4, "done")
    assert_pulled(dest, FILES)


def test_files_changed_on_disk_are_downloaded_again(
    server_url: str, world: World, dest: Path
) -> None:
    remote = publish(server_url, world, "model", FILES)
    with client(server_url, world) as http:
        pull(http, remote, dest)
    weights = bytearray(FILES["weights.bin"])
    weights[SEGMENT + 7] ^= 0xFF  # same size, other bytes
    (dest / "weights.bin").write_bytes(weights)
    (dest / "data/deep/nested/table.csv").write_bytes(b"short")
    (dest / "config/params.json").unlink()

    recorder = Recorder()
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest)

    assert sorted(report.downloaded) == [
        "config/params.json",
        "data/deep/nested/table.csv",
        "weights.bin",
    ]
    assert report.skipped == ["empty.txt"]
    assert {path.rsplit("/files/", 1)[1] for path, _ in recorder.gets} == {
        "weights.bin",
        "config/params.json",
        "data/deep/nested/table.csv",
    }
    assert_pulled(dest, FILES)


CUT = 5 * SEGMENT + 1000  # where interrupt() breaks the stream of weights.bin


def cut_once(path: str, after: int) -> Flaky:
    """A transport that cuts the body of the first GET of ``path`` after ``after`` bytes."""
    seen = [0]

    def breaks(request: httpx.Request) -> int | None:
        if request.method != "GET" or not request.url.path.endswith("/" + path):
            return None
        seen[0] += 1
        return after if seen[0] == 1 else None

    return Flaky(breaks)


def interrupt(server_url: str, world: World, remote: list[RemoteFile], dest: Path) -> None:
    """A pull of ``remote`` whose stream of weights.bin breaks after 5 segments and 1000
    bytes, and that retries nothing."""
    recorder = Recorder()
    flaky = cut_once("weights.bin", CUT)
    with (
        client(server_url, world, recorder, flaky) as http,
        pytest.raises(TransportError, match="weights.bin") as raised,
    ):
        pull(http, remote, dest, workers=1, retries=0)
    assert raised.value.status is None  # a broken connection, no HTTP status
    # One stream from byte 0, not asked again.
    assert recorder.ranges("weights.bin") == [rest(0, len(FILES["weights.bin"]))]


def test_an_interrupted_pull_resumes_with_the_segments_left(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    interrupt(server_url, world, remote, dest)
    partial, sidecar = partial_of(dest / "weights.bin")
    # The whole segments before the cut are recorded; the 1000 bytes after them are not.
    assert json.loads(sidecar.read_text()) == {
        "sha256": sha256(data),
        "size": len(data),
        "segment_size": SEGMENT,
        "done": [0, 1, 2, 3, 4],
    }
    on_disk = partial.read_bytes()
    assert len(on_disk) == len(data) and on_disk[: 5 * SEGMENT] == data[: 5 * SEGMENT]
    assert not (dest / "weights.bin").exists()

    recorder = Recorder()
    events: list[TransferProgress] = []
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest, workers=3, progress=events.append)

    assert recorder.ranges("weights.bin") == [rest(5 * SEGMENT, len(data))]
    assert report.downloaded == ["weights.bin"]
    assert report.bytes_downloaded == len(data) - 5 * SEGMENT
    transfer = next(event for event in events if event.phase == "transfer")
    assert transfer.done_bytes == transfer.skipped_bytes == 5 * SEGMENT
    assert (events[-1].done_bytes, events[-1].skipped_bytes, events[-1].phase) == (
        len(data),
        5 * SEGMENT,
        "done",
    )
    assert_pulled(dest, {"weights.bin": data})


def test_a_partial_left_for_other_bytes_is_discarded(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    interrupt(server_url, world, remote, dest)
    recorder = Recorder()
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest, segment_size=SEGMENT * 2)  # another segment size
    assert recorder.ranges("weights.bin") == [rest(0, len(data))]  # from the first byte again
    assert report.bytes_downloaded == len(data)
    assert_pulled(dest, {"weights.bin": data})


def test_corrupt_bytes_in_a_finished_segment_fail_verification_then_a_rerun_succeeds(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    interrupt(server_url, world, remote, dest)
    partial, sidecar = partial_of(dest / "weights.bin")
    with partial.open("r+b") as file:
        file.seek(SEGMENT + 1000)
        file.write(b"rot")

    recorder = Recorder()
    with (
        client(server_url, world, recorder) as http,
        pytest.raises(IntegrityError, match="weights.bin"),
    ):
        pull(http, remote, dest)
    # The rest was fetched; the whole file failed its SHA-256 at the end.
    assert recorder.ranges("weights.bin") == [rest(5 * SEGMENT, len(data))]
    assert not partial.exists() and not sidecar.exists()
    assert not (dest / "weights.bin").exists()

    recorder = Recorder()
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest)
    assert recorder.ranges("weights.bin") == [rest(0, len(data))]
    assert report.bytes_downloaded == len(data)
    assert_pulled(dest, {"weights.bin": data})


def test_bytes_that_do_not_match_the_announced_digest_are_not_kept(
    server_url: str, world: World, dest: Path
) -> None:
    remote = publish(server_url, world, "model", {"a.bin": FILES["weights.bin"]})
    wrong = RemoteFile(remote[0].path, remote[0].size, sha256(b"something else"), remote[0].url)
    with client(server_url, world) as http, pytest.raises(IntegrityError, match="a.bin"):
        pull(http, [wrong], dest)
    assert list(dest.iterdir()) == []


def test_broken_connections_and_server_errors_are_retried_from_the_byte_reached(
    server_url: str, world: World, dest: Path
) -> None:
    data = os.urandom(6 * MiB + 123)
    remote = publish(server_url, world, "model", {"weights.bin": data})
    cut = 3 * MiB // 2  # inside the first segment of 2 MiB
    attempts: list[str | None] = []

    def breaks(request: httpx.Request) -> Exception | httpx.Response | int | None:
        if request.method != "GET":
            return None
        attempts.append(request.headers.get("range"))
        if len(attempts) == 1:
            return cut
        if len(attempts) == 2:
            return httpx.Response(503, json={"detail": "busy"}, request=request)
        if len(attempts) == 3:
            return httpx.ReadTimeout("slow", request=request)
        return None

    events: list[TransferProgress] = []
    with client(server_url, world, transport=Flaky(breaks)) as http:
        # Three failures without a segment boundary crossed: retries=3 is just enough.
        report = pull(http, remote, dest, segment_size=2 * MiB, retries=3, progress=events.append)

    again = rest(cut, len(data))
    assert attempts == [rest(0, len(data)), again, again, again]
    assert report.bytes_downloaded == len(data)  # the 1.5 MiB before the cut came once
    assert events[-1].done_bytes == events[-1].total_bytes == len(data)
    done = [event.done_bytes for event in events]
    assert done == sorted(done)  # nothing taken back
    assert_pulled(dest, {"weights.bin": data})


def test_failures_with_whole_segments_between_them_do_not_add_up(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]  # 12 segments and 123 bytes
    remote = publish(server_url, world, "model", {"weights.bin": data})
    cut = 4 * SEGMENT + 100
    recorder = Recorder()

    def breaks(request: httpx.Request) -> int | None:
        return cut if request.method == "GET" else None  # every body breaks after `cut` bytes

    with client(server_url, world, recorder, Flaky(breaks)) as http:
        report = pull(http, remote, dest, retries=1)

    # Each attempt brought 4 more segments, so each failure is the first in a row.
    assert recorder.ranges("weights.bin") == [
        rest(0, len(data)),
        rest(cut, len(data)),
        rest(2 * cut, len(data)),
    ]
    assert report.bytes_downloaded == len(data)
    assert_pulled(dest, {"weights.bin": data})


def test_a_stream_that_keeps_failing_without_progress_stops_the_pull_and_keeps_the_partial(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    cut = 2 * SEGMENT + 500
    recorder = Recorder()

    def breaks(request: httpx.Request) -> httpx.Response | int | None:
        if request.headers.get("range") == rest(0, len(data)):
            return cut  # the first stream breaks after 2 segments and 500 bytes
        return httpx.Response(502, text="bad gateway", request=request)

    http = client(server_url, world, recorder, Flaky(breaks))
    with http, pytest.raises(TransportError, match="weights.bin") as raised:
        pull(http, remote, dest, workers=1, retries=2)
    assert raised.value.status == 502
    # The broken stream, then two retries from the byte it reached, without a segment more.
    again = rest(cut, len(data))
    assert recorder.ranges("weights.bin") == [rest(0, len(data)), again, again]
    partial, sidecar = partial_of(dest / "weights.bin")
    assert json.loads(sidecar.read_text()) == {
        "sha256": sha256(data),
        "size": len(data),
        "segment_size": SEGMENT,
        "done": [0, 1],
    }
    assert partial.read_bytes()[: 2 * SEGMENT] == data[: 2 * SEGMENT]
    assert not (dest / "weights.bin").exists()

    # The next run takes up from the last whole segment.
    recorder = Recorder()
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest)
    assert recorder.ranges("weights.bin") == [rest(2 * SEGMENT, len(data))]
    assert report.bytes_downloaded == len(data) - 2 * SEGMENT
    assert_pulled(dest, {"weights.bin": data})


def test_a_missing_file_raises_not_found_at_once(server_url: str, world: World, dest: Path) -> None:
    remote = publish(server_url, world, "model", {"a.bin": b"a"})
    gone = RemoteFile("gone.bin", 1, sha256(b"a"), remote[0].url.replace("a.bin", "gone.bin"))
    recorder = Recorder()
    with client(server_url, world, recorder) as http, pytest.raises(NotFoundError) as raised:
        pull(http, [gone], dest)
    assert raised.value.status == 404 and "gone.bin" in raised.value.message
    assert len(recorder.gets) == 1


# Fake servers, for what the real one does not do.


PIECE = 64 * 1024


class Body(httpx.SyncByteStream):
    """A response body that comes in pieces of 64 KiB, as from a socket; ``before`` is
    called with each piece's offset in the body before it goes out.

    (A ``Response(content=...)`` is read at once, and then gives no raw stream.)
    """

    def __init__(self, data: bytes, before: Callable[[int], None] | None = None) -> None:
        self.data, self.before = data, before

    def __iter__(self) -> Iterator[bytes]:
        for offset in range(0, len(self.data), PIECE):
            if self.before is not None:
                self.before(offset)
            yield self.data[offset : offset + PIECE]


def whole(data: bytes, before: Callable[[int], None] | None = None) -> httpx.Response:
    """A 200 with all of ``data``."""
    return httpx.Response(
        200, headers={"content-length": str(len(data))}, stream=Body(data, before)
    )


def fake(
    files: dict[str, bytes], *, ranges: bool = True, seen: list[httpx.Request] | None = None
) -> httpx.Client:
    """A client on a fake server holding ``files`` at ``/f/<path>``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if not ranges:
            return whole(files[request.url.path.removeprefix("/f/")])
        return serve(files, request)

    return httpx.Client(base_url="http://depot.test", transport=httpx.MockTransport(handle))


def serve(
    files: dict[str, bytes],
    request: httpx.Request,
    before: Callable[[int], None] | None = None,
) -> httpx.Response:
    """The answer to a GET of ``/f/<path>``, with or without a ``Range``."""
    data = files[request.url.path.removeprefix("/f/")]
    span = request.headers.get("range")
    if span is None:
        return whole(data, before)
    first, last = (int(n) for n in span.removeprefix("bytes=").split("-"))
    headers = {
        "content-range": f"bytes {first}-{last}/{len(data)}",
        "content-length": str(last - first + 1),
    }
    return httpx.Response(206, headers=headers, stream=Body(data[first : last + 1], before))


def resumable(target: Path, data: bytes, done: list[int]) -> dict[str, Any]:
    """Leave the partial file and sidecar of a run that got segments ``done`` of ``data``
    (the other bytes are zeros); return the sidecar's contents."""
    partial, sidecar = partial_of(target)
    on_disk = bytearray(len(data))
    for index in done:
        span = slice(index * SEGMENT, (index + 1) * SEGMENT)
        on_disk[span] = data[span]
    partial.write_bytes(on_disk)
    state = {"sha256": sha256(data), "size": len(data), "segment_size": SEGMENT, "done": done}
    sidecar.write_text(json.dumps(state))
    return state


def remote(path: str, data: bytes) -> RemoteFile:
    return RemoteFile(path, len(data), sha256(data), f"/f/{path}")


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../outside", "a/../../outside", "a//b", "a/./b", "a\\..\\b", "", "a/"],
)
def test_unsafe_paths_are_refused_before_anything_is_written(path: str, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    with fake({path: b"x"}, seen=seen) as http, pytest.raises(ClientError, match="refusing"):
        pull(http, [remote("fine.txt", b"ok"), remote(path, b"x")], tmp_path / "dest")
    assert seen == []
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_out_of_the_destination_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "link").symlink_to(tmp_path / "elsewhere")
    with fake({"link/x": b"x"}) as http, pytest.raises(ClientError, match="outside"):
        pull(http, [remote("link/x", b"x")], tmp_path / "dest")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize(
    ("paths", "message"), [(["a", "a"], "twice"), (["a", "a/b"], "both a file and a directory")]
)
def test_paths_that_clash_are_refused(paths: list[str], message: str, tmp_path: Path) -> None:
    with fake({}) as http, pytest.raises(ClientError, match=message):
        pull(http, [remote(path, b"x") for path in paths], tmp_path)


def test_an_empty_file_is_created_without_a_request(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    with fake({}, seen=seen) as http:
        report = pull(http, [remote("sub/empty", b"")], tmp_path)
        assert (tmp_path / "sub" / "empty").read_bytes() == b""
        assert report.downloaded == ["sub/empty"]
        with pytest.raises(IntegrityError, match="lost"):
            pull(http, [RemoteFile("lost", 0, sha256(b"x"), "/f/lost")], tmp_path)
    assert seen == []
    assert not (tmp_path / "lost").exists()


def test_a_whole_file_answer_is_taken_only_for_a_request_of_the_whole_file(
    tmp_path: Path,
) -> None:
    small, large = b"s" * 1000, os.urandom(2 * SEGMENT + 1)
    seen: list[httpx.Request] = []
    with fake({"small": small, "large": large}, ranges=False, seen=seen) as http:
        # New files are asked for whole, without a Range: a server that ignores Range
        # serves them.
        report = pull(http, [remote("small", small), remote("large", large)], tmp_path / "new")
        assert report.bytes_downloaded == len(small) + len(large)
        assert_pulled(tmp_path / "new", {"small": small, "large": large})
        assert sorted((r.url.path, r.headers.get("range")) for r in seen) == [
            ("/f/large", rest(0, len(large))),
            ("/f/small", rest(0, len(small))),
        ]

        # A resumed file asks for its rest: the whole file in answer is refused, at once.
        seen.clear()
        state = resumable(tmp_path / "large", large, [0])
        with pytest.raises(ClientError, match="whole file"):
            pull(http, [remote("large", large)], tmp_path)
    assert [r.headers.get("range") for r in seen] == [rest(SEGMENT, len(large))]
    partial, sidecar = partial_of(tmp_path / "large")
    assert json.loads(sidecar.read_text()) == state  # kept for a server that honours Range
    assert partial.read_bytes()[:SEGMENT] == large[:SEGMENT]
    assert not (tmp_path / "large").exists()


def test_a_ranged_answer_to_a_plain_get_is_taken_only_if_it_holds_the_whole_file(
    tmp_path: Path,
) -> None:
    data = os.urandom(SEGMENT + 1)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        last = len(data) - 1 if request.url.path == "/f/whole" else 99
        headers = {"content-range": f"bytes 0-{last}/{len(data)}"}
        return httpx.Response(206, headers=headers, stream=Body(data[: last + 1]))

    with httpx.Client(base_url="http://depot.test", transport=httpx.MockTransport(handle)) as http:
        report = pull(http, [remote("whole", data)], tmp_path)
        with pytest.raises(ClientError, match=f"asked for bytes 0-{len(data) - 1}"):
            pull(http, [remote("part", data)], tmp_path)
    assert report.bytes_downloaded == len(data)
    assert [(r.url.path, r.headers.get("range")) for r in seen] == [
        ("/f/whole", rest(0, len(data))),
        ("/f/part", rest(0, len(data))),
    ]
    assert (tmp_path / "whole").read_bytes() == data
    assert not (tmp_path / "part").exists()
    assert not partial_of(tmp_path / "part")[1].exists()


def test_a_body_longer_than_the_file_is_refused_and_nothing_is_put_in_place(
    tmp_path: Path,
) -> None:
    data = os.urandom(SEGMENT + 100)
    with (
        fake({"long": data + b"tail"}, ranges=False) as http,
        pytest.raises(IntegrityError, match="more than the"),
    ):
        pull(http, [remote("long", data)], tmp_path)
    assert not (tmp_path / "long").exists()


def test_a_redirect_to_the_store_keeps_the_range_and_drops_the_token(tmp_path: Path) -> None:
    new, resumed = os.urandom(3 * SEGMENT), os.urandom(3 * SEGMENT)
    files = {"new.bin": new, "resumed.bin": resumed}
    depot: list[httpx.Request] = []
    store: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "depot.test":
            depot.append(request)
            location = f"https://store.test{request.url.path}?sig=1"
            return httpx.Response(307, headers={"location": location})
        store.append(request)
        return serve(files, request)

    resumable(tmp_path / "resumed.bin", resumed, [0])
    with httpx.Client(
        base_url="http://depot.test",
        headers={"Authorization": "Bearer secret"},
        follow_redirects=True,
        transport=httpx.MockTransport(handle),
    ) as http:
        report = pull(http, [remote(n, d) for n, d in files.items()], tmp_path, workers=2)
    assert_pulled(tmp_path, files)
    assert report.bytes_downloaded == 3 * SEGMENT + 2 * SEGMENT
    assert sorted((r.url.path, r.headers.get("range")) for r in depot) == [
        ("/f/new.bin", rest(0, 3 * SEGMENT)),
        ("/f/resumed.bin", rest(SEGMENT, 3 * SEGMENT)),
    ]
    assert all(r.headers["authorization"] == "Bearer secret" for r in depot)
    # One GET per file at the store, each with the Range of the request it follows.
    assert sorted((str(r.url), r.headers.get("range")) for r in store) == [
        ("https://store.test/f/new.bin?sig=1", rest(0, 3 * SEGMENT)),
        ("https://store.test/f/resumed.bin?sig=1", rest(SEGMENT, 3 * SEGMENT)),
    ]
    assert all("authorization" not in r.headers for r in store)


def test_a_partial_with_every_segment_done_is_finished_without_a_request(
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * SEGMENT)
    partial, sidecar = partial_of(tmp_path / "m.bin")
    partial.write_bytes(data)
    sidecar.write_text(
        json.dumps(
            {"sha256": sha256(data), "size": len(data), "segment_size": SEGMENT, "done": [2, 0, 1]}
        )
    )
    seen: list[httpx.Request] = []
    events: list[TransferProgress] = []
    with fake({"m.bin": data}, seen=seen) as http:
        report = pull(http, [remote("m.bin", data)], tmp_path, progress=events.append)
    assert seen == []
    assert report == PullReport(downloaded=["m.bin"], skipped=[], bytes_downloaded=0)
    assert (events[-1].done_bytes, events[-1].skipped_bytes) == (len(data), len(data))
    assert_pulled(tmp_path, {"m.bin": data})


def test_a_sidecar_with_gaps_is_taken_up_to_its_first_gap(tmp_path: Path) -> None:
    data = os.urandom(5 * SEGMENT + 10)
    # An older client fetched segments in parallel: 0, 1 and 3 made it, 2 did not.
    resumable(tmp_path / "m.bin", data, [3, 0, 1])
    seen: list[httpx.Request] = []
    events: list[TransferProgress] = []
    with fake({"m.bin": data}, seen=seen) as http:
        report = pull(http, [remote("m.bin", data)], tmp_path, progress=events.append)
    assert [r.headers.get("range") for r in seen] == [rest(2 * SEGMENT, len(data))]
    assert report == PullReport(
        downloaded=["m.bin"], skipped=[], bytes_downloaded=len(data) - 2 * SEGMENT
    )
    transfer = next(event for event in events if event.phase == "transfer")
    assert transfer.skipped_bytes == 2 * SEGMENT
    assert_pulled(tmp_path, {"m.bin": data})


def test_a_refusal_while_other_files_stream_is_what_the_pull_raises(tmp_path: Path) -> None:
    size = 40 * SEGMENT  # 10 MiB: more than a buffer, so the files land in threads of their own
    files = {name: os.urandom(size) for name in ("a.bin", "b.bin", "c.bin", "d.bin")}
    files |= {"e.bin": b"e" * 1000, "f.bin": b"f" * 1000}
    others = ("a.bin", "b.bin", "d.bin")
    requested: list[tuple[str, str | None]] = []
    sent = dict.fromkeys(others, 0)
    refused = threading.Event()

    def recorded(name: str) -> list[int]:
        try:
            done: list[int] = json.loads(partial_of(tmp_path / name)[1].read_text())["done"]
        except FileNotFoundError:
            return []
        return done

    def handle(request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/f/")
        requested.append((name, request.headers.get("range")))
        if name == "c.bin":
            # Refused once the others have two segments on disk and are streaming more.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(len(recorded(n)) < 2 for n in others):
                time.sleep(0.01)
            refused.set()
            return httpx.Response(403, json={"detail": "not yours"})

        def before(offset: int) -> None:
            if offset == 2 * SEGMENT:
                refused.wait(10)
            elif offset > 2 * SEGMENT:
                time.sleep(0.02)  # the rest would take 3 s
            sent[name] = offset + PIECE

        return serve(files, request, before)

    http = httpx.Client(base_url="http://depot.test", transport=httpx.MockTransport(handle))
    with http, pytest.raises(AuthError, match="not yours"):
        pull(http, [remote(n, d) for n, d in files.items()], tmp_path, workers=4)

    # Four files in flight, each as one stream; the two waiting for a worker never started.
    assert sorted(requested) == [(n, rest(0, size)) for n in ("a.bin", "b.bin", "c.bin", "d.bin")]
    for name in ("c.bin", "e.bin", "f.bin"):
        # Nothing arrived for them, so nothing of theirs is on disk, not even a partial file.
        assert not (tmp_path / name).exists() and recorded(name) == [], name
        assert not partial_of(tmp_path / name)[0].exists(), name
    for name in others:
        # Stopped mid-stream, with the segments it recorded on disk for the next run.
        assert sent[name] < size and not (tmp_path / name).exists(), name
        done = recorded(name)
        assert 2 <= len(done) < 40 and done == list(range(len(done))), (name, done)
        partial = partial_of(tmp_path / name)[0].read_bytes()
        assert partial[: len(done) * SEGMENT] == files[name][: len(done) * SEGMENT], name


def test_a_directory_where_a_file_goes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.bin").mkdir()
    with fake({}) as http, pytest.raises(ClientError, match="is a directory"):
        pull(http, [remote("m.bin", b"x")], tmp_path)


def test_options_out_of_range_are_refused(tmp_path: Path) -> None:
    with fake({}) as http:
        for options in ({"workers": 0}, {"segment_size": 0}, {"retries": -1}):
            with pytest.raises(ValueError):
                pull(http, [], tmp_path, **options)


def test_bytes_written_through_the_page_cache_leave_it_once_recorded_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 * SEGMENT + 10)
    _partial, sidecar = partial_of(tmp_path / "m.bin")
    log: list[tuple[Any, ...]] = []
    advise, sync = os.posix_fadvise, os.fdatasync

    def spy_advise(fd: int, offset: int, length: int, advice: int) -> None:
        # (A length of 0 means "to the end of the file": only the drops of written ranges
        # are followed here.)
        if advice == os.POSIX_FADV_DONTNEED and length > 0:
            log.append(("drop", offset, length, json.loads(sidecar.read_text())["done"]))
        advise(fd, offset, length, advice)

    def spy_sync(fd: int) -> None:
        log.append(("sync",))
        sync(fd)

    # As on a filesystem that refuses O_DIRECT: the writes go through the page cache.
    monkeypatch.setattr("depot.client.pull.set_direct", lambda fd, direct: False)
    monkeypatch.setattr(os, "posix_fadvise", spy_advise)
    monkeypatch.setattr(os, "fdatasync", spy_sync)
    with fake({"m.bin": data}) as http:
        pull(http, [remote("m.bin", data)], tmp_path, workers=3)

    # Each segment: synced, recorded in the sidecar, then dropped from the cache.
    segments = [(i * SEGMENT, SEGMENT) for i in range(5)] + [(5 * SEGMENT, 10)]
    assert log == [
        entry
        for index, (offset, length) in enumerate(segments)
        for entry in [("sync",), ("drop", offset, length, list(range(index + 1)))]
    ]
    assert_pulled(tmp_path, {"m.bin": data})


def test_a_partial_file_is_written_past_the_page_cache_where_the_filesystem_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = os.open(tmp_path / "probe", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        supported = disk.set_direct(fd, True)
    finally:
        os.close(fd)
    data = os.urandom(5 * SEGMENT + 10)
    partial, _sidecar = partial_of(tmp_path / "m.bin")
    switched: list[tuple[bool, bool]] = []
    writes: list[tuple[int, int, bool]] = []
    dropped: list[tuple[int, int]] = []
    advise, pwrite = os.posix_fadvise, os.pwrite

    def spy_set_direct(fd: int, direct: bool) -> bool:
        assert os.fstat(fd).st_ino == partial.stat().st_ino
        on = disk.set_direct(fd, direct)
        switched.append((direct, on))
        return on

    def spy_pwrite(fd: int, data: Any, offset: int) -> int:
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        writes.append((offset, len(data), direct))
        return pwrite(fd, data, offset)

    def spy_advise(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_DONTNEED and length > 0:
            dropped.append((offset, length))
        advise(fd, offset, length, advice)

    monkeypatch.setattr("depot.client.pull.set_direct", spy_set_direct)
    monkeypatch.setattr(os, "pwrite", spy_pwrite)
    monkeypatch.setattr(os, "posix_fadvise", spy_advise)
    with fake({"m.bin": data}) as http:
        pull(http, [remote("m.bin", data)], tmp_path)
    assert_pulled(tmp_path, {"m.bin": data})

    segments = [(i * SEGMENT, SEGMENT) for i in range(5)]
    tail = (5 * SEGMENT, 10)
    if supported:
        # Whole segments go past the cache; the unaligned tail cannot, so the flag goes
        # off for it, and the tail leaves the cache once recorded.
        assert switched == [(True, True), (False, False)]
        assert writes == [(*segment, True) for segment in segments] + [(*tail, False)]
        assert dropped == [tail]
    else:
        # Refused: every segment went through the cache and left it once recorded.
        assert switched == [(True, False)]
        assert writes == [(*segment, False) for segment in [*segments, tail]]
        assert dropped == [*segments, tail]


def test_a_file_already_in_place_is_hashed_with_a_sequential_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * SEGMENT)
    (tmp_path / "m.bin").write_bytes(data)
    advice: list[int] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, kind: int) -> None:
        advice.append(kind)
        real(fd, offset, length, kind)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    seen: list[httpx.Request] = []
    with fake({"m.bin": data}, seen=seen) as http:
        report = pull(http, [remote("m.bin", data)], tmp_path)
    assert report.skipped == ["m.bin"] and seen == []
    assert advice == [os.POSIX_FADV_SEQUENTIAL]
