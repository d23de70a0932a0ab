"""Repos, revisions and file entries as the Hugging Face client sees them.

- A repo is an artifact: ``{space}/{artifact}`` within one org.
- A revision is ``main`` (the latest version), a version number, an alias, or the 40-hex
  commit id every version carries from its creation (``versions.commit_id``, unique and
  never reused). An artifact without a version still has a commit: a synthetic, empty one
  derived from the artifact's id, as a Hub repo always has an initial commit.
- Every file is reported as an LFS file: its ETag and LFS oid are its sha256, and its git
  blob id is that of its LFS pointer text, so the server never computes git sha1s of
  contents.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require
from depot.catalog import service as catalog
from depot.catalog.models import Artifact, File, Space, Version, VersionStatus
from depot.errors import NotFound, RepoNotFound, RevisionNotFound

__all__ = [
    "COMMIT_ID",
    "Repo",
    "Revision",
    "empty_commit_id",
    "files_at",
    "hub_time",
    "load_repo",
    "lfs_pointer",
    "resolve_revision",
]

COMMIT_ID = re.compile(r"[0-9a-f]{40}")
MAIN = "main"


@dataclass(frozen=True)
class Repo:
    """A repo the caller may act on: its space, its artifact and the caller's role."""

    org: str
    space: Space
    artifact: Artifact
    role: Role

    @property
    def repo_id(self) -> str:
        return f"{self.space.slug}/{self.artifact.name}"


@dataclass(frozen=True)
class Revision:
    """A resolved revision: the version (None for the empty initial commit) and its id."""

    version: Version | None
    commit_id: str


def load_repo(
    db: Session, principal: Principal, org: str, space: str, name: str, role: Role
) -> Repo:
    """The repo ``space/name`` of ``org`` if the caller holds ``role`` on it.

    Raises:
        RepoNotFound: no such org, space or artifact, or the caller may not see it.
        Forbidden: the caller sees it but holds a lesser role.
    """
    what = f"repository {space}/{name}"
    try:
        space_row = catalog.get_space(db, org, space)
        require(principal, space_row, Role.VIEWER, what=what)
        artifact = catalog.get_artifact(db, space_row, name)
    except NotFound:
        raise RepoNotFound(f"{what} not found") from None
    try:
        held = require(principal, space_row, role, artifact_id=artifact.id, what=what)
    except NotFound:
        raise RepoNotFound(f"{what} not found") from None
    return Repo(org, space_row, artifact, held)


def empty_commit_id(artifact: Artifact) -> str:
    """The commit id of a repo that has no version yet (stable, never a version's id)."""
    return hashlib.sha1(b"depot-empty-repo\0" + artifact.id.bytes).hexdigest()


def resolve_revision(db: Session, artifact: Artifact, revision: str | None) -> Revision:
    """Resolve ``main``, a version number, an alias or a commit id.

    Raises:
        RevisionNotFound: nothing matches; ``main`` of an empty repo is the empty commit.
    """
    rev = revision or MAIN
    ready = select(Version).where(
        Version.artifact_id == artifact.id, Version.status == VersionStatus.READY
    )
    if COMMIT_ID.fullmatch(rev):
        if rev == empty_commit_id(artifact):
            return Revision(None, rev)
        version = db.scalar(ready.where(Version.commit_id == rev))
        if version is not None:
            return Revision(version, version.commit_id)
    try:
        version = catalog.resolve_version(db, artifact, None if rev == MAIN else rev)
    except NotFound:
        if rev == MAIN:
            return Revision(None, empty_commit_id(artifact))
        raise RevisionNotFound(f"revision {rev} not found in {artifact.name}") from None
    return Revision(version, version.commit_id)


def files_at(db: Session, revision: Revision) -> list[File]:
    """The files of a revision, by path (none for the empty commit)."""
    if revision.version is None:
        return []
    return list(catalog.list_files(db, revision.version))


def lfs_pointer(sha256: str, size: int) -> tuple[str, int]:
    """The git blob id and the length of the LFS pointer text of a file.

    Returns:
        (sha1 of ``"blob <n>\\0" + pointer``, n), the ``oid``/``blobId`` and ``pointerSize``
        the Hub reports for an LFS file.
    """
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    data = pointer.encode()
    blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return blob_id, len(data)


def hub_time(moment: datetime | None) -> str | None:
    """A time as the client parses it: ISO 8601 in UTC with milliseconds and a final ``Z``."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"
