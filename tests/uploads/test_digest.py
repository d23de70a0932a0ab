from __future__ import annotations

import hashlib
import threading

from depot.uploads.digest import DigestTracker


def test_claims_advance_in_order() -> None:
    tracker = DigestTracker()
    assert tracker.claim("s", index=1) is None  # no state yet, and not at the start
    claim = tracker.claim("s", index=0)
    assert claim is not None and claim.next_index == 0
    assert tracker.claim("s", index=0) is None  # busy
    claim.hasher.update(b"abc")
    claim.hashed("etag-0")
    tracker.release(claim, keep=True)
    following = tracker.claim("s", index=1)
    assert following is not None and following.etags == ["etag-0"]
    assert following.hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    tracker.release(following, keep=False)


def test_a_claim_released_without_keep_changes_nothing() -> None:
    tracker = DigestTracker()
    claim = tracker.claim("s", index=0)
    assert claim is not None
    claim.hasher.update(b"junk")
    claim.hashed("x")
    tracker.release(claim, keep=False)
    again = tracker.claim("s")
    assert again is not None and again.next_index == 0
    assert again.hasher.hexdigest() == hashlib.sha256().hexdigest()


def test_matches_checks_recorded_etags() -> None:
    tracker = DigestTracker()
    claim = tracker.claim("s", index=0)
    assert claim is not None
    claim.hashed("a")
    claim.hashed("b")
    assert claim.matches(["a", "b", "c"])
    assert not claim.matches(["a", "B", "c"])
    assert not claim.matches(["a"])


def test_wait_for_a_busy_claim() -> None:
    tracker = DigestTracker()
    claim = tracker.claim("s", index=0)
    assert claim is not None
    timer = threading.Timer(0.05, tracker.release, args=(claim,), kwargs={"keep": True})
    timer.start()
    assert tracker.claim("s", wait=5) is not None
    timer.join()


def test_least_recently_used_states_are_dropped() -> None:
    tracker = DigestTracker(max_sessions=2)
    for name in ("a", "b", "c"):
        claim = tracker.claim(name, index=0)
        assert claim is not None
        tracker.release(claim, keep=True)
    assert tracker.claim("a") is None  # forgotten: nothing to continue from
    assert tracker.claim("c") is not None


def test_forget() -> None:
    tracker = DigestTracker()
    claim = tracker.claim("s", index=0)
    assert claim is not None
    tracker.forget("s")
    tracker.release(claim, keep=True)  # releasing a forgotten claim is harmless
    assert tracker.claim("s") is None


def test_a_refused_claim_asks_the_holder_to_look_again() -> None:
    tracker = DigestTracker()
    holder = tracker.claim("s", index=0)
    assert holder is not None
    assert tracker.claim("s") is None  # busy: the chunk just stored may need hashing
    assert tracker.release(holder, keep=True) is True
    again = tracker.claim("s")
    assert again is not None
    assert tracker.release(again, keep=True) is False
