"""`depot gc`: delete blobs that no file references."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from depot.blobs import open_store
from depot.cli.options import DatabaseUrl, DataDir, StorageUrl, console, settings_from
from depot.cli.runtime import open_current_database
from depot.jobs.gc import collect_garbage

__all__ = ["gc"]


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be freed.")
    ] = False,
    grace: Annotated[
        int | None,
        typer.Option(
            "--grace",
            help="Spare blobs touched in the last N seconds"
            " [default: DEPOT_GC_GRACE_SECONDS or 3600]",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    storage_url: StorageUrl = None,
) -> None:
    """Delete blobs that no file references any more (older than the grace period)."""
    settings = settings_from(
        data_dir=data_dir,
        database_url=database_url,
        storage_url=storage_url,
        gc_grace_seconds=grace,
    )
    database = open_current_database(settings)
    try:
        report = collect_garbage(
            database,
            open_store(settings),
            grace=timedelta(seconds=settings.gc_grace_seconds),
            dry_run=dry_run,
        )
    finally:
        database.dispose()
    verb = "would free" if dry_run else "freed"
    count = report.blobs + report.orphans
    console.print(
        f"{verb} {_size(report.total_bytes)} ({report.total_bytes} bytes) in {count}"
        f" blob(s): {report.blobs} unreferenced, {report.orphans} unrecorded"
    )


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
