"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from depot.db.engine import Database

__all__ = ["current_revision", "head_revision", "import_models", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def import_models() -> None:
    """Import every module that defines tables, so ``Base.metadata`` knows them all."""
    import depot.access.models
    import depot.access.signing
    import depot.agents.models
    import depot.blobs.models
    import depot.catalog.models
    import depot.knowledge.models
    import depot.model_records.models
    import depot.search.models
    import depot.uploads.models  # noqa: F401


def _config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default)."""
    command.upgrade(_config(database), revision)


def head_revision(database: Database) -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(_config(database)).get_current_head()


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
