"""Runs periodic background jobs in a thread of the server process."""

from __future__ import annotations

import logging
import threading
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
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None and self._jobs:
            self._thread = threading.Thread(target=self._loop, name="depot-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        due = {job.name: 0.0 for job in self._jobs}
        clock = 0.0
        tick = min(job.interval for job in self._jobs)
        while not self._stop.is_set():
            for job in self._jobs:
                if clock >= due[job.name]:
                    try:
                        job.run()
                    except Exception:
                        log.exception("background job %s failed", job.name)
                    due[job.name] = clock + job.interval
            if self._stop.wait(tick):
                break
            clock += tick
