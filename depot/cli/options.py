"""Options shared by every command that opens the configured database and store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from depot.errors import DepotError, NotFound
from depot.settings import Settings, load_settings

__all__ = [
    "DataDir",
    "DatabaseUrl",
    "StorageUrl",
    "console",
    "err_console",
    "fail",
    "reporting_errors",
    "settings_from",
]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory [env: DEPOT_DATA_DIR; default ./depot-data]",
        show_default=False,
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Metadata database URL [env: DEPOT_DATABASE_URL]", show_default=False
    ),
]
StorageUrl = Annotated[
    str | None,
    typer.Option(
        "--storage-url", help="Blob store URL [env: DEPOT_STORAGE_URL]", show_default=False
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit with ``code``."""
    err_console.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def settings_from(**flags: object) -> Settings:
    """Settings from the given flags and the environment, or a clean exit on bad values."""
    try:
        return load_settings(**flags)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        fail(f"invalid settings: {problems}", 2)


# Exit codes: 1 for a failed operation, 2 for bad usage, 3 for "not found".
@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn Depot errors into a one-line message and a meaningful exit code."""
    try:
        yield
    except NotFound as exc:
        fail(exc.message, 3)
    except DepotError as exc:
        fail(exc.message, 1)
