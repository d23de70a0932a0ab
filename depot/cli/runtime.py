"""Opening the configured database for commands that run without a server."""

from __future__ import annotations

from depot.cli.options import fail
from depot.db.engine import Database, open_database
from depot.db.migrate import current_revision, head_revision, upgrade
from depot.settings import Settings

__all__ = ["open_current_database"]


def open_current_database(settings: Settings) -> Database:
    """The metadata database at the schema this code expects.

    An embedded SQLite database is migrated on the spot; PostgreSQL must be
    upgraded on purpose with `depot db upgrade` (replicas must not race to do it).
    """
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.effective_database_url)
    try:
        current = current_revision(database)
    except Exception as exc:  # the driver's own error: connection refused, bad URL, ...
        database.dispose()
        fail(f"cannot open the metadata database: {exc}")
    head = head_revision(database)
    if current != head:
        if settings.is_embedded_database:
            upgrade(database)
        else:
            database.dispose()
            fail(
                f"the database schema is at {current or 'nothing'}, this Depot needs {head}:"
                " run `depot db upgrade`"
            )
    return database
