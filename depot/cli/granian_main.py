"""The process `depot serve` becomes to run granian: a lean supervisor.

`depot serve` migrates, bootstraps and prints, with the whole CLI imported (~120 MiB).
It then replaces itself (``exec``) with ``python -m depot.cli.granian_main FD``, which
imports granian and nothing of Depot's app, reads the settings as JSON from the pipe
``FD`` (not argv, where secrets would show in ``ps``), and supervises the worker. Only the
worker builds the app. The supervisor stays at a few tens of MiB, which is most of what
keeps an idle server under its memory target.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from functools import partial
from typing import Any

__all__ = ["load_app", "main", "run"]


def _die_with_supervisor() -> None:
    """Have the kernel kill this worker if the supervisor dies first.

    A worker ignores SIGTERM (granian's supervisor runs the shutdown), so a supervisor
    killed abruptly, or a ``pkill`` that reached both, would leave it serving on alone.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the supervisor was gone before the line above
        os._exit(1)


def load_app(settings_json: str) -> Any:
    """Build the app in a worker from settings passed as JSON, not the environment."""
    _die_with_supervisor()
    from depot.app import create_app
    from depot.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    _freeze_what_was_built()
    return app


def _freeze_what_was_built() -> None:
    """Keep the objects of the built app out of the collector's full passes.

    Why: a full collection walks every tracked object, and the app's modules, routes and
    models are about 150,000 of them that live as long as the process. In the
    100k-model listing benchmark, the worker's two full collections took 80 and 112 ms,
    each stalling the request that triggered it; after ``gc.freeze()`` they took 6-8 ms.
    Garbage made before the freeze is collected first, so nothing frozen is garbage.
    """
    gc.collect()
    gc.freeze()


def run(settings_json: str) -> None:
    """Serve with granian: each worker builds the app from ``settings_json``."""
    from granian import Granian
    from granian.constants import Interfaces

    values = json.loads(settings_json)
    server = Granian(
        "depot",  # only names the process; the app comes from the loader below
        address=values["host"],
        port=values["port"],
        interface=Interfaces.ASGI,
        workers=values["workers"],
        log_access=False,
        log_level=values["log_level"],
    )
    # A partial of a module-level function survives whichever way granian starts workers.
    server.serve(target_loader=partial(load_app, settings_json), wrap_loader=False)


def main() -> None:
    fd = int(sys.argv[1])
    with os.fdopen(fd, "rb") as pipe:
        settings_json = pipe.read().decode()
    run(settings_json)


if __name__ == "__main__":
    main()
