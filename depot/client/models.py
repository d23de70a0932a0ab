"""What the client returns: plain frozen dataclasses built from the server's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ArtifactInfo",
    "FileInfo",
    "Identity",
    "NewToken",
    "OrgInfo",
    "PullResult",
    "PushResult",
    "SpaceInfo",
    "TokenInfo",
    "VersionInfo",
    "from_json",
]

T = TypeVar("T")


def from_json(cls: type[T], data: dict[str, Any], **extra: Any) -> T:
    """Build dataclass ``cls`` from the fields of ``data`` it knows (plus ``extra``)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known}, **extra)


@dataclass(frozen=True)
class Identity:
    username: str
    is_superuser: bool
    orgs: list[str]
    roles: list[dict[str, str]]


@dataclass(frozen=True)
class OrgInfo:
    slug: str
    name: str


@dataclass(frozen=True)
class SpaceInfo:
    org: str
    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class ArtifactInfo:
    org: str
    space: str
    name: str
    kind: str
    description: str = ""
    latest_version: int | None = None
    version_count: int = 0
    aliases: dict[str, int] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def ref(self) -> str:
        """``ORG/SPACE/NAME``."""
        return f"{self.org}/{self.space}/{self.name}"


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    sha256: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class VersionInfo:
    id: str
    number: int | None
    status: str
    org: str = ""
    space: str = ""
    name: str = ""
    kind: str = ""
    label: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    commit_id: str = ""
    created_at: str | None = None
    size: int | None = None
    files: list[FileInfo] | None = None

    @property
    def ref(self) -> str:
        """``ORG/SPACE/NAME:NUMBER``."""
        return f"{self.org}/{self.space}/{self.name}:{self.number}"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    token: str


@dataclass(frozen=True)
class PushResult:
    version: VersionInfo
    uploaded: list[str]
    present: list[str]
    bytes_sent: int
    resumed: bool


@dataclass(frozen=True)
class PullResult:
    version: VersionInfo
    dest: Path
    downloaded: list[str]
    skipped: list[str]
    bytes_downloaded: int
