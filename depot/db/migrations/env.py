"""Alembic environment: runs migrations on the engine that depot.db.migrate hands over."""

from __future__ import annotations

from alembic import context

from depot.db.base import Base
from depot.db.tables import import_models
from depot.search.models import FULL_TEXT_OBJECTS

import_models()
config = context.config
engine = config.attributes["engine"]


def include_object(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    """Leave out what migrations make by hand: full-text tables and columns."""
    return not (name or "").startswith(FULL_TEXT_OBJECTS)


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
