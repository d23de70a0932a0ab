"""Depot's Python client: ``from depot.client import Client``.

Only httpx and the standard library; see docs/client.md.
"""

from depot.client.client import Client, Pager
from depot.client.errors import (
    AuthError,
    ClientError,
    ConflictError,
    IntegrityError,
    InvalidError,
    NotFoundError,
    TransportError,
)
from depot.client.models import (
    ArtifactInfo,
    FileInfo,
    Identity,
    NewToken,
    OrgInfo,
    PullResult,
    PushResult,
    SpaceInfo,
    TokenInfo,
    VersionInfo,
)
from depot.client.progress import ProgressCallback, TransferProgress

__all__ = [
    "ArtifactInfo",
    "AuthError",
    "Client",
    "ClientError",
    "ConflictError",
    "FileInfo",
    "Identity",
    "IntegrityError",
    "InvalidError",
    "NewToken",
    "NotFoundError",
    "OrgInfo",
    "Pager",
    "ProgressCallback",
    "PullResult",
    "PushResult",
    "SpaceInfo",
    "TokenInfo",
    "TransferProgress",
    "TransportError",
    "VersionInfo",
]
