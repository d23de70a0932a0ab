"""Every module that defines tables, in one place.

Apart from ``depot.db.migrate`` on purpose: a server's worker needs every table's mapper
but never migrates (``depot serve`` does that before it starts), and Alembic would add
about 11 MiB to each worker's idle memory.
"""

from __future__ import annotations

__all__ = ["import_models"]


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
