"""The ASGI application: services built once from settings, and the HTTP surfaces over them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from depot import __version__
from depot.api.errors import install_error_handlers
from depot.api.ml_v1 import PREFIXES as ML_PREFIXES
from depot.api.ml_v1 import router as ml_router
from depot.api.model_repository_v1 import router as model_repository_router
from depot.api.native import router as native_router
from depot.jobs.runner import JobRunner, PeriodicJob
from depot.services import Services, build_services
from depot.settings import Settings
from depot.uploads.sweeper import sweep_uploads

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, services: Services | None = None, background_jobs: bool = True
) -> FastAPI:
    """Build the ASGI app.

    Args:
        settings: the one settings object.
        services: prebuilt services (tests pass their own); built from settings otherwise.
        background_jobs: run the upload sweeper in this process.
    """
    owned = services is None
    svc = services or build_services(settings)
    runner = JobRunner(
        [
            PeriodicJob(
                "sweep-uploads", settings.sweep_interval_seconds, lambda: sweep_uploads(svc.uploads)
            ),
        ]
        if background_jobs
        else []
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            if owned:
                svc.close()

    app = FastAPI(
        title="Depot",
        version=__version__,
        description="Registry for ML models, agent skills and other artifacts.",
        lifespan=lifespan,
    )
    app.state.services = svc
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        # Ready means the metadata database answers; a load balancer can act on a 503.
        with svc.database.read() as db:
            db.execute(text("SELECT 1"))
        return {"status": "ok"}

    app.include_router(native_router, prefix="/api/v1")
    app.include_router(model_repository_router, prefix="/api/v1.0")
    for prefix in ML_PREFIXES:
        app.include_router(ml_router, prefix=prefix)
    return app
