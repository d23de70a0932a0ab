"""Requests of the ML API, validated as its OpenAPI says (manifests, sources, frameworks).

Unset optional fields arrive as explicit ``null`` from the official clients and
are treated as absent. Patterns with look-aheads need Python's regex engine.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentSkillManifest",
    "ApplyRequest",
    "ArtifactManifest",
    "FilesRequest",
    "IdRequest",
    "Manifest",
    "MlRepoApply",
    "MlRepoManifest",
    "ModelManifest",
    "MultipartRequest",
    "SignedUrlsRequest",
    "StageRequest",
    "TagsRequest",
    "VersionManifest",
]

NAME = r"^[A-Za-z0-9_\-]+$"
ML_REPO = r"^[a-zA-Z][a-zA-Z0-9\-]{1,98}[a-zA-Z0-9]$"
ALIAS = r"^v[a-zA-Z0-9.-]*([a-zA-Z0-9]+)$"
SKILL_NAME = r"^(?!.*anthropic)(?!.*claude)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
STORAGE_URI = r"^(s3|gs|wasbs)://.*"
PYTHON_VERSION = r"^\d+(\.\d+){1,2}([\-\.a-z0-9]+)?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", regex_engine="python-re")


# -- sources ----------------------------------------------------------------------------


class TrueFoundryManagedSource(_Strict):
    type: Literal["truefoundry"]
    uri: str | None = Field(default=None, pattern=STORAGE_URI)


class ExternalBlobStorageSource(_Strict):
    type: Literal["external"]
    uri: str = Field(pattern=STORAGE_URI)


class LocalModelSource(_Strict):
    type: Literal["local"]
    file_or_folder: str


class ArtifactPath(_Strict):
    src: str
    dest: str | None = None


class LocalArtifactSource(_Strict):
    type: Literal["local"]
    paths: list[ArtifactPath]


class AgentSkillSourceInline(_Strict):
    type: Literal["inline"]
    skill_md: str = Field(min_length=1, max_length=20_000)


class AgentSkillSourceBlobStorage(_Strict):
    type: Literal["blob-storage"]
    description: str = Field(min_length=1, max_length=1024)
    uri: str = Field(min_length=1)


class AgentSkillSourceLocal(_Strict):
    type: Literal["local"]
    skill_dir: str = Field(min_length=1)


# -- frameworks -------------------------------------------------------------------------


class TransformersFramework(_Strict):
    type: Literal["transformers"]
    library_name: Literal["transformers", "sentence-transformers", "diffusers"] | None = (
        "transformers"
    )
    pipeline_tag: str | None = None
    base_model: str | None = None


class SklearnModelSchema(_Strict):
    infer_method_name: Literal["predict", "predict_proba"]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class SklearnFramework(_Strict):
    type: Literal["sklearn"]
    model_filepath: str | None = None
    serialization_format: Literal["cloudpickle", "joblib", "pickle"] | None = None
    model_schema: SklearnModelSchema | None = None


class XGBoostModelSchema(_Strict):
    infer_method_name: Literal["predict"]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class XGBoostFramework(_Strict):
    type: Literal["xgboost"]
    serialization_format: Literal["cloudpickle", "joblib", "pickle", "json"] | None = None
    model_filepath: str | None = None
    model_schema: XGBoostModelSchema | None = None


class TensorFlowFramework(_Strict):
    type: Literal["tensorflow"]


class PyTorchFramework(_Strict):
    type: Literal["pytorch"]


class KerasFramework(_Strict):
    type: Literal["keras"]


class LightGBMFramework(_Strict):
    type: Literal["lightgbm"]


class FastAIFramework(_Strict):
    type: Literal["fastai"]


class H2OFramework(_Strict):
    type: Literal["h2o"]


class ONNXFramework(_Strict):
    type: Literal["onnx"]


class SpaCyFramework(_Strict):
    type: Literal["spacy"]


class StatsModelsFramework(_Strict):
    type: Literal["statsmodels"]


class GluonFramework(_Strict):
    type: Literal["gluon"]


class PaddleFramework(_Strict):
    type: Literal["paddle"]


Framework = Annotated[
    TransformersFramework
    | TensorFlowFramework
    | SklearnFramework
    | PyTorchFramework
    | KerasFramework
    | XGBoostFramework
    | LightGBMFramework
    | FastAIFramework
    | H2OFramework
    | ONNXFramework
    | SpaCyFramework
    | StatsModelsFramework
    | GluonFramework
    | PaddleFramework,
    Field(discriminator="type"),
]


class ModelVersionEnvironment(_Strict):
    python_version: str | None = Field(default=None, pattern=PYTHON_VERSION)
    pip_packages: list[str] | None = None


# -- manifests --------------------------------------------------------------------------


class _VersionManifest(_Strict):
    name: str = Field(max_length=256, pattern=NAME)
    metadata: dict[str, Any]
    ml_repo: str = Field(pattern=ML_REPO)
    version: int | None = Field(default=None, ge=1)
    description: str | None = Field(default=None, max_length=512)
    version_alias: str | None = Field(default=None, max_length=128, pattern=ALIAS)
    step: int | None = Field(default=0, ge=0)
    run_id: str | None = None


class ArtifactManifest(_VersionManifest):
    """A generic artifact version."""

    type: Literal["artifact-version"] = "artifact-version"
    source: Annotated[
        TrueFoundryManagedSource | ExternalBlobStorageSource | LocalArtifactSource,
        Field(discriminator="type"),
    ]


class ModelManifest(_VersionManifest):
    """A model version, with its framework and runtime environment."""

    type: Literal["model-version"] = "model-version"
    source: Annotated[
        TrueFoundryManagedSource | ExternalBlobStorageSource | LocalModelSource,
        Field(discriminator="type"),
    ]
    framework: Framework | None = None
    environment: ModelVersionEnvironment | None = None


class AgentSkillManifest(_Strict):
    """An agent skill version: SKILL.md inline, or files in blob storage."""

    type: Literal["agent-skill"] = "agent-skill"
    name: str = Field(min_length=1, max_length=64, pattern=SKILL_NAME)
    metadata: dict[str, Any]
    ml_repo: str = Field(pattern=ML_REPO)
    version: int | None = Field(default=None, ge=1)
    source: Annotated[
        AgentSkillSourceInline | AgentSkillSourceBlobStorage | AgentSkillSourceLocal,
        Field(discriminator="type"),
    ]


VersionManifest = ArtifactManifest | ModelManifest | AgentSkillManifest
Manifest = Annotated[VersionManifest, Field(discriminator="type")]


class StageRequest(BaseModel):
    manifest: Manifest


class ApplyRequest(BaseModel):
    """A manifest to apply: finalize or update a version."""

    model_config = ConfigDict(populate_by_name=True)

    manifest: Manifest
    dry_run: bool | None = Field(default=False, alias="dryRun")


class MlRepoCollaborator(_Strict):
    subject: str = Field(min_length=1)
    role_id: str = Field(min_length=1)


class MlRepoManifest(_Strict):
    type: Literal["ml-repo"] = "ml-repo"
    name: str = Field(pattern=ML_REPO)
    description: str | None = Field(default=None, max_length=1000)
    storage_integration_fqn: str = Field(min_length=1)
    collaborators: list[MlRepoCollaborator] | None = None


class MlRepoApply(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    manifest: MlRepoManifest
    dry_run: bool | None = Field(default=False, alias="dryRun")


class IdRequest(BaseModel):
    id: str


class SignedUrlsRequest(BaseModel):
    id: str
    paths: list[str] = Field(max_length=1000)
    operation: Literal["READ", "WRITE"]


class MultipartRequest(BaseModel):
    id: str
    path: str
    num_parts: int = Field(ge=1, le=10_000)


class FilesRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    path: str | None = None
    limit: int | None = Field(default=None, ge=1, le=1000)
    page_token: str | None = Field(default=None, alias="pageToken")


class TagsRequest(BaseModel):
    artifact_version_id: str | None = None
    model_version_id: str | None = None
    tags: list[str] = Field(max_length=100)
    force: bool | None = False
