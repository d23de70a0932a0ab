from __future__ import annotations

import pytest

from depot.blobs.memory import MemoryBlobStore
from tests.blobs.conformance import BlobStoreConformance


class TestMemoryBlobStore(BlobStoreConformance):
    @pytest.fixture
    def store(self) -> MemoryBlobStore:
        return MemoryBlobStore()
