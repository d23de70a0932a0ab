"""The agent artifacts API under /v1/orgs/{org}/workspaces/{workspace}/namespaces/{namespace}."""

from __future__ import annotations

import json
import mimetypes
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from depot.access.models import Role
from depot.access.service import Principal
from depot.agents import query as agent_query
from depot.agents import service as agents
from depot.agents.schemas import (
    ArtifactChanges,
    ArtifactCreate,
    ArtifactOut,
    ArtifactPage,
    DownloadLink,
    PromoteRequest,
    PromoteResult,
    QueryRequest,
    QueryResponse,
    QueryResult,
)
from depot.agents.service import IncomingFile, RecordView
from depot.api.agents_v1.form import FilePart, read_form
from depot.api.body import consume_body_in_thread
from depot.api.deps import CurrentPrincipal, ReadDb, Svc
from depot.api.routing import OneHopRoute
from depot.blobs.meter import Meter
from depot.errors import Invalid
from depot.knowledge.service import promote
from depot.services import Services

__all__ = ["artifact_out", "router"]

Changes = TypeVar("Changes", bound=ArtifactChanges)

router = APIRouter(tags=["agent artifacts"], route_class=OneHopRoute)
NS = "/orgs/{org}/workspaces/{workspace}/namespaces/{namespace}"


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def artifact_out(view: RecordView) -> ArtifactOut:
    record, version = view.record, view.version
    return ArtifactOut(
        artifact_id=str(record.version_id),
        workspace_id=str(view.space.id),
        namespace_id=str(view.namespace.id),
        thread_id=record.thread_id,
        name=record.name,
        description=version.description or None,
        artifact_type=record.artifact_type,
        version=version.number or 1,
        root_artifact_id=str(record.artifact_id),
        is_latest=record.is_latest,
        replaced_by_version=record.replaced_by_version,
        content=record.content,
        content_preview=record.content_preview,
        content_text=record.content_text,
        file_name=record.file_name,
        mime_type=record.mime_type,
        size_bytes=record.size_bytes,
        has_file=record.has_file,
        summary=record.summary,
        keywords=list(record.keywords),
        tags=list(version.tags),
        metadata=dict(version.metadata_),
        source=record.source,
        source_execution_id=record.source_execution_id,
        source_step_id=record.source_step_id,
        source_tool=record.source_tool,
        scope=record.scope,
        status=record.status,
        ttl_seconds=record.ttl_seconds,
        expires_at=_time(record.expires_at),
        is_pinned=record.is_pinned,
        is_expired=view.is_expired,
        is_indexed=record.is_indexed,
        indexed_at=_time(record.indexed_at),
        index_collection=record.index_collection,
        index_error=record.index_error,
        index_attempts=record.index_attempts,
        embedding_model_id=record.embedding_model_id,
        chunk_count=record.chunk_count,
        promoted_to_source_id=str(record.promoted_to_source_id)
        if record.promoted_to_source_id
        else None,
        created_by=view.creator,
        created_at=_time(record.created_at) or "",
        updated_at=_time(record.updated_at) or "",
    )


def _wake_indexer(request: Request) -> None:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.wake()


def _types(types: str | None) -> list[str] | None:
    return [part.strip() for part in types.split(",") if part.strip()] if types else None


Limit = Annotated[int, Query(ge=1, le=200, description="Maximum number of items (1-200)")]


def _page(
    db: Any,
    principal: Principal,
    org: str,
    workspace: str,
    namespace: str,
    thread_id: str | None,
    types: str | None,
    include_expired: bool,
    limit: int,
    cursor: str | None,
) -> ArtifactPage:
    _space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.VIEWER)
    views, total, following = agents.list_records(
        db,
        ns,
        thread_id=thread_id,
        types=_types(types),
        include_expired=include_expired,
        limit=limit,
        cursor=cursor,
    )
    return ArtifactPage(
        total=total,
        has_more=following is not None,
        next_cursor=following,
        artifacts=[artifact_out(view) for view in views],
    )


@router.get(f"{NS}/artifacts", response_model=ArtifactPage)
def list_artifacts(
    org: str,
    workspace: str,
    namespace: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    thread_id: str | None = None,
    types: Annotated[str | None, Query(description="Comma-separated types")] = None,
    include_expired: bool = False,
    limit: Limit = 50,
    cursor: str | None = None,
) -> ArtifactPage:
    """Latest versions of the namespace's artifacts, newest first, a page at a time."""
    return _page(
        db, principal, org, workspace, namespace, thread_id, types, include_expired, limit, cursor
    )


@router.get(f"{NS}/threads/{{thread_id}}/artifacts", response_model=ArtifactPage)
def list_thread_artifacts(
    org: str,
    workspace: str,
    namespace: str,
    thread_id: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    types: str | None = None,
    include_expired: bool = False,
    limit: Limit = 50,
    cursor: str | None = None,
) -> ArtifactPage:
    """The same listing, for one thread."""
    return _page(
        db, principal, org, workspace, namespace, thread_id, types, include_expired, limit, cursor
    )


@router.post(f"{NS}/artifacts", status_code=201, response_model=ArtifactOut)
def create_artifact(
    org: str,
    workspace: str,
    namespace: str,
    body: ArtifactCreate,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> ArtifactOut:
    """Create an artifact with inline content (the namespace comes into being if need be)."""
    with svc.database.write() as db:
        space, ns = agents.resolve(
            db, principal, org, workspace, namespace, Role.EDITOR, create=True
        )
        view = agents.create_record(db, svc.uploads, principal, space, ns, body)
        out = artifact_out(view)
    _wake_indexer(request)
    return out


def _store_file(services: Services) -> Any:
    """A ``store_file`` for :func:`read_form`: the bytes into the blob store, text kept aside."""

    def store(part: FilePart, data: Any) -> IncomingFile:
        content_type = part.content_type
        if content_type in ("", "application/octet-stream"):
            # curl -F and many clients send this for any file; the name says more.
            content_type = mimetypes.guess_type(part.file_name)[0] or "application/octet-stream"
        text_like = agents.is_text_type(content_type, part.file_name)
        head = bytearray()

        def tap() -> Any:
            for block in data:
                if text_like and len(head) < agents.TEXT_LIMIT:
                    head.extend(block[: agents.TEXT_LIMIT - len(head)])
                yield block

        meter = Meter(tap())
        blob = services.uploads.upload_blob(meter)
        text = head.decode("utf-8", "replace") if text_like else None
        return IncomingFile(blob.sha256, blob.size, part.file_name, content_type, text)

    return store


def _form_model(fields: dict[str, str], model: type[Changes]) -> Changes:
    """Form fields into the JSON model: lists and objects may be JSON or comma-separated."""
    values: dict[str, Any] = {}
    for name, raw in fields.items():
        if name in ("keywords", "tags"):
            stripped = raw.strip()
            values[name] = (
                json.loads(stripped)
                if stripped.startswith("[")
                else [part.strip() for part in stripped.split(",") if part.strip()]
            )
        elif name == "metadata":
            values[name] = json.loads(raw) if raw.strip() else {}
        elif name in ("ttl_seconds",):
            values[name] = int(raw) if raw.strip() else None
        elif name == "is_pinned":
            values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif name != "file":
            values[name] = raw
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise Invalid(problem["msg"], loc=("body", *problem["loc"])) from None


async def _read_upload(request: Request, svc: Services) -> tuple[dict[str, str], Any]:
    content_type = request.headers.get("content-type", "")
    return await consume_body_in_thread(
        request, lambda blocks: read_form(blocks, content_type, _store_file(svc))
    )


@router.post(f"{NS}/artifacts/upload", status_code=201, response_model=ArtifactOut)
async def create_artifact_with_file(
    org: str,
    workspace: str,
    namespace: str,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> ArtifactOut:
    """Create an artifact from a file (multipart/form-data: `file` plus the JSON fields)."""
    fields, file = await _read_upload(request, svc)
    if file is None:
        raise Invalid("the form needs a file field", loc=("body", "file"))
    body = _form_model({"name": file.file_name, **fields}, ArtifactCreate)

    def create() -> ArtifactOut:
        with svc.database.write() as db:
            space, ns = agents.resolve(
                db, principal, org, workspace, namespace, Role.EDITOR, create=True
            )
            return artifact_out(
                agents.create_record(db, svc.uploads, principal, space, ns, body, file)
            )

    out = await run_in_threadpool(create)
    _wake_indexer(request)
    return out


@router.get(f"{NS}/artifacts/{{artifact_id}}", response_model=ArtifactOut)
def get_artifact(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    principal: CurrentPrincipal,
    db: ReadDb,
) -> ArtifactOut:
    _space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.VIEWER)
    return artifact_out(agents.get_record(db, ns, artifact_id))


@router.put(f"{NS}/artifacts/{{artifact_id}}", response_model=ArtifactOut)
async def update_artifact(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
) -> ArtifactOut:
    """Change an artifact: new content or a new file make a new version; the rest is in place.

    Send JSON, or multipart/form-data with a `file` to replace the file.
    """
    file = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        fields, file = await _read_upload(request, svc)
        changes = _form_model(fields, ArtifactChanges)
    else:
        raw = await request.body()
        try:
            changes = ArtifactChanges.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise Invalid(problem["msg"], loc=("body", *problem["loc"])) from None

    def update() -> ArtifactOut:
        with svc.database.write() as db:
            space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.EDITOR)
            return artifact_out(
                agents.update_record(
                    db, svc.uploads, principal, space, ns, artifact_id, changes, file
                )
            )

    out = await run_in_threadpool(update)
    _wake_indexer(request)
    return out


@router.delete(f"{NS}/artifacts/{{artifact_id}}", status_code=204, response_class=Response)
def delete_artifact(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    principal: CurrentPrincipal,
    svc: Svc,
) -> Response:
    """Delete an artifact with all its versions."""
    with svc.database.write() as db:
        space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.EDITOR)
        agents.delete_record(db, principal, space, ns, artifact_id)
    return Response(status_code=204)


@router.get(f"{NS}/artifacts/{{artifact_id}}/versions", response_model=list[ArtifactOut])
def list_artifact_versions(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    principal: CurrentPrincipal,
    db: ReadDb,
) -> list[ArtifactOut]:
    """Every version of the artifact's lineage, oldest first."""
    _space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.VIEWER)
    return [artifact_out(view) for view in agents.list_versions(db, ns, artifact_id)]


@router.get(f"{NS}/artifacts/{{artifact_id}}/download", response_model=DownloadLink)
def download_link(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    request: Request,
    principal: CurrentPrincipal,
    db: ReadDb,
    svc: Svc,
    expires_in: Annotated[int, Query(ge=60, le=86400)] = 3600,
) -> DownloadLink:
    """A signed URL for the artifact's file (inline content comes as a text file)."""
    _space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.VIEWER)
    view = agents.get_record(db, ns, artifact_id)
    file = agents.record_file(db, view)
    resource = f"agent-files/{file.id}"
    query = svc.signer().query("GET", resource, expires_in=expires_in)
    base = (svc.settings.public_url or str(request.base_url)).rstrip("/")
    return DownloadLink(
        artifact_id=artifact_id,
        download_url=f"{base}/v1/signed/{resource}?{query}",
        expires_in=expires_in,
        file_name=file.path,
        content_type=file.content_type,
        file_size_bytes=file.size,
    )


@router.post(f"{NS}/artifacts/query", response_model=QueryResponse)
def query_artifacts(
    org: str,
    workspace: str,
    namespace: str,
    body: QueryRequest,
    principal: CurrentPrincipal,
    db: ReadDb,
    svc: Svc,
) -> QueryResponse:
    """Semantic and keyword search over the namespace's latest, unexpired artifacts."""
    _space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.VIEWER)
    hits, context = agent_query.query_artifacts(
        db,
        svc.embedder,
        ns,
        body.query,
        thread_id=body.thread_id,
        types=body.types,
        limit=body.limit,
        min_score=body.min_score,
    )
    results = [
        QueryResult(artifact=artifact_out(view), score=score, matched_chunk=chunk)
        for view, score, chunk in hits
    ]
    return QueryResponse(
        results=results, combined_context=context, total_results=len(results), query=body.query
    )


@router.post(f"{NS}/artifacts/{{artifact_id}}/promote", response_model=PromoteResult)
def promote_artifact(
    org: str,
    workspace: str,
    namespace: str,
    artifact_id: str,
    request: Request,
    principal: CurrentPrincipal,
    svc: Svc,
    body: PromoteRequest | None = None,
) -> PromoteResult:
    """Turn the artifact's content or file into a knowledge source of the namespace."""
    with svc.database.write() as db:
        space, ns = agents.resolve(db, principal, org, workspace, namespace, Role.EDITOR)
        view = agents.get_record(db, ns, artifact_id)
        options = body or PromoteRequest()
        source, created = promote(
            db, principal, space, view, name=options.name, description=options.description
        )
        result = PromoteResult(
            artifact_id=artifact_id,
            source_id=str(source.id),
            source_name=source.name,
            message=(
                f"Promoted artifact {artifact_id} to knowledge source {source.name}"
                if created
                else f"Artifact {artifact_id} was already promoted to"
                f" knowledge source {source.name}"
            ),
        )
    _wake_indexer(request)
    return result
