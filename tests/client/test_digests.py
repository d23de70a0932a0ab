from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from depot.client.digests import SETTLED_NS, DigestCache, same_stat

SHA = hashlib.sha256(b"hello").hexdigest()


def settled_time(st: os.stat_result) -> int:
    return max(st.st_mtime_ns, st.st_ctime_ns) + SETTLED_NS


def hello(tmp_path: Path) -> tuple[Path, os.stat_result]:
    """A file holding ``hello``, and its stat."""
    source = tmp_path / "f"
    source.write_bytes(b"hello")
    return source, source.stat()


def test_a_recorded_digest_is_found_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, st = hello(tmp_path)
    cache = DigestCache(tmp_path / "cache")
    assert cache.lookup(source, st) is None
    cache.record(source, st, SHA, settled_time(st))
    found = cache.lookup(source, source.stat())
    assert found is not None and found.sha256 == SHA and found.trusted
    cache.close()
    # Another process (a new cache object) sees it, by the file's absolute path.
    again = DigestCache(tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    assert again.lookup(Path("f"), source.stat()) == found
    again.close()


def test_a_changed_file_is_not_vouched_for(tmp_path: Path) -> None:
    source, st = hello(tmp_path)
    cache = DigestCache(tmp_path / "cache")
    cache.record(source, st, SHA, settled_time(st))
    source.write_bytes(b"jello")  # same size; the times move
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the mtime put back
    assert not same_stat(st, source.stat())
    assert cache.lookup(source, source.stat()) is None
    replaced = tmp_path / "g"
    replaced.write_bytes(b"hello")
    os.replace(replaced, source)  # another inode at the same path
    assert cache.lookup(source, source.stat()) is None


def test_a_file_read_right_after_it_was_written_is_not_trusted(tmp_path: Path) -> None:
    source, st = hello(tmp_path)
    cache = DigestCache(tmp_path / "cache")
    cache.record(source, st, SHA, settled_time(st) - 1)
    found = cache.lookup(source, st)
    assert found is not None and found.sha256 == SHA and not found.trusted


def test_a_torn_cache_file_is_started_afresh(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "digests.sqlite3").write_bytes(b"not a database" * 100)
    source, st = hello(tmp_path)
    cache = DigestCache(tmp_path / "cache")
    assert cache.lookup(source, st) is None
    cache.record(source, st, SHA, settled_time(st))
    assert cache.lookup(source, st) is not None


def test_an_unusable_cache_directory_means_no_cache_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    source, st = hello(tmp_path)
    cache = DigestCache(tmp_path / "file" / "cache")  # under a regular file
    cache.record(source, st, SHA, settled_time(st))
    assert cache.lookup(source, st) is None


def test_threads_record_at_once(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache")
    sources = []
    for index in range(40):
        (tmp_path / f"f{index}").write_bytes(bytes([index]))
        sources.append(tmp_path / f"f{index}")

    def record(source: Path) -> None:
        st = source.stat()
        cache.record(source, st, hashlib.sha256(source.read_bytes()).hexdigest(), 0)

    threads = [threading.Thread(target=record, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for source in sources:
        found = cache.lookup(source, source.stat())
        assert found is not None
        assert found.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
