"""What goes in and out of the agent artifacts API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ArtifactChanges",
    "ArtifactCreate",
    "ArtifactOut",
    "ArtifactPage",
    "DownloadLink",
    "PromoteRequest",
    "PromoteResult",
    "QueryRequest",
    "QueryResponse",
    "QueryResult",
]

_Short = Field(default=None, max_length=500)
_Id = Field(default=None, max_length=200)


class ArtifactChanges(BaseModel):
    """Fields of an artifact a client may set; on update only those sent change."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    artifact_type: str | None = Field(default=None, min_length=1, max_length=100)
    thread_id: str | None = _Id
    content: str | None = Field(default=None, max_length=5_000_000)
    file_name: str | None = Field(default=None, max_length=1024)
    mime_type: str | None = Field(default=None, max_length=255)
    summary: str | None = Field(default=None, max_length=20_000)
    keywords: list[str] | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    source: str | None = _Short
    source_execution_id: str | None = _Id
    source_step_id: str | None = _Id
    source_tool: str | None = _Id
    scope: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=100)
    ttl_seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 24 * 3600)
    is_pinned: bool | None = None


class ArtifactCreate(ArtifactChanges):
    """Body of Create Artifact: a name, and content or (on /upload) a file."""

    name: str = Field(min_length=1, max_length=500)


class ArtifactOut(BaseModel):
    """The artifact record, every field of the document."""

    artifact_id: str
    workspace_id: str
    namespace_id: str
    thread_id: str | None
    name: str
    description: str | None
    artifact_type: str
    version: int
    root_artifact_id: str
    is_latest: bool
    replaced_by_version: int | None
    content: str | None
    content_preview: str | None
    content_text: str | None
    file_name: str | None
    mime_type: str | None
    size_bytes: int
    has_file: bool
    summary: str | None
    keywords: list[str]
    tags: list[str]
    metadata: dict[str, Any]
    source: str | None
    source_execution_id: str | None
    source_step_id: str | None
    source_tool: str | None
    scope: str | None
    status: str | None
    ttl_seconds: int | None
    expires_at: str | None
    is_pinned: bool
    is_expired: bool
    is_indexed: bool
    indexed_at: str | None
    index_collection: str | None
    index_error: str | None
    index_attempts: int
    embedding_model_id: str | None
    chunk_count: int
    promoted_to_source_id: str | None
    created_by: str | None
    created_at: str
    updated_at: str


class ArtifactPage(BaseModel):
    total: int
    has_more: bool
    next_cursor: str | None
    artifacts: list[ArtifactOut]


class DownloadLink(BaseModel):
    artifact_id: str
    download_url: str
    expires_in: int
    file_name: str
    content_type: str
    file_size_bytes: int


class QueryRequest(BaseModel):
    """Body of Query Artifacts."""

    query: str = Field(min_length=1, max_length=10_000)
    thread_id: str | None = _Id
    types: list[str] | None = None
    limit: int = Field(default=5, ge=1, le=50)
    min_score: float | None = Field(default=None, ge=0, le=1)


class QueryResult(BaseModel):
    artifact: ArtifactOut
    score: float
    matched_chunk: str


class QueryResponse(BaseModel):
    results: list[QueryResult]
    combined_context: str
    total_results: int
    query: str


class PromoteRequest(BaseModel):
    """Body of Promote Artifact To Source; both fields optional."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)


class PromoteResult(BaseModel):
    artifact_id: str
    source_id: str
    source_name: str
    message: str
