"""Runs periodic background jobs in a thread of the server process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PeriodicJob", "JobRunner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A named function to call every ``interval`` seconds."""

    name: str
    interval: float
    run: Callable[[], object]


class JobRunner:
    """Calls each job on its interval until stopped. A failing job is logged and retried later."""

    def __init__(self, jobs: list[PeriodicJob]) -> None:
        self._jobs = jobs
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None and self._jobs:
            self._thread = threading.Thread(target=self._loop, name="depot-jobs", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run every job now rather than at its next tick (new work has arrived)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        due = {job.name: 0.0 for job in self._jobs}
        tick = min(job.interval for job in self._jobs)
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            now = time.monotonic()
            for job in self._jobs:
                if woken or now >= due[job.name]:
                    try:
                        job.run()
                    except Exception:
                        log.exception("background job %s failed", job.name)
                    due[job.name] = time.monotonic() + job.interval
            self._wake.wait(tick)
