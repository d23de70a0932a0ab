"""Engine and session factory for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from depot.errors import Unavailable

__all__ = ["Database", "open_database"]


_MMAP_SIZE = 256 * 1024 * 1024  # bytes of the database file SQLite reads through a map


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so "begin" below decides the mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # Pages are read from a memory map of the file (the OS caches it anyway) and
        # SQLite keeps its default page cache (2 MiB a connection). Measured in process
        # (docs/performance.md): with a 64 MiB page cache instead, the listing of 100k
        # models with filters and q took p95 40 ms, with the default cache 31 ms but a
        # semantic query 3.5 ms more (p50 21 against 17.5); with the map, 32 and 17.4.
        cursor.execute(f"PRAGMA mmap_size={_MMAP_SIZE}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front: a deferred transaction that later writes
        # fails at once with "database is locked" instead of waiting its turn.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: a Core statement here costs more than the BEGIN itself,
        # once per transaction.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")


class Database:
    """The metadata database: one engine and the sessions made from it.

    ``write()`` opens a transaction that may write; ``read()`` one that only
    reads. On SQLite the difference is the lock taken at BEGIN; on PostgreSQL
    both are ordinary transactions.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        writer = engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else engine
        self._write_sessions = sessionmaker(bind=writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._scope(self._write_sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; anything it wrote is rolled back."""
        with self._scope(self._read_sessions, commit=False) as session:
            yield session

    @contextmanager
    def _scope(self, factory: sessionmaker[Session], commit: bool = True) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            if commit:
                session.commit()
        except OperationalError as exc:
            session.rollback()
            raise Unavailable(f"metadata database unavailable: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str, *, echo: bool = False) -> Database:
    """Create the engine for ``url``; for SQLite, create the file's directory too."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 48
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 30
        kwargs["pool_pre_ping"] = True
    engine = create_engine(parsed, **kwargs)
    # Every table's module, with the mapper events some of them register (a model artifact
    # gets its card on insert whichever surface creates it): none may be missing.
    from depot.db.tables import import_models

    import_models()
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return Database(engine)
