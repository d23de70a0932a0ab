from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from depot.db.base import Base
from depot.db.engine import Database
from depot.db.migrate import current_revision, head_revision
from depot.search.models import FULL_TEXT_OBJECTS


def test_the_database_is_at_head(database: Database) -> None:
    assert current_revision(database) == head_revision(database)


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, kind, reflected, other: (
                    not (name or "").startswith(FULL_TEXT_OBJECTS)
                ),
            },
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_sqlite_runs_in_wal_mode(database: Database) -> None:
    if not database.is_sqlite:
        return
    with database.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        mapped = connection.exec_driver_sql("PRAGMA mmap_size").scalar()
        cached = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    assert mode == "wal" and keys == 1
    # Reads go through a map of the file beside SQLite's default page cache.
    assert mapped == 256 * 1024 * 1024 and cached == -2000
