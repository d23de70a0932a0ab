"""Alembic environment: runs migrations on the engine that depot.db.migrate hands over."""

from __future__ import annotations

from alembic import context

from depot.db.base import Base
from depot.db.migrate import import_models

import_models()
config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
