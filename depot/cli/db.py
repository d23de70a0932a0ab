"""`depot db`: schema migrations."""

from __future__ import annotations

import typer

from depot.cli.options import DatabaseUrl, DataDir, console, fail, settings_from
from depot.db.engine import open_database
from depot.db.migrate import current_revision, head_revision, upgrade

__all__ = ["app"]

app = typer.Typer(help="Metadata database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Migrate the metadata database to the schema this Depot needs."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.effective_database_url)
    try:
        before = current_revision(database)
        upgrade(database)
        after = current_revision(database)
    except Exception as exc:
        fail(f"migration failed: {exc}")
    finally:
        database.dispose()
    if before == after:
        console.print(f"database already at {after}")
    else:
        console.print(f"database upgraded from {before or 'empty'} to {after}")


@app.command("current")
def current_command(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show the schema revision of the database and the one this Depot needs."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    database = open_database(settings.effective_database_url)
    try:
        current = current_revision(database)
        head = head_revision(database)
    except Exception as exc:
        fail(f"cannot read the database: {exc}")
    finally:
        database.dispose()
    state = "up to date" if current == head else "needs `depot db upgrade`"
    console.print(f"database at {current or 'empty'}, code at {head}: {state}")
