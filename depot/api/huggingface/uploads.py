"""The upload side of the Hub protocol: repos, README checks, preupload, LFS, commits.

See docs/huggingface.md and :mod:`depot.huggingface.commits`, where the logic lives.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from depot.api.body import consume_body_in_thread
from depot.api.deps import CurrentPrincipal, ReadDb, Svc, WriteDb
from depot.api.errors import error_response, status_for
from depot.api.routing import OneHopRoute
from depot.errors import Conflict, PayloadTooLarge
from depot.huggingface import commits, lfs
from depot.services import Services

__all__ = ["router"]

router = APIRouter(route_class=OneHopRoute)

REPO = "/api/models/{space}/{name}"
LFS = "/{space}/{name}.git/info/lfs/objects"
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
# Every non-empty file arrives over LFS, so a commit body is mostly paths and digests.
MAX_COMMIT_BYTES = 64 * 1024 * 1024


def endpoint(request: Request, services: Services, org: str) -> str:
    """``HF_ENDPOINT`` as the client sees it: the client parses URLs under it (``RepoUrl``)."""
    root = services.settings.public_url or str(request.base_url)
    return f"{root.rstrip('/')}/hf/{org}"


class RepoCreate(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    organization: str | None = None
    type: str | None = None
    visibility: str | None = None
    private: bool | None = None


class RepoDelete(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    organization: str | None = None
    type: str | None = None


class ReadmeCheck(BaseModel):
    content: str
    repoType: str | None = None


class PreuploadFile(BaseModel):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0)
    sample: str = ""


class Preupload(BaseModel):
    files: list[PreuploadFile] = Field(max_length=1000)
    gitIgnore: str | None = None


class LfsObjectIn(BaseModel):
    oid: str = Field(min_length=1, max_length=128)
    size: int = Field(ge=0)


class LfsBatch(BaseModel):
    operation: str
    objects: list[LfsObjectIn] = Field(max_length=1000)
    transfers: list[str] = Field(default_factory=list)
    hash_algo: str = "sha256"


@router.post("/api/repos/create")
def create_repo(
    org: str, body: RepoCreate, request: Request, principal: CurrentPrincipal, db: WriteDb, svc: Svc
) -> JSONResponse:
    """``create_repo``: a model artifact in the space named as the namespace (409 if taken)."""
    url = f"{endpoint(request, svc, org)}/{body.organization}/{body.name}"
    try:
        commits.create_repo(db, principal, org, body.organization, body.name, body.type)
    except Conflict as exc:
        # With exist_ok=True the client swallows the 409, then reads the url from its body.
        taken = error_response(exc, request.url.path)
        error = json.loads(bytes(taken.body))
        headers = {"X-Error-Message": taken.headers["X-Error-Message"]}
        return JSONResponse(error | {"url": url}, status_code=taken.status_code, headers=headers)
    return JSONResponse({"url": url})


@router.delete("/api/repos/delete")
def delete_repo(org: str, body: RepoDelete, principal: CurrentPrincipal, db: WriteDb) -> Response:
    """``delete_repo``: the artifact and all its versions."""
    commits.delete_repo(db, principal, org, body.organization, body.name)
    return Response(status_code=200)


@router.post("/api/validate-yaml")
def validate_yaml(org: str, body: ReadmeCheck, principal: CurrentPrincipal) -> JSONResponse:
    """Check a README's metadata block; the client reads this JSON before the status."""
    errors = commits.validate_readme(body.content)
    return JSONResponse(
        {"errors": [{"message": message} for message in errors], "warnings": []},
        status_code=400 if errors else 200,
    )


@router.post(REPO + "/preupload/{revision}")
def preupload(
    org: str,
    space: str,
    name: str,
    revision: str,
    body: Preupload,
    principal: CurrentPrincipal,
    db: ReadDb,
) -> dict[str, object]:
    """Upload mode per file, and the sha256 already at that path (unchanged files are skipped)."""
    files = [(item.path, item.size) for item in body.files]
    answers = commits.preupload(db, principal, org, space, name, revision, files)
    return {"files": answers}


@router.post(LFS + "/batch")
def lfs_batch(
    org: str,
    space: str,
    name: str,
    body: LfsBatch,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> JSONResponse:
    """The git-lfs batch: no ``actions`` for objects the caller may already use."""
    objects = [lfs.LfsObject(item.oid, item.size) for item in body.objects]
    answers = lfs.lfs_batch(
        svc.database, svc.uploads, principal, org, space, name, body.operation, objects
    )
    base = endpoint(request, svc, org)
    seconds = svc.settings.upload_expiry_seconds
    signer = svc.signer() if any(answer.session_id for answer in answers) else None
    out: list[dict[str, object]] = []
    for answer in answers:
        item: dict[str, object] = {"oid": answer.oid, "size": answer.size}
        if answer.error is not None:
            item["error"] = {"code": status_for(answer.error), "message": answer.error.message}
        elif answer.session_id is not None and signer is not None:
            item["authenticated"] = True
            item["actions"] = {
                "upload": {
                    "href": lfs.upload_href(signer, base, answer, expires_in=seconds),
                    "expires_in": seconds,
                },
                "verify": {"href": f"{base}/{space}/{name}.git/info/lfs/objects/verify"},
            }
        out.append(item)
    return JSONResponse({"transfer": "basic", "objects": out}, media_type=LFS_MEDIA_TYPE)


@router.put("/_lfs/{session_id}/{oid}/{size}", include_in_schema=False)
async def put_object(
    org: str, session_id: uuid.UUID, oid: str, size: int, request: Request, svc: Svc
) -> Response:
    """An object's bytes, to the signed URL of the batch (no token: the URL authorises)."""
    resource = lfs.upload_resource(session_id, oid, size)
    await run_in_threadpool(svc.verify_signed, request.query_params, "PUT", resource)
    declared = request.headers.get("content-length")
    await consume_body_in_thread(
        request,
        lambda blocks: lfs.receive_object(
            svc.uploads,
            session_id,
            oid,
            size,
            blocks,
            declared=int(declared) if declared and declared.isdigit() else None,
        ),
    )
    return Response(status_code=200)


@router.post(LFS + "/verify")
def verify_object(
    org: str,
    space: str,
    name: str,
    body: LfsObjectIn,
    principal: CurrentPrincipal,
    db: ReadDb,
) -> JSONResponse:
    """Confirms an uploaded object before the commit names it."""
    lfs.verify_object(db, principal, org, space, name, body.oid, body.size)
    return JSONResponse({}, media_type=LFS_MEDIA_TYPE)


async def _read_body(request: Request, limit: int) -> bytes:
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise PayloadTooLarge(f"a commit body may hold at most {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)


@router.post(REPO + "/commit/{revision}")
async def commit(
    org: str,
    space: str,
    name: str,
    revision: str,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> dict[str, str]:
    """An NDJSON commit: one new version, answered with its commit id."""
    body = await _read_body(request, MAX_COMMIT_BYTES)
    parsed = await run_in_threadpool(commits.parse_commit, body)
    version = await run_in_threadpool(
        lambda: commits.apply_commit(
            svc.database,
            svc.uploads,
            principal,
            org,
            space,
            name,
            revision,
            parsed,
            create_pr=request.query_params.get("create_pr") in ("1", "true"),
        )
    )
    return {
        "commitOid": version.commit_id,
        "commitUrl": f"{endpoint(request, svc, org)}/{space}/{name}/commit/{version.commit_id}",
    }
