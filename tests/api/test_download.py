from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from depot.api.download import _parse_range, blob_response
from depot.blobs.direct import in_page_cache
from depot.blobs.local import LocalBlobStore
from depot.errors import NotFound, RangeNotSatisfiable
from depot.settings import MiB


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 5)),
        ("bytes=8-100", (8, 2)),
        ("bytes=-3", (7, 3)),
        ("bytes=-100", (0, 10)),
        ("bytes=5-3", None),  # invalid, so ignored: the whole blob
        ("bytes=0-1,4-5", None),  # several ranges: the whole blob
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_ranges_of_a_ten_byte_blob(header: str | None, expected: tuple[int, int] | None) -> None:
    assert _parse_range(header, 10) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-5", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        _parse_range(header, size)


@pytest.fixture
def served(tmp_path: Path) -> tuple[TestClient, LocalBlobStore, str, bytes]:
    """A bare app serving one 3 MiB blob of a local store through ``blob_response``."""
    store = LocalBlobStore(tmp_path / "store")
    data = os.urandom(3 * MiB + 5)
    sha256 = store.put([data]).sha256

    def blob(request: Request) -> Response:
        return blob_response(
            request,
            store,
            sha256=request.path_params["sha256"],
            size=len(data),
            file_name="w.bin",
            content_type="application/octet-stream",
        )

    app = Starlette(routes=[Route("/b/{sha256}", blob, methods=["GET", "HEAD"])])
    return TestClient(app), store, sha256, data


def _drop_from_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_a_blob_in_the_page_cache_and_one_not_come_out_the_same(
    served: tuple[TestClient, LocalBlobStore, str, bytes],
) -> None:
    client, store, sha256, data = served
    path = store.local_path(sha256)
    assert path is not None
    path.read_bytes()
    assert in_page_cache(path)
    cached = client.get(f"/b/{sha256}")
    _drop_from_cache(path)
    assert not in_page_cache(path)
    uncached = client.get(f"/b/{sha256}")
    for response in (cached, uncached):
        assert response.status_code == 200 and response.content == data
        assert response.headers["etag"] == f'"{sha256}"'
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-disposition"] == 'attachment; filename="w.bin"'
    assert not in_page_cache(path)  # streamed past the cache, not into it


def test_ranges_if_range_and_head(served: tuple[TestClient, LocalBlobStore, str, bytes]) -> None:
    client, _store, sha256, data = served
    part = client.get(f"/b/{sha256}", headers={"Range": f"bytes={MiB}-"})
    assert part.status_code == 206 and part.content == data[MiB:]
    assert part.headers["content-range"] == f"bytes {MiB}-{len(data) - 1}/{len(data)}"
    same = client.get(f"/b/{sha256}", headers={"Range": "bytes=0-9", "If-Range": f'"{sha256}"'})
    assert same.status_code == 206 and same.content == data[:10]
    other = client.get(f"/b/{sha256}", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert other.status_code == 200 and other.content == data
    head = client.head(f"/b/{sha256}", headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-length"] == "10"
    with pytest.raises(NotFound):
        client.get(f"/b/{'0' * 64}")
