"""What a Hugging Face client reads: model info, file trees, model listings and refs.

Every function answers in the Hub's JSON shapes (``huggingface_hub.hf_api`` parses them):
dates end in ``Z``, every file is an LFS file (see :mod:`depot.huggingface.repos`), and a
listing comes in pages whose cursor the route turns into a ``Link: <...>; rel="next"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from depot.access.service import Principal, visible_spaces
from depot.catalog import service as catalog
from depot.catalog.models import Alias, Artifact, File, Org, Space, Version
from depot.db.base import parse_integer
from depot.errors import EntryNotFound, Invalid
from depot.huggingface.repos import (
    Repo,
    Revision,
    files_at,
    hub_time,
    lfs_pointer,
    resolve_revision,
)

__all__ = [
    "PAGE_SIZE",
    "Page",
    "find_file",
    "list_models",
    "model_info",
    "repo_refs",
    "tree_page",
]

# Entries per page of a tree or a model listing, as huggingface.co pages them.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page:
    """One page of a listing: its JSON items, and the cursor of the next page (``None``: last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def find_file(db: Session, repo: Repo, revision: Revision, path: str) -> File:
    """The file at ``path`` in a revision.

    Raises:
        EntryNotFound: the revision has no such file (or the path is not a valid one).
    """
    normal = _normal_path(path)
    if revision.version is not None and normal is not None:
        file = db.scalar(
            select(File).where(File.version_id == revision.version.id, File.path == normal)
        )
        if file is not None:
            return file
    raise EntryNotFound(f"{path} not found in {repo.repo_id} at {revision.commit_id}")


def model_info(
    db: Session, repo: Repo, revision: Revision, *, blobs: bool = False
) -> dict[str, Any]:
    """The ``model_info`` of a repo at a revision; ``blobs`` adds sizes and LFS details.

    An empty repo still has a ``sha`` (its empty commit) and no siblings.
    """
    return {
        "_id": str(repo.artifact.id),
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.space.slug,
        "sha": revision.commit_id,
        "lastModified": hub_time(_commit_time(repo, revision)),
        "createdAt": hub_time(repo.artifact.created_at),
        # Nothing in Depot is public: every read needs a token with a role on the space.
        "private": True,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "library_name": None,
        "pipeline_tag": None,
        "siblings": [_sibling(file, blobs) for file in files_at(db, revision)],
    }


def tree_page(
    db: Session,
    repo: Repo,
    revision: Revision,
    path: str = "",
    *,
    recursive: bool = False,
    expand: bool = False,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of the entries under ``path`` (the root when empty), sorted by path.

    Without ``recursive`` the entries are the folder's direct children, sub-folders as
    ``directory`` entries; with it, every file and folder below. ``expand`` adds each
    entry's ``lastCommit`` (the revision's commit). The cursor is an offset into the
    listing, which is stable because a commit's files never change.

    Raises:
        EntryNotFound: ``path`` is not a folder of the revision (a file, or nothing).
    """
    folder = path.strip("/")
    prefix = ""
    if folder:
        normal = _normal_path(folder)
        if normal is None:
            raise EntryNotFound(f"{path} not found in {repo.repo_id} at {revision.commit_id}")
        prefix = normal + "/"
    below = [file for file in files_at(db, revision) if file.path.startswith(prefix)]
    if prefix and not below:
        raise EntryNotFound(f"no folder {folder} in {repo.repo_id} at {revision.commit_id}")
    entries = _tree_entries(below, prefix, recursive=recursive)
    start, limit = _offset(cursor), min(limit, PAGE_SIZE)
    chunk = entries[start : start + limit]
    if expand:
        last_commit = _last_commit(repo, revision)
        chunk = [{**entry, "lastCommit": last_commit} for entry in chunk]
    more = start + limit < len(entries)
    return Page(chunk, str(start + limit) if more else None)


def list_models(
    db: Session,
    principal: Principal,
    org: str,
    *,
    search: str | None = None,
    author: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """The repos of ``org`` the caller may see, by id; ``author`` is a space.

    ``search`` keeps the ids (``space/name``) that contain it, ignoring case. The cursor
    is the last id of the previous page. Archived artifacts are left out, as from
    Depot's other listings.
    """
    query = (
        select(Artifact, Space.slug)
        .join(Space, Artifact.space_id == Space.id)
        .join(Org, Space.org_id == Org.id)
        .where(Org.slug == org, visible_spaces(principal), Artifact.archived_at.is_(None))
    )
    if author:
        query = query.where(Space.slug == author)
    if search:
        repo_id = func.lower(Space.slug + "/" + Artifact.name)
        query = query.where(repo_id.contains(search.lower(), autoescape=True))
    if cursor:
        space, _, name = cursor.partition("/")
        query = query.where(
            or_(Space.slug > space, and_(Space.slug == space, Artifact.name > name))
        )
    limit = min(limit, PAGE_SIZE)
    rows = db.execute(query.order_by(Space.slug, Artifact.name).limit(limit + 1)).all()
    items = [_model_summary(artifact, space) for artifact, space in rows[:limit]]
    return Page(items, items[-1]["id"] if len(rows) > limit else None)


def repo_refs(db: Session, repo: Repo, *, pull_requests: bool = False) -> dict[str, Any]:
    """The repo's refs: the branch ``main`` (latest version) and one tag per alias."""
    main = resolve_revision(db, repo.artifact, "main")
    aliases = db.execute(
        select(Alias.name, Version.commit_id)
        .join(Version, Alias.version_id == Version.id)
        .where(Alias.artifact_id == repo.artifact.id)
        .order_by(Alias.name)
    ).all()
    refs: dict[str, Any] = {
        "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": main.commit_id}],
        "converts": [],
        "tags": [
            {"name": name, "ref": f"refs/tags/{name}", "targetCommit": commit}
            for name, commit in aliases
        ],
    }
    if pull_requests:
        refs["pullRequests"] = []
    return refs


# -- helpers ------------------------------------------------------------------------------


def _normal_path(path: str) -> str | None:
    try:
        return catalog.check_path(path)
    except Invalid:
        return None


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    offset = parse_integer(cursor)
    if offset is None:
        raise Invalid(f"cursor {cursor!r} is not one this server handed out", loc=("cursor",))
    return offset


def _commit_time(repo: Repo, revision: Revision) -> datetime:
    version = revision.version
    if version is None:
        return repo.artifact.created_at
    return version.finalized_at or version.created_at


def _last_commit(repo: Repo, revision: Revision) -> dict[str, Any]:
    version = revision.version
    title = "Initial commit"
    if version is not None:
        title = (version.description or "").strip().split("\n", 1)[0] or f"version {version.number}"
    return {
        "id": revision.commit_id,
        "title": title,
        "date": hub_time(_commit_time(repo, revision)),
    }


def _sibling(file: File, blobs: bool) -> dict[str, Any]:
    sibling: dict[str, Any] = {"rfilename": file.path}
    if blobs:
        blob_id, pointer_size = lfs_pointer(file.blob_sha256, file.size)
        sibling.update(
            size=file.size,
            blobId=blob_id,
            lfs={"sha256": file.blob_sha256, "size": file.size, "pointerSize": pointer_size},
        )
    return sibling


def _file_entry(file: File) -> dict[str, Any]:
    blob_id, pointer_size = lfs_pointer(file.blob_sha256, file.size)
    return {
        "type": "file",
        "path": file.path,
        "oid": blob_id,
        "size": file.size,
        "lfs": {"oid": file.blob_sha256, "size": file.size, "pointerSize": pointer_size},
    }


def _tree_entries(files: Sequence[File], prefix: str, *, recursive: bool) -> list[dict[str, Any]]:
    """The file and folder entries below ``prefix``, sorted by path.

    A folder's ``oid`` hashes the paths, digests and sizes below it, so it changes
    exactly when its content does, as a git tree id would.
    """
    entries: list[dict[str, Any]] = []
    folders: dict[str, Any] = {}  # folder path -> running sha1 of its content
    for file in files:  # sorted by path
        parts = file.path[len(prefix) :].split("/")
        shown = parts if recursive else parts[:2]
        for depth in range(1, len(shown)):
            folder = prefix + "/".join(parts[:depth])
            folders.setdefault(folder, hashlib.sha1())
            relative = file.path[len(folder) + 1 :]
            folders[folder].update(f"{relative}\0{file.blob_sha256}\0{file.size}\n".encode())
        if recursive or len(parts) == 1:
            entries.append(_file_entry(file))
    entries.extend(
        {"type": "directory", "path": folder, "oid": digest.hexdigest()}
        for folder, digest in folders.items()
    )
    return sorted(entries, key=lambda entry: (entry["path"], entry["type"]))


def _model_summary(artifact: Artifact, space: str) -> dict[str, Any]:
    repo_id = f"{space}/{artifact.name}"
    return {
        "_id": str(artifact.id),
        "id": repo_id,
        "modelId": repo_id,
        "author": space,
        "private": True,
        "createdAt": hub_time(artifact.created_at),
        "lastModified": hub_time(artifact.updated_at),
        "downloads": 0,
        "likes": 0,
        "tags": [],
    }
