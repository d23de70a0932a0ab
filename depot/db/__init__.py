"""Metadata database: declarative base, engine factory and migrations."""

from depot.db.base import Base, UTCDateTime, new_id, utcnow
from depot.db.engine import Database, open_database

__all__ = ["Base", "Database", "UTCDateTime", "new_id", "open_database", "utcnow"]
