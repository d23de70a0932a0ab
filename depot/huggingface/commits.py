"""Uploads as the Hugging Face client makes them: a commit is one new immutable version.

The client's sequence, for every ``upload_file``, ``upload_folder`` and ``create_commit``:

1. :func:`validate_readme` when the commit holds a ``README.md``;
2. :func:`preupload`: every non-empty file goes over LFS, and a path whose content is
   unchanged at the revision gets its sha256 back, so the client leaves it out;
3. :func:`depot.huggingface.lfs.lfs_batch`: objects the caller may already read need no
   bytes; the others get an upload session and a signed URL (see that module);
4. :func:`depot.huggingface.lfs.receive_object` streams the PUT into the session;
5. :func:`apply_commit` builds the next version from the parent's files and the NDJSON
   operations, in one transaction: it is finalized or it does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import Principal, require
from depot.blobs.store import check_sha256
from depot.catalog import browse
from depot.catalog import service as catalog
from depot.catalog.models import Artifact, ArtifactKind, File, Space, Version
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.errors import (
    Conflict,
    EntryNotFound,
    Invalid,
    NotFound,
    RepoNotFound,
)
from depot.huggingface.lfs import usable_blob
from depot.huggingface.repos import MAIN, Repo, files_at, load_repo, resolve_revision
from depot.uploads.service import UploadService

__all__ = [
    "Commit",
    "Operation",
    "apply_commit",
    "create_repo",
    "delete_repo",
    "parse_commit",
    "preupload",
    "validate_readme",
]

# The git blob id of empty content: the client compares it with what preupload says of
# an empty file, which it always sends inline.
EMPTY_GIT_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
MAX_README_BYTES = 1024 * 1024
MAX_OPERATIONS = 100_000


# -- repos --------------------------------------------------------------------------------


def _space_for(db: Session, principal: Principal, org: str, space: str | None, name: str) -> Space:
    if not space:
        raise Invalid(
            f"name the space as the namespace of the repo id: {{space}}/{name}",
            loc=("body", "organization"),
        )
    what = f"repository {space}/{name}"
    try:
        row = catalog.get_space(db, org, space)
        require(principal, row, Role.EDITOR, what=what)
    except NotFound:
        raise RepoNotFound(f"{what} not found") from None
    return row


def create_repo(
    db: Session,
    principal: Principal,
    org: str,
    space: str | None,
    name: str,
    repo_type: str | None,
) -> Artifact:
    """Create the model artifact ``space/name`` (``create_repo``).

    Raises:
        Invalid: no space, a repo type other than model, or a bad name.
        RepoNotFound: the caller cannot see the space.
        Forbidden: the caller is not an editor of the space.
        Conflict: the repo exists (``exist_ok=True`` relies on the 409).
    """
    if repo_type not in (None, "model"):
        raise Invalid(
            f"Depot hosts model repos over this protocol, not {repo_type} repos",
            loc=("body", "type"),
        )
    row = _space_for(db, principal, org, space, name)
    return catalog.create_artifact(
        db, row, name, ArtifactKind.MODEL, created_by_id=principal.user_id
    )


def delete_repo(db: Session, principal: Principal, org: str, space: str | None, name: str) -> None:
    """Delete the artifact ``space/name`` with every version (editors; bytes go at gc).

    Raises:
        RepoNotFound: no such repo, or the caller cannot see it.
        Forbidden: the caller is not an editor.
    """
    if not space:
        raise RepoNotFound(f"repository {name} not found")
    repo = load_repo(db, principal, org, space, name, Role.EDITOR)
    browse.delete_artifact(db, repo.artifact)


# -- README metadata ----------------------------------------------------------------------


def validate_readme(content: str) -> list[str]:
    """The problems of a README's YAML front matter (none when it has none).

    The Hub reads a model card's metadata from a leading ``---`` block, which must be
    a YAML mapping.
    """
    if len(content.encode()) > MAX_README_BYTES:
        return [f"README.md is larger than {MAX_README_BYTES} bytes"]
    lines = content.splitlines()
    if not lines or lines[0].strip() != "---":
        return []
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return ["the YAML front matter of README.md has no closing '---' line"]
    try:
        metadata = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        return [f"the YAML front matter of README.md is not valid YAML: {exc}"]
    if metadata is not None and not isinstance(metadata, dict):
        return [
            "the YAML front matter of README.md must be a mapping of keys to values,"
            f" not a {type(metadata).__name__}"
        ]
    return []


# -- preupload ----------------------------------------------------------------------------


def _check_main(revision: str) -> None:
    if revision != MAIN:
        raise Invalid(
            f"Depot takes commits to {MAIN} only, not to {revision!r}: each commit becomes"
            " the repo's next version (tag a version with create_tag instead)",
            loc=("path", "revision"),
        )


def preupload(
    db: Session,
    principal: Principal,
    org: str,
    space: str,
    name: str,
    revision: str,
    files: list[tuple[str, int]],
) -> list[dict[str, Any]]:
    """How each ``(path, size)`` is to be sent, and what the revision holds at that path.

    Every non-empty file goes over LFS; ``oid`` is the sha256 of the file at that path
    (the client skips files whose local sha256 matches). Empty files go inline, and an
    empty file already there gets the git id of empty content for the same reason.

    Raises:
        RepoNotFound, Forbidden: the caller may not write the repo.
        Invalid: a revision other than main, or a bad path.
    """
    repo = load_repo(db, principal, org, space, name, Role.EDITOR)
    _check_main(revision)
    present = {file.path: file for file in files_at(db, resolve_revision(db, repo.artifact, MAIN))}
    answers: list[dict[str, Any]] = []
    for path, size in files:
        existing = present.get(catalog.check_path(path))
        answer: dict[str, Any] = {
            "path": path,
            "uploadMode": "lfs" if size > 0 else "regular",
            "shouldIgnore": False,
        }
        if existing is not None and size > 0:
            answer["oid"] = existing.blob_sha256
        elif existing is not None and existing.size == 0:
            answer["oid"] = EMPTY_GIT_BLOB
        answers.append(answer)
    return answers


# -- commits ------------------------------------------------------------------------------

FILE, LFS_FILE, DELETED_FILE, DELETED_FOLDER = "file", "lfsFile", "deletedFile", "deletedFolder"


@dataclass(frozen=True)
class Operation:
    """One line of a commit after the header."""

    kind: str
    path: str
    content: bytes | None = None
    oid: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Commit:
    """A parsed commit: its header and its operations, in order."""

    summary: str
    description: str
    parent_commit: str | None
    operations: list[Operation]


def _text(value: dict[str, Any], key: str, line: int, *, required: bool = True) -> str:
    text = value.get(key)
    if text is None and not required:
        return ""
    if not isinstance(text, str):
        raise Invalid(f"line {line} of the commit needs a string {key!r}")
    return text


def _operation(key: object, value: dict[str, Any], line: int) -> Operation:
    path = _text(value, "path", line)
    if key == FILE:
        if value.get("encoding", "base64") != "base64":
            raise Invalid(f"line {line}: file contents must be base64-encoded")
        try:
            content = base64.b64decode(_text(value, "content", line), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"line {line}: the content of {path} is not valid base64") from None
        return Operation(FILE, catalog.check_path(path), content=content)
    if key == LFS_FILE:
        if value.get("algo", "sha256") != "sha256":
            raise Invalid(f"line {line}: LFS objects are addressed by sha256")
        oid = check_sha256(_text(value, "oid", line), loc=("body", line, "oid"))
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise Invalid(f"line {line}: the size of {path} must be a non-negative integer")
        return Operation(LFS_FILE, catalog.check_path(path), oid=oid, size=size)
    if key == DELETED_FILE:
        return Operation(DELETED_FILE, path)
    if key == DELETED_FOLDER:
        return Operation(DELETED_FOLDER, path.strip("/"))
    raise Invalid(f"line {line}: unknown commit operation {key!r}")


def parse_commit(body: bytes) -> Commit:
    """Parse an NDJSON commit: a header line, then one operation per line.

    Raises:
        Invalid: not NDJSON, no header first, or an operation that is malformed.
    """
    entries: list[tuple[int, object, dict[str, Any]]] = []
    for line, text in enumerate(body.splitlines(), 1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError:
            raise Invalid(f"line {line} of the commit is not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise Invalid(f'line {line} of the commit must be {{"key": ..., "value": {{...}}}}')
        entries.append((line, item.get("key"), item["value"]))
    if not entries or entries[0][1] != "header":
        raise Invalid("the first line of a commit must be its header")
    if len(entries) > MAX_OPERATIONS + 1:
        raise Invalid(f"a commit may hold at most {MAX_OPERATIONS} operations")
    line, _, header = entries[0]
    parent = header.get("parentCommit")
    if parent is not None and not isinstance(parent, str):
        raise Invalid("parentCommit must be a commit id")
    return Commit(
        summary=_text(header, "summary", line, required=False),
        description=_text(header, "description", line, required=False),
        parent_commit=parent,
        operations=[_operation(key, value, number) for number, key, value in entries[1:]],
    )


@dataclass
class _Entry:
    sha256: str
    size: int
    content_type: str
    metadata: dict[str, Any]


def _content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _apply(
    db: Session, principal: Principal, tree: dict[str, _Entry], op: Operation, inline: str | None
) -> None:
    if op.kind == FILE:
        assert inline is not None and op.content is not None
        tree[op.path] = _Entry(inline, len(op.content), _content_type(op.path), {})
    elif op.kind == LFS_FILE:
        assert op.oid is not None
        blob = usable_blob(db, principal, op.oid)
        if blob is None or (op.size is not None and blob.size != op.size):
            raise Invalid(
                f"the LFS object {op.oid} of {op.path} has not been uploaded (send it through"
                " the LFS batch first)"
            )
        tree[op.path] = _Entry(blob.sha256, blob.size, _content_type(op.path), {})
    elif op.kind == DELETED_FILE:
        if tree.pop(op.path, None) is None:
            raise EntryNotFound(f"A file with this name doesn't exist: {op.path}")
    else:
        prefix = f"{op.path}/" if op.path else ""
        gone = [path for path in tree if path.startswith(prefix)]
        if not op.path or not gone:
            raise EntryNotFound(f"A folder with this name doesn't exist: {op.path}")
        for path in gone:
            del tree[path]


def _check_tree(tree: dict[str, _Entry]) -> None:
    for path in tree:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in tree:
                # No file system can hold both, so no client could download the version.
                raise Invalid(f"{folder} would be both a file and the folder of {path}")


def apply_commit(
    database: Database,
    uploads: UploadService,
    principal: Principal,
    org: str,
    space: str,
    name: str,
    revision: str,
    commit: Commit,
    *,
    create_pr: bool = False,
) -> Version:
    """Make the repo's next version: the head's files with the commit's operations applied.

    Everything happens in one transaction, so a commit that fails leaves no version.

    Raises:
        RepoNotFound, Forbidden: the caller may not write the repo.
        Invalid: a revision other than main, a pull request, an LFS object that was not
            uploaded, or a path that would be both a file and a folder.
        Conflict: ``parentCommit`` is not the head any more.
        EntryNotFound: a deleted file or folder does not exist.
    """
    with database.read() as db:
        load_repo(db, principal, org, space, name, Role.EDITOR)  # before storing any byte
    _check_main(revision)
    if create_pr:
        raise Invalid("Depot does not support pull requests: commit to main")
    # Inline files are small (every non-empty file is sent over LFS): stored first, so no
    # transaction waits on bytes. If the commit fails they are garbage, collected by gc.
    inline = {
        index: uploads.upload_blob([op.content], size=len(op.content)).sha256
        for index, op in enumerate(commit.operations)
        if op.kind == FILE and op.content is not None
    }
    with database.write() as db:
        repo = load_repo(db, principal, org, space, name, Role.EDITOR)
        _lock_lineage(db, repo)
        head = resolve_revision(db, repo.artifact, MAIN)
        if commit.parent_commit is not None and commit.parent_commit != head.commit_id:
            raise Conflict(
                "A commit has happened since: the parent commit"
                f" {commit.parent_commit} is not the head of {repo.repo_id} ({head.commit_id})."
                " Please refresh and try again."
            )
        tree = {
            file.path: _Entry(file.blob_sha256, file.size, file.content_type, file.metadata_)
            for file in files_at(db, head)
        }
        for index, op in enumerate(commit.operations):
            _apply(db, principal, tree, op, inline.get(index))
        _check_tree(tree)
        description = commit.summary
        if commit.description:
            description = f"{commit.summary}\n\n{commit.description}".strip()
        version = catalog.create_version(
            db,
            repo.artifact,
            created_by_id=principal.user_id,
            description=description,
            manifest={"source": "huggingface", "parent_commit": head.commit_id},
        )
        now = utcnow()
        # One insert per file: the parent's files are carried over as they are.
        db.add_all(
            File(
                artifact_id=repo.artifact.id,
                version_id=version.id,
                path=path,
                blob_sha256=entry.sha256,
                size=entry.size,
                content_type=entry.content_type,
                metadata_=dict(entry.metadata),
                created_by_id=principal.user_id,
                created_at=now,
                updated_at=now,
            )
            for path, entry in sorted(tree.items())
        )
        db.flush()
        return catalog.finalize_version(db, version)


def _lock_lineage(db: Session, repo: Repo) -> None:
    # Two commits at once must not both build on the same head: the second waits here,
    # then reads the first one's version as its parent (SQLite serializes writers anyway).
    db.scalar(select(Artifact.id).where(Artifact.id == repo.artifact.id).with_for_update())
