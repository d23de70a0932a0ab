"""Pushing a new version: announce the files, send only what the server lacks, finalize.

1. :func:`begin_push` makes a staged version and, for every file, either links a blob
   the caller can already write elsewhere (no bytes sent) or opens an upload session.
2. The client sends chunks to those sessions, in parallel, resumably; completing a
   session links its file into the version (:func:`link_completed_upload`).
3. :func:`finalize_push` checks every file is there and gives the version its number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require, role_on_space, visible_spaces
from depot.blobs.models import Blob
from depot.blobs.store import check_sha256
from depot.catalog.models import Artifact, ArtifactKind, File, Space, Version, VersionStatus
from depot.catalog.service import (
    add_file,
    check_path,
    create_artifact,
    create_version,
    finalize_version,
    set_alias,
)
from depot.db.engine import Database
from depot.errors import Conflict, Invalid, NotFound
from depot.uploads.models import UploadStatus
from depot.uploads.schemas import UploadView
from depot.uploads.service import UploadService

__all__ = [
    "SURFACE",
    "FileOffer",
    "PushFile",
    "begin_push",
    "complete_upload",
    "finalize_push",
    "link_completed_upload",
    "push_files",
]

# Marks upload sessions opened for a push.
SURFACE = "push"


@dataclass(frozen=True)
class FileOffer:
    """A file the client means to push: where it goes, how big, what digest if known.

    Without a digest the file is always sent, and its upload completes only once given one.
    """

    path: str
    size: int
    sha256: str | None
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class PushFile:
    """What the server wants for one file: nothing (``present``), or its upload."""

    path: str
    size: int
    sha256: str | None
    upload: UploadView | None


def _writable_blob(db: Session, principal: Principal, sha256: str) -> bool:
    """Whether the caller may reuse this blob: a file in a space they may write holds it.

    Reuse is limited to such spaces so that offering a digest tells nobody whether
    bytes exist in spaces they cannot write.
    """
    if db.get(Blob, sha256) is None:
        return False
    spaces = db.scalars(
        select(Space)
        .join(Artifact, Artifact.space_id == Space.id)
        .join(File, File.artifact_id == Artifact.id)
        .where(File.blob_sha256 == sha256, visible_spaces(principal))
        .distinct()
    )
    return any(
        (role := role_on_space(principal, space)) is not None and role.rank >= Role.EDITOR.rank
        for space in spaces
    )


def begin_push(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    space: Space,
    name: str,
    offers: list[FileOffer],
    *,
    kind: str | None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Version, list[PushFile]]:
    """Stage a version of ``space/name`` (creating the artifact) and say which files to send.

    Raises:
        Invalid: no files, a path twice, a bad path or digest, or a kind that does not
            match the artifact's.
        Forbidden: the caller may not write the space.
    """
    require(principal, space, Role.EDITOR, what=f"space {space.slug}")
    if not offers:
        raise Invalid("a push needs at least one file", loc=("body", "files"))
    paths = [check_path(offer.path) for offer in offers]
    if len(set(paths)) != len(paths):
        raise Invalid("each path may appear once", loc=("body", "files"))
    taken = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in taken:
                # No file system can hold both, so no client could pull the version.
                raise Invalid(f"{folder} is a file and a folder of {path}", loc=("body", "files"))
    digests = [
        check_sha256(offer.sha256, loc=("body", "files", "sha256")) if offer.sha256 else None
        for offer in offers
    ]
    for offer in offers:
        if offer.size < 0:
            raise Invalid("file sizes must not be negative", loc=("body", "files", "size"))
    with database.write() as db:
        artifact = db.scalar(
            select(Artifact).where(Artifact.space_id == space.id, Artifact.name == name)
        )
        if artifact is None:
            # The first push's description describes the artifact too.
            artifact = create_artifact(
                db,
                space,
                name,
                kind or ArtifactKind.ARTIFACT,
                description=description,
                created_by_id=principal.user_id,
            )
        elif kind is not None and artifact.kind != kind:
            raise Invalid(
                f"{space.slug}/{name} is a {artifact.kind}, not a {kind}", loc=("body", "kind")
            )
        version = create_version(
            db,
            artifact,
            created_by_id=principal.user_id,
            description=description,
            metadata=metadata,
            manifest={"pushed_files": len(offers)},
        )
        present = []
        for offer, path, digest in zip(offers, paths, digests, strict=True):
            if digest is not None and _writable_blob(db, principal, digest):
                add_file(db, version, path, digest, content_type=offer.content_type)
                present.append(path)
        version_id = version.id
    results = []
    for offer, path, digest in zip(offers, paths, digests, strict=True):
        upload = None
        if path not in present:
            upload = uploads.start_upload(
                space_id=space.id,
                created_by_id=principal.user_id,
                size=offer.size,
                sha256=digest,
                context={
                    "surface": SURFACE,
                    "version_id": str(version_id),
                    "path": path,
                    "content_type": offer.content_type,
                },
            )
        results.append(PushFile(path, offer.size, digest, upload))
    return version, results


def _staged(db: Session, principal: Principal, version_id: uuid.UUID) -> Version:
    version = db.get(Version, version_id)
    artifact = db.get(Artifact, version.artifact_id) if version else None
    space = db.get(Space, artifact.space_id) if artifact else None
    if version is None or space is None:
        raise NotFound(f"version {version_id} not found")
    require(principal, space, Role.EDITOR, what=f"version {version_id}")
    return version


def push_files(
    database: Database, uploads: UploadService, principal: Principal, version_id: uuid.UUID
) -> tuple[Version, list[PushFile]]:
    """Where a push stands: every announced file, and the state of its upload if any."""
    with database.read() as db:
        version = _staged(db, principal, version_id)
        linked = {
            file.path: file
            for file in db.scalars(select(File).where(File.version_id == version.id))
        }
    sessions = uploads.sessions_with(surface=SURFACE, key="version_id", value=str(version_id))
    results = [PushFile(path, file.size, file.blob_sha256, None) for path, file in linked.items()]
    for view in sessions:
        path = str(view.context["path"])
        if path not in linked:
            results.append(PushFile(path, view.expected_size or 0, view.expected_sha256, view))
    return version, sorted(results, key=lambda item: item.path)


def complete_upload(
    database: Database, uploads: UploadService, view: UploadView, *, sha256: str | None
) -> UploadView:
    """Complete a push upload, checking its bytes, and put its file in the staged version.

    Raises:
        Invalid: the file was announced without a digest and none is given now (a push
            that sends while it hashes still has its bytes checked against the client's
            reading of the file), or chunks are missing.
        DigestMismatch, SizeMismatch: the bytes are not the file's; the upload fails.
    """
    if sha256 is None and view.expected_sha256 is None and view.status != UploadStatus.COMPLETED:
        raise Invalid(
            "this file was announced without its sha256: give it to complete the upload",
            loc=("body", "sha256"),
        )
    done = uploads.complete_upload(view.id, sha256=sha256)
    link_completed_upload(database, done)
    return done


def link_completed_upload(database: Database, view: UploadView) -> None:
    """Put a completed push upload's blob at its path in the staged version."""
    context = view.context
    if context.get("surface") != SURFACE or view.blob_sha256 is None:
        return
    with database.write() as db:
        version = db.get(Version, uuid.UUID(str(context["version_id"])))
        if version is None or version.status != VersionStatus.STAGED:
            return
        existing = db.scalar(
            select(File).where(File.version_id == version.id, File.path == context["path"])
        )
        if existing is None or existing.blob_sha256 != view.blob_sha256:
            add_file(
                db,
                version,
                str(context["path"]),
                view.blob_sha256,
                content_type=str(context.get("content_type") or "application/octet-stream"),
            )


def finalize_push(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    version_id: uuid.UUID,
    *,
    alias: str | None = None,
) -> Version:
    """Give a pushed version its number once every announced file is in it.

    Finalizing a version that is already final returns it.

    Raises:
        Invalid: files are still missing (named in the message), or a bad alias.
        Conflict: the version was marked failed.
    """
    version, files = push_files(database, uploads, principal, version_id)
    if version.status == VersionStatus.READY:
        # A client that lost the first answer asks again; the alias is still its to set.
        if alias:
            with database.write() as db:
                row = db.get(Version, version_id)
                artifact = db.get(Artifact, version.artifact_id)
                assert row is not None and artifact is not None
                set_alias(db, artifact, alias, row)
        return version
    for item in files:
        if item.upload is not None and item.upload.status == "completed":
            link_completed_upload(database, item.upload)  # completed, but not linked yet
    version, files = push_files(database, uploads, principal, version_id)
    missing = [item.path for item in files if item.upload is not None]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise Invalid(f"files not uploaded yet: {shown}")
    with database.write() as db:
        row = db.get(Version, version_id)
        assert row is not None
        if row.status != VersionStatus.STAGED:
            raise Conflict(f"version {version_id} is {row.status}")
        finalize_version(db, row)
        if alias:
            artifact = db.get(Artifact, row.artifact_id)
            assert artifact is not None
            set_alias(db, artifact, alias, row)
        return row
