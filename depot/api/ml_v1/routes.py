"""The ML API routes, served the same under /api/ml/v1 and /api/svc/v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from depot.access.models import User
from depot.access.service import Principal
from depot.api.deps import CurrentPrincipal, ReadDb, Svc, WriteDb
from depot.api.ml_v1.shapes import artifact_shape, file_shape, ml_repo_shape, version_shape
from depot.api.routing import OneHopRoute, short_read
from depot.catalog.models import Artifact, ArtifactKind, Org, Space
from depot.errors import Invalid
from depot.ml import repos, transfers, versions
from depot.ml.schemas import (
    ApplyRequest,
    FilesRequest,
    IdRequest,
    MlRepoApply,
    MultipartRequest,
    SignedUrlsRequest,
    StageRequest,
    TagsRequest,
)
from depot.services import Services

__all__ = ["PREFIXES", "router", "surface_base"]

PREFIXES = ("/api/svc/v1", "/api/ml/v1")
router = APIRouter(tags=["ml api"], route_class=OneHopRoute)

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


def surface_base(request: Request, services: Services) -> str:
    """Absolute base URL of the ML surface the request came in on (for signed URLs)."""
    root = services.settings.public_url or str(request.base_url)
    path = request.url.path
    prefix = next((p for p in PREFIXES if path.startswith(p)), PREFIXES[0])
    return root.rstrip("/") + prefix


def _page(data: list[Any], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {"data": data, "pagination": {"total": total, "offset": offset, "limit": limit}}


# -- login bootstrap of the `truefoundry` package (no Authorization header) ----------------


@router.get("/min-cli-version")
def min_cli_version() -> dict[str, Any]:
    return {
        "minVersion": "0.0.0",
        "truefoundryCliMinVersion": "0.0.0",
        "useSFYServerAuthAPIs": False,
        "pythonBuildDefaultImageTag": "3.11",
    }


@router.get("/tenant-id")
def tenant_id(request: Request, hostName: str | None = None) -> dict[str, Any]:  # noqa: N803
    # Depot has no separate auth server; the tenant comes from the key, through /session.
    return {"tenantName": "depot", "auth_server_url": str(request.base_url).rstrip("/")}


@router.get("/session")
@short_read
def session(principal: CurrentPrincipal, db: ReadDb) -> dict[str, Any]:
    """Who the key belongs to, and the tenant (org) the ML API works in for them."""
    user = db.get(User, principal.user_id)
    assert user is not None
    org = repos.tenant(db, principal)
    return {
        "user": {
            "tenantName": org.slug,
            "email": repos.user_email(user),
            "subject": {
                "subjectId": str(user.id),
                "subjectType": "serviceaccount" if user.is_service_account else "user",
                "subjectSlug": user.username,
                "subjectDisplayName": user.display_name or user.username,
            },
        },
        "tenantInfo": {"tenantName": org.slug},
    }


# -- ML repos -------------------------------------------------------------------------------


def _repo(db: Session, space: Space) -> dict[str, Any]:
    return ml_repo_shape(repos.ml_repo_row(db, space))


@router.put("/ml-repos")
def put_ml_repo(body: MlRepoApply, principal: CurrentPrincipal, db: WriteDb) -> dict[str, Any]:
    """Create the ML repo of that name in the caller's tenant, or update it."""
    space = repos.apply_ml_repo(db, principal, body.manifest)
    return {"data": _repo(db, space)}


@router.get("/ml-repos")
def list_ml_repos(
    principal: CurrentPrincipal,
    db: ReadDb,
    name: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows, total = repos.list_ml_repos(db, principal, name=name, limit=limit, offset=offset)
    return _page([_repo(db, space) for space in rows], total, offset, limit)


@router.get("/ml-repos/{repo_id}")
@short_read
def get_ml_repo(repo_id: str, principal: CurrentPrincipal, db: ReadDb) -> dict[str, Any]:
    return {"data": ml_repo_shape(repos.find_ml_repo(db, principal, repo_id))}


@router.delete("/ml-repos/{repo_id}")
def delete_ml_repo(repo_id: str, principal: CurrentPrincipal, db: WriteDb) -> dict[str, Any]:
    repos.delete_ml_repo(db, principal, repo_id)
    return {}


# -- staging and transfers ----------------------------------------------------------------


@router.post("/artifact-versions/stage")
def stage(body: StageRequest, principal: CurrentPrincipal, db: WriteDb) -> dict[str, Any]:
    """Open a staged version; upload its files through signed URLs, then finalize it."""
    version, artifact = versions.stage(db, principal, body.manifest)
    return {
        "id": str(version.id),
        "storage_root": versions.storage_root(version, artifact),
        "artifact_id": str(artifact.id),
    }


@router.post("/artifact-versions/signed-urls")
def signed_urls(
    body: SignedUrlsRequest, request: Request, principal: CurrentPrincipal, db: ReadDb, svc: Svc
) -> dict[str, Any]:
    """Signed PUT (WRITE) or GET (READ) URLs, one per path, in the order asked."""
    urls = transfers.signed_urls(
        db,
        principal,
        svc.signer(),
        surface_base(request, svc),
        body.id,
        body.paths,
        body.operation,
        write_seconds=svc.settings.upload_expiry_seconds,
    )
    return {"data": [{"path": path, "signed_url": url} for path, url in urls]}


@router.post("/artifact-versions/signed-urls/multipart")
def multipart(
    body: MultipartRequest, request: Request, principal: CurrentPrincipal, db: ReadDb, svc: Svc
) -> dict[str, Any]:
    """Part URLs (index i is part i + 1) and a finalize URL for one large file."""
    upload = transfers.start_multipart(
        db,
        principal,
        svc.uploads,
        svc.signer(),
        surface_base(request, svc),
        body.id,
        body.path,
        body.num_parts,
        write_seconds=svc.settings.upload_expiry_seconds,
    )
    return {
        "data": {
            "storage_provider": "S3_COMPATIBLE",
            "part_signed_urls": [
                {"path": body.path, "signed_url": url} for url in upload.part_urls
            ],
            "finalize_signed_url": {"path": body.path, "signed_url": upload.finalize_url},
            "s3_compatible_upload_id": str(upload.upload_id),
        }
    }


@router.post("/artifact-versions/mark-stage-failure")
def mark_stage_failure(body: IdRequest, principal: CurrentPrincipal, db: WriteDb) -> dict[str, Any]:
    versions.mark_stage_failure(db, principal, body.id)
    return {}


@router.post("/artifact-versions/files")
def list_files(body: FilesRequest, principal: CurrentPrincipal, db: ReadDb) -> dict[str, Any]:
    """One directory level of a version (any kind), paged with tokens."""
    limit = body.limit or 500
    entries, token = transfers.list_files(
        db, principal, body.id, body.path, limit=limit, page_token=body.page_token
    )
    return {
        "data": [file_shape(entry) for entry in entries],
        "pagination": {"limit": limit, "nextPageToken": token},
    }


# -- finalize (apply) -----------------------------------------------------------------------


def _apply(
    body: ApplyRequest, kind: ArtifactKind | None, principal: Principal, db: Session, svc: Services
) -> dict[str, Any]:
    manifest = body.manifest
    if kind is not None and versions.KIND_OF_TYPE[manifest.type] != kind:
        raise Invalid(
            f"this endpoint takes {kind.value.replace('_', ' ')} manifests, not {manifest.type}",
            loc=("body", "manifest", "type"),
        )
    version = versions.apply_manifest(db, principal, manifest, uploads=svc.uploads)
    record = versions.get_version(db, principal, str(version.id))
    return {"data": version_shape(record)}


@router.put("/artifact-versions")
def apply_artifact_version(
    body: ApplyRequest, principal: CurrentPrincipal, db: WriteDb, svc: Svc
) -> dict[str, Any]:
    """Finalize a staged artifact version, or update one (`manifest.version` set)."""
    return _apply(body, ArtifactKind.ARTIFACT, principal, db, svc)


@router.put("/model-versions")
def apply_model_version(
    body: ApplyRequest, principal: CurrentPrincipal, db: WriteDb, svc: Svc
) -> dict[str, Any]:
    """Finalize a staged model version, or update one (`manifest.version` set)."""
    return _apply(body, ArtifactKind.MODEL, principal, db, svc)


@router.put("/agent-skill-versions")
def apply_agent_skill_version(
    body: ApplyRequest, principal: CurrentPrincipal, db: WriteDb, svc: Svc
) -> dict[str, Any]:
    """Finalize a staged agent skill, or record one from an inline SKILL.md."""
    return _apply(body, ArtifactKind.AGENT_SKILL, principal, db, svc)


@router.put("/apply")
def apply(body: ApplyRequest, principal: CurrentPrincipal, db: WriteDb, svc: Svc) -> dict[str, Any]:
    """The generic apply, as `truefoundry` uses it for agent skills."""
    if body.dry_run:
        return {}
    existing = _apply(body, None, principal, db, svc)["data"]
    return {"existingManifest": existing["manifest"]}


# -- versions -------------------------------------------------------------------------------


def _versions(
    kind: ArtifactKind,
    id_param: str | None,
    principal: Principal,
    db: Session,
    fqn: str | None,
    ml_repo_id: str | None,
    name: str | None,
    version: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    query = versions.VersionQuery(
        fqn=fqn, artifact_id=id_param, ml_repo_id=ml_repo_id, name=name, version=version
    )
    rows, total = versions.list_versions(db, principal, kind, query, limit=limit, offset=offset)
    return _page([version_shape(record) for record in rows], total, offset, limit)


@router.get("/artifact-versions")
def list_artifact_versions(
    principal: CurrentPrincipal,
    db: ReadDb,
    fqn: str | None = None,
    artifact_id: str | None = None,
    ml_repo_id: str | None = None,
    name: str | None = None,
    version: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return _versions(
        ArtifactKind.ARTIFACT,
        artifact_id,
        principal,
        db,
        fqn,
        ml_repo_id,
        name,
        version,
        limit,
        offset,
    )


@router.get("/model-versions")
def list_model_versions(
    principal: CurrentPrincipal,
    db: ReadDb,
    fqn: str | None = None,
    model_id: str | None = None,
    ml_repo_id: str | None = None,
    name: str | None = None,
    version: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return _versions(
        ArtifactKind.MODEL, model_id, principal, db, fqn, ml_repo_id, name, version, limit, offset
    )


@router.get("/agent-skill-versions")
def list_agent_skill_versions(
    principal: CurrentPrincipal,
    db: ReadDb,
    fqn: str | None = None,
    agent_skill_id: str | None = None,
    ml_repo_id: str | None = None,
    name: str | None = None,
    version: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return _versions(
        ArtifactKind.AGENT_SKILL,
        agent_skill_id,
        principal,
        db,
        fqn,
        ml_repo_id,
        name,
        version,
        limit,
        offset,
    )


def _version_routes(path: str, kind: ArtifactKind) -> None:
    def get_version(version_id: str, principal: CurrentPrincipal, db: ReadDb) -> dict[str, Any]:
        return {"data": version_shape(versions.get_version(db, principal, version_id, kind))}

    def delete_version(version_id: str, principal: CurrentPrincipal, db: WriteDb) -> dict[str, Any]:
        versions.delete_ml_version(db, principal, version_id, kind)
        return {}

    router.add_api_route(
        f"/{path}/{{version_id}}", get_version, methods=["GET"], name=f"get_{path}"
    )
    router.add_api_route(
        f"/{path}/{{version_id}}", delete_version, methods=["DELETE"], name=f"delete_{path}"
    )


_version_routes("artifact-versions", ArtifactKind.ARTIFACT)
_version_routes("model-versions", ArtifactKind.MODEL)
_version_routes("agent-skill-versions", ArtifactKind.AGENT_SKILL)


@router.put("/artifact-versions/tags")
def artifact_version_tags(
    body: TagsRequest, principal: CurrentPrincipal, db: WriteDb
) -> dict[str, Any]:
    record = versions.set_tags(
        db, principal, _tagged(body, "artifact_version_id"), body.tags, force=bool(body.force)
    )
    return {"data": version_shape(record)}


@router.put("/model-versions/tags")
def model_version_tags(
    body: TagsRequest, principal: CurrentPrincipal, db: WriteDb
) -> dict[str, Any]:
    record = versions.set_tags(
        db, principal, _tagged(body, "model_version_id"), body.tags, force=bool(body.force)
    )
    return {"data": version_shape(record)}


def _tagged(body: TagsRequest, field: str) -> str:
    value = getattr(body, field)
    if not value:
        raise Invalid(f"{field} is required", loc=("body", field))
    return str(value)


# -- artifacts, models, agent skills (containers) ------------------------------------------


def _container(
    db: Session, artifact: Artifact, space: Space, org: Org, principal: Principal
) -> dict[str, Any]:
    creator = db.get(User, artifact.created_by_id) if artifact.created_by_id else None
    latest = versions.latest_version(db, artifact)
    record = versions.get_version(db, principal, str(latest.id)) if latest else None
    return artifact_shape(artifact, space, org, creator, record)


def _container_routes(path: str, kind: ArtifactKind, empty_flag: str) -> None:
    def list_containers(
        request: Request,
        principal: CurrentPrincipal,
        db: ReadDb,
        fqn: str | None = None,
        ml_repo_id: str | None = None,
        name: str | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        include_empty = request.query_params.get(empty_flag, "true").lower() != "false"
        rows, total = versions.list_artifacts(
            db,
            principal,
            kind,
            fqn=fqn,
            ml_repo_id=ml_repo_id,
            name=name,
            include_empty=include_empty,
            limit=limit,
            offset=offset,
        )
        return _page([_container(db, *row, principal) for row in rows], total, offset, limit)

    def get_container(artifact_id: str, principal: CurrentPrincipal, db: ReadDb) -> dict[str, Any]:
        artifact, space, org = versions.get_artifact(db, principal, artifact_id, kind)
        return {"data": _container(db, artifact, space, org, principal)}

    def delete_container(
        artifact_id: str, principal: CurrentPrincipal, db: WriteDb
    ) -> dict[str, Any]:
        versions.delete_artifact(db, principal, artifact_id, kind)
        return {}

    router.add_api_route(f"/{path}", list_containers, methods=["GET"], name=f"list_{path}")
    router.add_api_route(
        f"/{path}/{{artifact_id}}", get_container, methods=["GET"], name=f"get_{path}"
    )
    router.add_api_route(
        f"/{path}/{{artifact_id}}", delete_container, methods=["DELETE"], name=f"delete_{path}"
    )


_container_routes("artifacts", ArtifactKind.ARTIFACT, "include_empty_artifacts")
_container_routes("models", ArtifactKind.MODEL, "include_empty_models")
_container_routes("agent-skills", ArtifactKind.AGENT_SKILL, "include_empty_agent_skills")
