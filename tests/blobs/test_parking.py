from __future__ import annotations

import os
from pathlib import Path

import pytest

from depot.blobs import layout, local, parking
from depot.blobs.direct import ALIGNMENT
from depot.blobs.local import LocalBlobStore
from depot.blobs.parking import Copy, ParkingLot
from tests.blobs.conformance import sha

UPLOAD = "6f1c3b5e-7d7f-4a77-9d3c-2b0f4a8c1e11"


def _park(lot: ParkingLot, blocks: list[bytes], index: int, etag: str) -> list[bytes]:
    copy = Copy(lot, blocks)
    passed = list(copy)
    copy.park(UPLOAD, index, etag)
    return passed


def _taken(lot: ParkingLot, index: int, etag: str, size: int) -> bytes | None:
    slot = lot.take(UPLOAD, index, etag, size)
    return None if slot is None else b"".join(lot.read(slot))


def test_a_parked_copy_is_read_once_and_its_slot_is_free_again(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=2, slot_size=1024)
    assert _park(lot, [b"abc", b"defg"], 1, "e1") == [b"abc", b"defg"]
    assert lot.parked() == 1
    assert _taken(lot, 1, "e1", 7) == b"abcdefg"
    assert lot.parked() == 0
    assert _taken(lot, 1, "e1", 7) is None  # taken already
    # The lot's file is unlinked: nothing of it is left in the directory.
    assert list(tmp_path.iterdir()) == []


def test_a_full_lot_waits_for_its_copies_and_then_evicts_stale_ones(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=2, slot_size=1024)
    now = [1000.0]
    lot.clock = lambda: now[0]
    for index in range(3):
        _park(lot, [bytes([65 + index]) * 10], index, f"e{index}")
    # The third found no slot: the two parked copies are about to be hashed.
    assert lot.parked() == 2
    assert _taken(lot, 2, "e2", 10) is None
    assert _taken(lot, 1, "e1", 10) == b"B" * 10
    # A copy nobody came for (its upload finished elsewhere) makes way once stale.
    _park(lot, [b"D" * 10], 3, "e3")
    now[0] += parking.STALE_AFTER + 1
    _park(lot, [b"E" * 10], 4, "e4")
    assert _taken(lot, 0, "e0", 10) is None
    assert _taken(lot, 3, "e3", 10) == b"D" * 10
    assert _taken(lot, 4, "e4", 10) == b"E" * 10


def test_a_part_larger_than_a_slot_passes_through_unparked(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=1, slot_size=8)
    assert _park(lot, [b"12345", b"67890", b"x"], 0, "e0") == [b"12345", b"67890", b"x"]
    assert lot.parked() == 0
    assert _park(lot, [b"small"], 1, "e1") == [b"small"]  # the slot was given back
    assert _taken(lot, 1, "e1", 5) == b"small"


def test_a_part_sent_again_replaces_its_copy(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=2, slot_size=1024)
    _park(lot, [b"old"], 3, "first")
    _park(lot, [b"new!"], 3, "second")
    assert lot.parked() == 1
    assert _taken(lot, 3, "first", 3) is None
    assert _taken(lot, 3, "second", 4) == b"new!"


def test_a_copy_of_another_size_is_not_answered(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=1, slot_size=1024)
    _park(lot, [b"abcd"], 0, "e0")
    assert _taken(lot, 0, "e0", 5) is None
    assert lot.parked() == 0
    assert _park(lot, [b"again"], 1, "e1") == [b"again"]  # and its slot is free
    assert lot.parked() == 1


def test_forgetting_an_upload_frees_its_copies_only(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=3, slot_size=1024)
    _park(lot, [b"mine"], 0, "e0")
    copy = Copy(lot, [b"theirs"])
    list(copy)
    lot.park(copy.slot, "another-upload", 0, "e0")  # type: ignore[arg-type]
    lot.forget(UPLOAD)
    assert lot.parked() == 1
    assert _taken(lot, 0, "e0", 4) is None
    slot = lot.take("another-upload", 0, "e0", 6)
    assert slot is not None and b"".join(lot.read(slot)) == b"theirs"


def test_a_discarded_copy_gives_its_slot_back(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path, slots=1, slot_size=1024)
    copy = Copy(lot, [b"half"])
    list(copy)
    copy.discard()
    assert lot.parked() == 0
    assert _park(lot, [b"next"], 0, "e0") == [b"next"]
    assert _taken(lot, 0, "e0", 4) == b"next"


def test_a_lot_that_cannot_open_its_file_passes_everything_through(tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path / "missing", slots=2, slot_size=1024)
    assert _park(lot, [b"abc"], 0, "e0") == [b"abc"]
    assert lot.parked() == 0
    assert lot.reserve() is None


def test_a_forked_child_never_reads_its_parent_s_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = ParkingLot(tmp_path, slots=2, slot_size=1024)
    _park(lot, [b"parent"], 0, "e0")
    parent = os.getpid()
    monkeypatch.setattr(parking.os, "getpid", lambda: parent + 1)
    assert _taken(lot, 0, "e0", 6) is None
    # The child parks into a file of its own.
    _park(lot, [b"child"], 1, "e1")
    assert _taken(lot, 1, "e1", 5) == b"child"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalBlobStore:
    monkeypatch.setattr(local, "PARK_FROM", 999)  # parts of a few pages count as large
    return LocalBlobStore(tmp_path)


def test_an_early_part_in_place_is_on_disk_and_hashed_from_its_copy(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    token = store.start_staging(UPLOAD)
    size = 4 * ALIGNMENT
    first, second, third = os.urandom(size), os.urandom(size), os.urandom(999)
    early = [
        store.write_part(UPLOAD, token, 1, [second], offset=size, read_back_soon=True, size=size),
        store.write_part(UPLOAD, token, 2, [third], offset=2 * size, read_back_soon=True, size=999),
    ]
    assert store._lot.parked() == 2
    # The upload's file holds the early parts already: a copy is only a cache.
    with open(tmp_path / layout.upload_data_key(UPLOAD), "rb") as data:
        data.seek(size)
        assert data.read() == second + third
    # Another process, say, parked part 2: it is read from the upload's file instead.
    store._lot.forget(UPLOAD)
    store._lot.park(store._lot.reserve(), UPLOAD, 1, early[0].etag)  # type: ignore[arg-type]
    assert store._lot.take(UPLOAD, 1, early[0].etag, size) is None  # an empty copy: refused
    assert b"".join(store.read_parts(UPLOAD, token, early)) == second + third
    part = store.write_part(UPLOAD, token, 1, [second], offset=size, read_back_soon=True, size=size)
    assert b"".join(store.read_parts(UPLOAD, token, [part])) == second
    assert store._lot.parked() == 0
    zero = store.write_part(UPLOAD, token, 0, [first], offset=0)
    info = store.commit_staging(UPLOAD, token, [zero, part, early[1]], sha(first + second + third))
    assert b"".join(store.open(info.sha256)) == first + second + third


def test_an_aborted_upload_leaves_no_copy_behind(store: LocalBlobStore) -> None:
    token = store.start_staging(UPLOAD)
    store.write_part(
        UPLOAD, token, 1, [b"x" * ALIGNMENT], offset=ALIGNMENT, read_back_soon=True, size=ALIGNMENT
    )
    assert store._lot.parked() == 1
    store.abort_staging(UPLOAD, token)
    assert store._lot.parked() == 0


@pytest.mark.parametrize("size", [None, 998, 2 * ALIGNMENT])
def test_a_part_of_unknown_size_or_too_small_or_large_to_park_goes_through_the_cache(
    store: LocalBlobStore, size: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store._lot, "slot_size", ALIGNMENT)
    # Not even begun: a part larger than a slot is not copied half-way and dropped.
    monkeypatch.setattr(store._lot, "reserve", lambda: pytest.fail("a slot was reserved"))
    token = store.start_staging(UPLOAD)
    data = os.urandom(size or 998)
    part = store.write_part(
        UPLOAD, token, 1, [data], offset=ALIGNMENT, read_back_soon=True, size=size
    )
    assert store._lot.parked() == 0
    assert b"".join(store.read_parts(UPLOAD, token, [part])) == data


def test_a_lot_whose_file_fails_turns_itself_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = ParkingLot(tmp_path, slots=2, slot_size=1024)

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parking.os, "pwrite", full)
    assert _park(lot, [b"abc", b"def"], 0, "e0") == [b"abc", b"def"]
    assert lot.parked() == 0
    assert lot.reserve() is None
