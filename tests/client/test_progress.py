from __future__ import annotations

import threading

from depot.client.progress import ProgressMeter, TransferProgress


def test_the_meter_counts_from_many_threads_and_ends_at_the_total() -> None:
    seen: list[TransferProgress] = []
    meter = ProgressMeter(seen.append, total_bytes=4000, total_files=4)
    meter.report("transfer")

    def move() -> None:
        for _ in range(10):
            meter.add(moved=100)
        meter.add(files=1)

    threads = [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    meter.report("done")
    assert seen[-1] == TransferProgress(4000, 4000, 0, 4, 4, "done")
    assert [state.done_bytes for state in seen] == sorted(state.done_bytes for state in seen)


def test_bytes_of_a_failed_attempt_are_taken_back_and_skipped_ones_kept_apart() -> None:
    meter = ProgressMeter(None, total_bytes=300, total_files=2)
    meter.add(skipped=100, files=1)
    meter.add(moved=150)
    meter.add(moved=-150)  # the attempt failed: its bytes go again
    meter.add(moved=200, files=1)
    assert (meter.done_bytes, meter.skipped_bytes, meter.moved_bytes) == (300, 100, 200)
    meter.restart("transfer")
    assert (meter.done_bytes, meter.done_files, meter.phase) == (0, 0, "transfer")
