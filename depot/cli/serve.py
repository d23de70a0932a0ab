"""`depot serve`: migrate an embedded database, bootstrap the admin, run the server."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from depot.access.bootstrap import ADMIN_TOKEN_FILE, ensure_admin
from depot.app import create_app
from depot.blobs import open_store
from depot.cli.options import DatabaseUrl, DataDir, StorageUrl, console, fail, settings_from
from depot.cli.runtime import open_current_database
from depot.settings import Settings

__all__ = ["serve"]


def serve(
    data_dir: DataDir = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Listen address [env: DEPOT_HOST; default 127.0.0.1]", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="Listen port [env: DEPOT_PORT; default 8000]", show_default=False
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    storage_url: StorageUrl = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="granian or uvicorn [env: DEPOT_SERVER; default granian]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes, granian only [env: DEPOT_WORKERS; default 1]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the Depot server.

    On an empty data directory this creates the database and an `admin`
    superuser, prints its token once and writes it to DATA_DIR/admin.token.
    """
    settings = settings_from(
        data_dir=data_dir,
        host=host,
        port=port,
        database_url=database_url,
        storage_url=storage_url,
        server=server,
        workers=workers,
    )
    if settings.server == "uvicorn" and settings.workers > 1:
        fail("--workers above 1 needs the granian server", 2)
    try:
        open_store(settings)
    except ValueError as exc:
        fail(str(exc), 2)
    database = open_current_database(settings)
    try:
        token = ensure_admin(database, settings.resolved_data_dir)
    finally:
        database.dispose()
    _announce(settings, token)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if settings.server == "uvicorn":
        _run_uvicorn(settings)
    else:
        _run_granian(settings)


def _announce(settings: Settings, token: str | None) -> None:
    console.print(f"Depot serving at {settings.effective_public_url}", markup=False)
    console.print(f"data directory: {settings.resolved_data_dir}", markup=False)
    if token is not None:
        console.print(
            f"admin token (shown once; also in {settings.resolved_data_dir / ADMIN_TOKEN_FILE}):",
            markup=False,
        )
        console.print(token, markup=False)
    else:
        console.print(
            f"admin token: see {settings.resolved_data_dir / ADMIN_TOKEN_FILE}", markup=False
        )


def _run_granian(settings: Settings) -> None:
    """Become the lean granian supervisor (see depot.cli.granian_main)."""
    settings_json = settings.model_dump_json().encode()
    read_end, write_end = os.pipe()
    os.write(write_end, settings_json)  # settings are a few KiB: far below a pipe's buffer
    os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    # glibc gives each thread that allocates its own malloc arena and keeps what they
    # held; two arenas keep a worker's memory after large uploads near its idle size.
    env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
    os.execve(sys.executable, [sys.executable, "-m", "depot.cli.granian_main", str(read_end)], env)


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
