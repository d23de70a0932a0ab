"""The download side of the Hub protocol: files, model info, trees, listings and refs.

See docs/huggingface.md; the wire rules (headers the client insists on) are noted where
they are met.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from depot.access.models import Role
from depot.api.deps import CurrentPrincipal, ReadDb, Svc
from depot.api.download import blob_response
from depot.api.errors import error_response
from depot.api.routing import OneHopRoute
from depot.errors import EntryNotFound
from depot.huggingface import browse
from depot.huggingface.repos import load_repo, resolve_revision

__all__ = ["router"]

router = APIRouter(route_class=OneHopRoute)

REPO = "/api/models/{space}/{name}"
# Larger pages are cut to PAGE_SIZE: the client asks `limit` of its total, and pages on.
Limit = Annotated[int, Query(ge=1)]


@router.get("/api/models")
def list_models(
    org: str,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    search: str | None = None,
    author: str | None = None,
    cursor: str | None = None,
    limit: Limit = browse.PAGE_SIZE,
) -> Response:
    """The repos the caller may see (``HfApi.list_models``); ``author`` is a space."""
    page = browse.list_models(
        db, principal, org, search=search, author=author, cursor=cursor, limit=limit
    )
    following = None
    if page.next_cursor is not None:
        following = str(request.url.include_query_params(cursor=page.next_cursor))
    return _page_response(page, following)


@router.get(REPO)
def model_info(
    org: str, space: str, name: str, principal: CurrentPrincipal, db: ReadDb, blobs: bool = False
) -> dict[str, object]:
    """``model_info`` at ``main``."""
    repo = load_repo(db, principal, org, space, name, Role.VIEWER)
    return browse.model_info(db, repo, resolve_revision(db, repo.artifact, None), blobs=blobs)


@router.get(REPO + "/revision/{revision:path}")
def model_info_at(
    org: str,
    space: str,
    name: str,
    revision: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    blobs: bool = False,
) -> dict[str, object]:
    """``model_info`` at a revision: ``main``, a version number, an alias or a commit id."""
    repo = load_repo(db, principal, org, space, name, Role.VIEWER)
    return browse.model_info(db, repo, resolve_revision(db, repo.artifact, revision), blobs=blobs)


@router.get(REPO + "/tree/{revision}", name="hf_tree")
@router.get(REPO + "/tree/{revision}/{path:path}", name="hf_tree_path")
def model_tree(
    org: str,
    space: str,
    name: str,
    revision: str,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    path: str = "",
    recursive: bool = False,
    expand: bool = False,
    cursor: str | None = None,
    limit: Limit = browse.PAGE_SIZE,
) -> Response:
    """The files and folders under ``path`` (``list_repo_tree``, ``snapshot_download``)."""
    repo = load_repo(db, principal, org, space, name, Role.VIEWER)
    resolved = resolve_revision(db, repo.artifact, revision)
    page = browse.tree_page(
        db,
        repo,
        resolved,
        path,
        recursive=recursive,
        expand=expand,
        cursor=cursor,
        limit=limit,
    )
    # The next pages name the commit, not the ref: a push between two pages cannot mix
    # two versions' files into one listing.
    following = None
    if page.next_cursor is not None:
        params = {"org": org, "space": space, "name": name, "revision": resolved.commit_id}
        folder = path.strip("/")
        url = (
            request.url_for("hf_tree_path", **params, path=quote(folder))
            if folder
            else request.url_for("hf_tree", **params)
        )
        query = dict(request.query_params) | {"cursor": page.next_cursor}
        following = str(url.include_query_params(**query))
    return _page_response(page, following)


@router.get(REPO + "/refs")
def refs(
    org: str,
    space: str,
    name: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    include_prs: bool = False,
) -> dict[str, object]:
    """Branch ``main`` and the aliases as tags (``list_repo_refs``)."""
    repo = load_repo(db, principal, org, space, name, Role.VIEWER)
    return browse.repo_refs(db, repo, pull_requests=include_prs)


# Two routes, not one api_route with both methods: each gets its own OpenAPI operation.
# (A plain GET route would answer HEAD with 405, and the client resolves with HEAD.)
@router.get("/{space}/{name}/resolve/{revision}/{path:path}")
@router.head("/{space}/{name}/resolve/{revision}/{path:path}")
def resolve_file(
    org: str,
    space: str,
    name: str,
    revision: str,
    path: str,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    svc: Svc,
) -> Response:
    """A file's bytes, or on HEAD its metadata (``hf_hub_download``).

    The client needs ``X-Repo-Commit`` and an ETag on every answer it keeps, including
    a redirect to the store (whose size it reads from ``X-Linked-Size``) and a 404 for a
    missing file (then it caches the absence for that commit).
    """
    repo = load_repo(db, principal, org, space, name, Role.VIEWER)
    resolved = resolve_revision(db, repo.artifact, revision)
    commit = {"X-Repo-Commit": resolved.commit_id}
    try:
        file = browse.find_file(db, repo, resolved, path)
    except EntryNotFound as exc:
        missing = error_response(exc, request.url.path)
        missing.headers.update(commit)
        return missing
    response = blob_response(
        request,
        svc.store,
        sha256=file.blob_sha256,
        size=file.size,
        file_name=file.path.rsplit("/", 1)[-1],
        content_type=file.content_type,
        missing=f"the bytes of {path} are missing from storage",
    )
    etag = f'"{file.blob_sha256}"'
    response.headers.update(commit | {"ETag": etag, "X-Linked-Etag": etag})
    if response.status_code in (301, 302, 303, 307, 308):
        # The client reads the metadata of a cross-origin redirect from the redirect itself.
        response.headers["X-Linked-Size"] = str(file.size)
    return response


def _page_response(page: browse.Page, following: str | None) -> Response:
    """A JSON array, with ``Link: <following>; rel="next"`` when more pages follow."""
    headers = {"Link": f'<{following}>; rel="next"'} if following else {}
    return JSONResponse(page.items, headers=headers)
