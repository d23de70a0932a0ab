"""The download engine of ``depot pull``, against a live server and a few fake ones."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

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

FILES = {
    "weights.bin": os.urandom(3 * MiB + 123),  # 13 segments
    "config/params.json": b'{"k": 1}',
    "data/deep/nested/table.csv": os.urandom(300_000),  # 2 segments
    "empty.txt": b"",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish(server_url: str, world: World, name: str, files: dict[str, bytes]) -> list[RemoteFile]:
    """Push ``files`` as a new version of artifact ``name`` and return them as the server
    lists them."""
    with httpx.Client(base_url=server_url, headers=world.auth("alice")) as http:
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
        return sorted(r for p, r in self.gets if p.endswith("/files/" + quote(path)))


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
    size = len(FILES["weights.bin"])
    assert recorder.ranges("weights.bin") == sorted(
        f"bytes={start}-{min(start + SEGMENT, size) - 1}" for start in range(0, size, SEGMENT)
    )
    assert recorder.ranges("data/deep/nested/table.csv") == [
        f"bytes=0-{SEGMENT - 1}",
        f"bytes={SEGMENT}-299999",
    ]
    assert recorder.ranges("empty.txt") == []
    assert len(recorder.gets) == 13 + 2 + 1

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
    assert len(events) > 13 + 2  # a report per block at least


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


def break_after(path: str, good: int) -> Flaky:
    """A transport whose GETs of ``path`` break once ``good`` of them got through."""
    seen = [0]

    def breaks(request: httpx.Request) -> Exception | None:
        if request.method != "GET" or not request.url.path.endswith("/" + path):
            return None
        seen[0] += 1
        return httpx.ConnectError("unplugged", request=request) if seen[0] > good else None

    return Flaky(breaks)


def interrupt(server_url: str, world: World, remote: list[RemoteFile], dest: Path) -> None:
    """A pull of ``remote`` that stops for good after 5 segments of weights.bin."""
    flaky = break_after("weights.bin", 5)
    with client(server_url, world, transport=flaky) as http, pytest.raises(TransportError):
        pull(http, remote, dest, workers=1, retries=0)


def test_an_interrupted_pull_resumes_with_the_segments_left(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    interrupt(server_url, world, remote, dest)
    partial, sidecar = partial_of(dest / "weights.bin")
    assert json.loads(sidecar.read_text()) == {
        "sha256": sha256(data),
        "size": len(data),
        "segment_size": SEGMENT,
        "done": [0, 1, 2, 3, 4],
    }
    assert partial.read_bytes()[: 5 * SEGMENT] == data[: 5 * SEGMENT]
    assert not (dest / "weights.bin").exists()

    recorder = Recorder()
    events: list[TransferProgress] = []
    with client(server_url, world, recorder) as http:
        report = pull(http, remote, dest, workers=3, progress=events.append)

    assert recorder.ranges("weights.bin") == sorted(
        f"bytes={start}-{min(start + SEGMENT, len(data)) - 1}"
        for start in range(5 * SEGMENT, len(data), SEGMENT)
    )
    assert report.downloaded == ["weights.bin"]
    assert report.bytes_downloaded == len(data) - 5 * SEGMENT
    transfer = next(event for event in events if event.phase == "transfer")
    assert transfer.done_bytes == transfer.skipped_bytes == 5 * SEGMENT
    assert (events[-1].done_bytes, events[-1].phase) == (len(data), "done")
    assert_pulled(dest, {"weights.bin": data})


def test_a_partial_left_for_other_bytes_is_discarded(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    interrupt(server_url, world, remote, dest)
    recorder = Recorder()
    with client(server_url, world, recorder) as http:
        pull(http, remote, dest, segment_size=SEGMENT * 2)  # another segment size
    assert len(recorder.ranges("weights.bin")) == 7
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

    with client(server_url, world) as http, pytest.raises(IntegrityError, match="weights.bin"):
        pull(http, remote, dest)
    assert not partial.exists() and not sidecar.exists()
    assert not (dest / "weights.bin").exists()

    with client(server_url, world) as http:
        report = pull(http, remote, dest)
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


def test_broken_connections_and_server_errors_are_retried_from_the_segment_start(
    server_url: str, world: World, dest: Path
) -> None:
    data = os.urandom(6 * MiB + 123)
    remote = publish(server_url, world, "model", {"weights.bin": data})
    segment = 2 * MiB  # the first segment's body is cut after 1.5 MiB
    attempts: dict[str | None, int] = {}

    def breaks(request: httpx.Request) -> Exception | httpx.Response | int | None:
        if request.method != "GET":
            return None
        span = request.headers.get("range")
        attempts[span] = attempts.get(span, 0) + 1
        if attempts[span] > 1:
            return None
        if span == f"bytes=0-{segment - 1}":
            return 3 * MiB // 2
        if span == f"bytes={segment}-{2 * segment - 1}":
            return httpx.Response(503, json={"detail": "busy"}, request=request)
        if span == f"bytes={2 * segment}-{3 * segment - 1}":
            return httpx.ReadTimeout("slow", request=request)
        return None

    events: list[TransferProgress] = []
    with client(server_url, world, transport=Flaky(breaks)) as http:
        report = pull(http, remote, dest, segment_size=segment, retries=1, progress=events.append)

    assert sorted(attempts.values()) == [1, 2, 2, 2]
    assert report.bytes_downloaded == len(data) + 3 * MiB // 2  # the cut 1.5 MiB came twice
    assert events[-1].done_bytes == events[-1].total_bytes == len(data)
    assert max(event.done_bytes for event in events) == len(data)
    assert_pulled(dest, {"weights.bin": data})


def test_a_segment_that_keeps_failing_stops_the_pull_and_keeps_the_partial(
    server_url: str, world: World, dest: Path
) -> None:
    data = FILES["weights.bin"]
    remote = publish(server_url, world, "model", {"weights.bin": data})
    bad = f"bytes={2 * SEGMENT}-{3 * SEGMENT - 1}"
    recorder = Recorder()

    def breaks(request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("range") == bad:
            return httpx.Response(502, text="bad gateway", request=request)
        return None

    http = client(server_url, world, recorder, Flaky(breaks))
    with http, pytest.raises(TransportError, match="weights.bin") as raised:
        pull(http, remote, dest, workers=1, retries=2)
    assert raised.value.status == 502
    # Three attempts at the bad segment; the segments after it were never started.
    assert [r for _, r in recorder.gets] == [
        f"bytes=0-{SEGMENT - 1}",
        f"bytes={SEGMENT}-{2 * SEGMENT - 1}",
        bad,
        bad,
        bad,
    ]
    partial, sidecar = partial_of(dest / "weights.bin")
    assert partial.exists() and json.loads(sidecar.read_text())["done"] == [0, 1]


def test_a_missing_file_raises_not_found_at_once(server_url: str, world: World, dest: Path) -> None:
    remote = publish(server_url, world, "model", {"a.bin": b"a"})
    gone = RemoteFile("gone.bin", 1, sha256(b"a"), remote[0].url.replace("a.bin", "gone.bin"))
    recorder = Recorder()
    with client(server_url, world, recorder) as http, pytest.raises(NotFoundError) as raised:
        pull(http, [gone], dest)
    assert raised.value.status == 404 and "gone.bin" in raised.value.message
    assert len(recorder.gets) == 1


# Fake servers, for what the real one does not do.


def fake(
    files: dict[str, bytes], *, ranges: bool = True, seen: list[httpx.Request] | None = None
) -> httpx.Client:
    """A client on a fake server holding ``files`` at ``/f/<path>``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if not ranges:
            return httpx.Response(200, content=files[request.url.path.removeprefix("/f/")])
        return serve(files, request)

    return httpx.Client(base_url="http://depot.test", transport=httpx.MockTransport(handle))


def serve(files: dict[str, bytes], request: httpx.Request) -> httpx.Response:
    """The answer to a GET of ``/f/<path>``, with or without a ``Range``."""
    data = files[request.url.path.removeprefix("/f/")]
    span = request.headers.get("range")
    if span is None:
        return httpx.Response(200, content=data)
    first, last = (int(n) for n in span.removeprefix("bytes=").split("-"))
    headers = {"content-range": f"bytes {first}-{last}/{len(data)}"}
    return httpx.Response(206, content=data[first : last + 1], headers=headers)


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
    small, large = b"s" * 1000, os.urandom(SEGMENT + 1)
    with fake({"small": small, "large": large}, ranges=False) as http:
        pull(http, [remote("small", small)], tmp_path)
        assert (tmp_path / "small").read_bytes() == small
        with pytest.raises(ClientError, match="whole file"):
            pull(http, [remote("large", large)], tmp_path)


def test_a_redirect_to_the_store_keeps_the_range_and_drops_the_token(tmp_path: Path) -> None:
    data = os.urandom(3 * SEGMENT)
    store: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "depot.test":
            return httpx.Response(307, headers={"location": "https://store.test/blob?sig=1"})
        store.append(request)
        first, last = (int(n) for n in request.headers["range"][6:].split("-"))
        headers = {"content-range": f"bytes {first}-{last}/{len(data)}"}
        return httpx.Response(206, content=data[first : last + 1], headers=headers)

    with httpx.Client(
        base_url="http://depot.test",
        headers={"Authorization": "Bearer secret"},
        follow_redirects=True,
        transport=httpx.MockTransport(handle),
    ) as http:
        pull(http, [remote("m.bin", data)], tmp_path)
    assert (tmp_path / "m.bin").read_bytes() == data
    assert len(store) == 3
    assert all("authorization" not in request.headers for request in store)


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


def test_a_refusal_while_other_segments_run_is_what_the_pull_raises(tmp_path: Path) -> None:
    data = os.urandom(16 * SEGMENT)
    refused = f"bytes={SEGMENT}-{2 * SEGMENT - 1}"
    files = {"m.bin": data}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers["range"] == refused:
            return httpx.Response(403, json={"detail": "not yours"})
        return serve(files, request)

    http = httpx.Client(base_url="http://depot.test", transport=httpx.MockTransport(handle))
    with http, pytest.raises(AuthError, match="not yours"):
        pull(http, [remote("m.bin", data)], tmp_path, workers=4)
    partial, sidecar = partial_of(tmp_path / "m.bin")
    done = json.loads(sidecar.read_text())["done"]
    assert 1 not in done and len(done) < 16
    for index in done:
        span = slice(index * SEGMENT, (index + 1) * SEGMENT)
        assert partial.read_bytes()[span] == data[span]


def test_a_directory_where_a_file_goes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.bin").mkdir()
    with fake({}) as http, pytest.raises(ClientError, match="is a directory"):
        pull(http, [remote("m.bin", b"x")], tmp_path)


def test_options_out_of_range_are_refused(tmp_path: Path) -> None:
    with fake({}) as http:
        for options in ({"workers": 0}, {"segment_size": 0}, {"retries": -1}):
            with pytest.raises(ValueError):
                pull(http, [], tmp_path, **options)


def test_a_segment_leaves_the_page_cache_once_it_is_recorded_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 * SEGMENT + 10)
    _partial, sidecar = partial_of(tmp_path / "m.bin")
    dropped: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_DONTNEED:
            recorded = json.loads(sidecar.read_text())["done"]
            assert offset // SEGMENT in recorded, "dropped before it was fdatasync'ed"
            dropped.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    with fake({"m.bin": data}) as http:
        pull(http, [remote("m.bin", data)], tmp_path, workers=3)
    assert sorted(dropped) == [(i * SEGMENT, SEGMENT) for i in range(5)] + [(5 * SEGMENT, 10)]
    assert_pulled(tmp_path, {"m.bin": data})


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
