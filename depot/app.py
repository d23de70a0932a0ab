"""The ASGI application: services built once from settings, and the HTTP surfaces over them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.routing import Mount

from depot import __version__
from depot.agents.indexer import index_pending, sweep_expired
from depot.api.agents_v1 import router as agents_router
from depot.api.errors import install_error_handlers
from depot.api.huggingface import PREFIX as HUGGINGFACE_PREFIX
from depot.api.huggingface import router as huggingface_router
from depot.api.ml_v1 import PREFIXES as ML_PREFIXES
from depot.api.ml_v1 import router as ml_router
from depot.api.model_repository_v1 import router as model_repository_router
from depot.api.native import router as native_router
from depot.api.routing import in_thread
from depot.jobs.gc import collect_garbage
from depot.jobs.runner import JobRunner, PeriodicJob
from depot.services import Services, build_services
from depot.settings import Settings
from depot.uploads.sweeper import sweep_uploads

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def background_jobs_of(services: Services) -> list[PeriodicJob]:
    """What `depot serve` does in the background: sweeps, indexing, garbage collection.

    Each job claims its rows through the database, so replicas running them at once
    never do the same work twice.
    """
    settings = services.settings
    grace = timedelta(seconds=settings.agent_expiry_grace_seconds)
    gc_grace = timedelta(seconds=settings.gc_grace_seconds)
    jobs = [
        PeriodicJob(
            "sweep-uploads",
            settings.sweep_interval_seconds,
            lambda: sweep_uploads(services.uploads),
        ),
        PeriodicJob(
            "index-agent-artifacts",
            settings.index_interval_seconds,
            lambda: index_pending(services.database, services.embedder),
        ),
        PeriodicJob(
            "sweep-agent-artifacts",
            settings.sweep_interval_seconds,
            lambda: sweep_expired(services.database, grace=grace),
        ),
    ]
    if settings.gc_interval_seconds:
        jobs.append(
            PeriodicJob(
                "collect-garbage",
                settings.gc_interval_seconds,
                lambda: collect_garbage(services.database, services.store, grace=gc_grace),
            )
        )
    return jobs


# NOTE: an endpoint reads the services from its request and is never a closure over them.
# FastAPI keeps each endpoint function it has seen in caches of its own (4,096 entries,
# for the life of the process), so a closure would keep every app built in one process
# alive with its services: in the test suite 12 MiB and 40k objects per test, 4 GiB in
# all, whose garbage collections stalled the live test servers for seconds.
@in_thread
def healthz(request: Request) -> dict[str, str]:
    """Ready means the metadata database answers; a load balancer can act on a 503."""
    services: Services = request.app.state.services
    with services.database.read() as db:
        db.execute(text("SELECT 1"))
    return {"status": "ok"}


def create_app(
    settings: Settings, *, services: Services | None = None, background_jobs: bool = True
) -> FastAPI:
    """Build the ASGI app.

    Args:
        settings: the one settings object.
        services: prebuilt services (tests pass their own); built from settings otherwise.
        background_jobs: run the sweepers and the indexer in this process.
    """
    owned = services is None
    svc = services or build_services(settings)
    runner = JobRunner(background_jobs_of(svc) if background_jobs else [])

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
    app.state.jobs = runner
    install_error_handlers(app)

    app.add_api_route("/healthz", healthz, include_in_schema=False)
    surfaces = [
        ("/api/v1", native_router),
        ("/api/v1.0", model_repository_router),
        *((prefix, ml_router) for prefix in ML_PREFIXES),
        ("/v1", agents_router),
        (HUGGINGFACE_PREFIX, huggingface_router),
    ]
    for prefix, router in surfaces:
        app.include_router(router, prefix=prefix)
    # NOTE: each surface is also mounted at its prefix, ahead of the included routes, and
    # requests reach it through the mount. FastAPI tries every route of the included routers
    # in turn (~3 us each, 156 of them: 0.5 ms before a Hugging Face route answers); a
    # mount tests its prefix first. The included routes stay for the OpenAPI document.
    app.router.routes[:0] = [Mount(prefix, app=router) for prefix, router in surfaces]
    return app
