"""The services of one Depot process, built once from settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from depot.access.cache import PrincipalCache
from depot.access.signing import Signer, load_signer
from depot.blobs import BlobStore, open_store
from depot.db.engine import Database, open_database
from depot.search.embedder import MiniLMEmbedder
from depot.settings import Settings
from depot.uploads.service import UploadService

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    """Everything a request handler or a command needs."""

    settings: Settings
    database: Database
    store: BlobStore
    uploads: UploadService
    embedder: MiniLMEmbedder = field(default_factory=MiniLMEmbedder)
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    _signer: Signer | None = field(default=None, repr=False)
    _signer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def signer(self, *, refresh: bool = False) -> Signer:
        """The URL signer over the database's keys, loaded once (again with ``refresh``)."""
        with self._signer_lock:
            if self._signer is None or refresh:
                with self.database.write() as db:
                    self._signer = load_signer(db)
            return self._signer

    def verify_signed(self, query: Mapping[str, str], method: str, resource: str) -> None:
        """Check a signed URL's query (``expires``, ``key``, ``signature``) for ``resource``.

        Raises:
            Forbidden: unsigned, tampered with or expired.
        """
        signer = self.signer()
        if not signer.knows(query.get("key")):
            signer = self.signer(refresh=True)  # another replica may have added a key
        signer.verify(
            method,
            resource,
            expires=query.get("expires"),
            key=query.get("key"),
            signature=query.get("signature"),
        )

    def close(self) -> None:
        """Release database connections."""
        self.database.dispose()


def build_services(settings: Settings, *, store: BlobStore | None = None) -> Services:
    """Open the database and the blob store that ``settings`` name."""
    database = open_database(settings.effective_database_url)
    blob_store = store or open_store(settings)
    return Services(
        settings=settings,
        database=database,
        store=blob_store,
        uploads=UploadService(database, blob_store, settings),
    )
