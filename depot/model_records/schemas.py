"""What goes in and out of model records, in the Model Repository API's own words."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ARTIFACT_KINDS",
    "MODEL_FAMILIES",
    "PRODUCT_TYPES",
    "ArtifactKind",
    "ModelFamily",
    "ModelFileOut",
    "ModelRecordChanges",
    "ModelRecordCreate",
    "ModelSummary",
    "ProductType",
    "UploadCompletion",
    "UploadSessionOut",
    "UploadStart",
]

ProductType = Literal["ML Model", "AI System", "LLM Agent", "AI App", "Agent", "Prompt Collection"]
ModelFamily = Literal[
    "traditional_ml",
    "genai",
    "foundation_model",
    "embedding_model",
    "agent",
    "ai_app",
    "prompt_collection",
    "other",
]
ArtifactKind = Literal[
    "model_binary",
    "weights",
    "checkpoint",
    "adapter",
    "tokenizer",
    "prompt_bundle",
    "eval_report",
    "model_card",
    "other",
]
PRODUCT_TYPES: tuple[str, ...] = ProductType.__args__  # type: ignore[attr-defined]
MODEL_FAMILIES: tuple[str, ...] = ModelFamily.__args__  # type: ignore[attr-defined]
ARTIFACT_KINDS: tuple[str, ...] = ArtifactKind.__args__  # type: ignore[attr-defined]

# Text columns are bounded so one request cannot store megabytes in a field.
_Short = Field(default=None, max_length=500)
_Long = Field(default=None, max_length=20_000)


class _Fields(BaseModel):
    """The model record fields that create and update share, all optional."""

    model_config = ConfigDict(extra="ignore")

    description: str | None = _Long
    long_description: str | None = _Long
    product_type: ProductType | None = None
    provider: str | None = _Short
    environment: str | None = Field(default=None, max_length=100)
    risk_classification: str | None = Field(default=None, max_length=100)
    lifecycle_stage: str | None = Field(default=None, max_length=100)
    model_family: ModelFamily | None = None
    model_task_type: str | None = Field(default=None, max_length=100)
    model_architecture: str | None = _Short
    framework: str | None = _Short
    intended_use: str | None = _Long
    limitations: str | None = _Long
    deployment_status: str | None = Field(default=None, max_length=100)
    serving_url: str | None = Field(default=None, max_length=2000)
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    ai_system_type: str | None = Field(default=None, max_length=200)
    vendor_name: str | None = _Short
    vendor_product_name: str | None = _Short
    vendor_model_id: str | None = _Short
    deployment_environment: str | None = Field(default=None, max_length=200)
    business_use_case: str | None = _Long
    is_gpai: bool | None = None


class ModelRecordCreate(_Fields):
    """Body of "Create Model Metadata"."""

    name: str = Field(min_length=1, max_length=500)
    slug: str | None = Field(default=None, max_length=256)


class ModelRecordChanges(_Fields):
    """Body of "Update Model Metadata": only the fields sent change.

    ``is_archived`` is Depot's addition: archived models drop out of listings
    unless ``include_archived=true``.
    """

    name: str | None = Field(default=None, min_length=1, max_length=500)
    is_archived: bool | None = None


class ModelSummary(BaseModel):
    """``ModelRepositoryModelSummary``: every field group of the document."""

    id: uuid.UUID
    slug: str
    name: str
    description: str | None
    long_description: str | None
    product_type: str
    provider: str | None
    space_id: int
    space_slug: str
    space_name: str
    risk_classification: str | None
    lifecycle_stage: str | None
    environment: str
    deployment_status: str
    model_family: str | None
    model_task_type: str | None
    model_architecture: str | None
    framework: str | None
    intended_use: str | None
    limitations: str | None
    serving_url: str | None
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    ai_system_type: str | None
    vendor_name: str | None
    vendor_product_name: str | None
    vendor_model_id: str | None
    deployment_environment: str | None
    business_use_case: str | None
    is_gpai: bool | None
    version_count: int
    current_version_id: uuid.UUID | None
    current_version_number: int | None
    current_version_type: str | None
    current_version_release_date: datetime | None
    artifact_count: int
    current_artifact_id: uuid.UUID | None
    current_artifact_file_name: str | None
    current_artifact_kind: str | None
    current_artifact_content_type: str | None
    current_artifact_model_format: str | None
    current_artifact_sha256: str | None
    current_artifact_size_bytes: int | None
    is_archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UploadStart(BaseModel):
    """Body of "Initiate Upload"."""

    file_name: str = Field(min_length=1, max_length=1024)
    content_type: str = Field(min_length=1, max_length=255)
    total_size_bytes: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    artifact_kind: ArtifactKind = "model_binary"
    version_label: str | None = Field(default=None, max_length=200)
    product_version_id: uuid.UUID | None = None
    training_run_id: uuid.UUID | None = None
    is_current: bool = False
    external_uri: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None


class UploadCompletion(BaseModel):
    """Body of "Complete Upload"; both fields optional."""

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    is_current: bool | None = None


class UploadSessionOut(BaseModel):
    """``ModelArtifactUploadSessionResponse``."""

    id: uuid.UUID
    product_id: uuid.UUID
    file_name: str
    content_type: str
    total_size_bytes: int
    chunk_size_bytes: int
    expected_sha256: str | None
    received_bytes: int
    received_chunks: list[int]
    status: Literal["initialized", "uploading", "completed", "failed", "expired"]
    expires_at: datetime
    created_at: datetime
    completed_at: datetime | None


class ModelFileOut(BaseModel):
    """``ModelArtifactResponse``."""

    id: uuid.UUID
    product_id: uuid.UUID
    product_version_id: uuid.UUID | None
    training_run_id: uuid.UUID | None
    artifact_kind: str
    version_label: str | None
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_backend: str
    storage_uri: str
    external_uri: str | None
    status: Literal["available", "deleted", "failed"]
    is_current: bool
    metadata: dict[str, Any]
    uploaded_by_id: int | None
    uploaded_at: datetime
    created_at: datetime
    updated_at: datetime
