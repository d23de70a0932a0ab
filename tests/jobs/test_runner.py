from __future__ import annotations

import threading

from depot.jobs.runner import JobRunner, PeriodicJob


def test_jobs_run_until_stopped_and_survive_failures() -> None:
    ran = threading.Event()
    calls: list[str] = []

    def flaky() -> None:
        calls.append("flaky")
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        ran.set()

    runner = JobRunner([PeriodicJob("flaky", 0.01, flaky)])
    runner.start()
    assert ran.wait(5)
    runner.stop()
    count = len(calls)
    assert count >= 2
    threading.Event().wait(0.05)
    assert len(calls) == count


def test_no_jobs_no_thread() -> None:
    runner = JobRunner([])
    runner.start()
    runner.stop()
