"""The client's cache of file digests: the SHA-256 of local files it has read, by their stat.

Like git's index and DVC's state database, an entry is keyed by the file's path and holds
its device, inode, size and modification and change times as they were when its bytes were
read. A file whose stat still matches has the same bytes unless it was written within the
same clock tick as it was read, so an entry is trusted only if the file had not changed for
:data:`SETTLED_NS` before reading began (git calls the others "racily clean"); an untrusted
entry still says the file is probably unchanged, and a push reads it once more to be sure.

``depot push`` uses the cache to offer the digests of unchanged files without reading
them; ``depot pull`` records the files it writes or finds intact, so that pushing them
back sends nothing. The cache lives in one SQLite file, shared by every process of the
user; any trouble with it (a read-only home, a torn file) makes it forget, never fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SETTLED_NS", "CachedDigest", "DigestCache", "same_stat"]

# A file modified less than this before it was read may change again within the same
# timestamp (coarse kernel clocks tick every few milliseconds; some filesystems keep
# seconds), so its entry is not trusted on its own.
SETTLED_NS = 2_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    read_at_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CachedDigest:
    """A digest the cache holds for a file whose stat still matches.

    Attributes:
        sha256: The digest of the file's bytes when they were read.
        trusted: Whether the file had settled before it was read (see the module's
            docstring); if not, the bytes may have changed since without its stat showing it.
    """

    sha256: str
    trusted: bool


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def same_stat(before: os.stat_result, after: os.stat_result) -> bool:
    """Whether two stats of a path show the same file with the same bytes (as far as a
    stat can tell: reading it changes only its access time)."""
    return _stat_key(before) == _stat_key(after)


class DigestCache:
    """Digests of local files, kept in ``directory/digests.sqlite3``; safe across threads."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "digests.sqlite3"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except (OSError, sqlite3.OperationalError):
            self._db = None  # unwritable, or locked for too long: no cache this time
        except sqlite3.DatabaseError:
            self._forget_file()  # not a database (torn or foreign): start afresh

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
        try:
            # WAL with NORMAL: a commit does not wait for the disk, and a crash loses at
            # most the last entries, never the file.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _forget_file(self) -> None:
        """Start afresh without a cache file, or without a cache if that fails too."""
        self._db = None
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError:
                return
        try:
            self._db = self._open()
        except (OSError, sqlite3.DatabaseError):
            self._db = None

    def lookup(self, source: Path, st: os.stat_result) -> CachedDigest | None:
        """The digest recorded for ``source`` if its stat ``st`` is the one recorded."""
        key = str(source.resolve())
        with self._lock:
            if self._db is None:
                return None
            try:
                row = self._db.execute(
                    "SELECT device, inode, size, mtime_ns, ctime_ns, read_at_ns, sha256"
                    " FROM digests WHERE path = ?",
                    (key,),
                ).fetchone()
            except sqlite3.OperationalError:
                return None
            except sqlite3.DatabaseError:
                self._forget_file()
                return None
        if row is None or tuple(row[:5]) != _stat_key(st):
            return None
        settled = max(st.st_mtime_ns, st.st_ctime_ns) + SETTLED_NS <= row[5]
        return CachedDigest(str(row[6]), settled)

    def record(self, source: Path, st: os.stat_result, sha256: str, read_at_ns: int) -> None:
        """Remember that ``source``, with stat ``st``, held bytes of digest ``sha256``.

        Args:
            st: The file's stat after its bytes were read, equal to the one before.
            read_at_ns: ``time.time_ns()`` when reading began.
        """
        key = str(source.resolve())
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, *_stat_key(st), read_at_ns, sha256),
                )
            except sqlite3.OperationalError:
                pass  # locked by another process for too long: this entry is not kept
            except sqlite3.DatabaseError:
                self._forget_file()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
