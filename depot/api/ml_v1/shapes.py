"""The ML API's entities, shaped as the official clients parse them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from depot.access.models import User
from depot.catalog.models import Artifact, ArtifactKind, Org, Space
from depot.ml.repos import Creator, MlRepoRow
from depot.ml.transfers import FileEntry
from depot.ml.versions import FQN_PREFIX, VersionRecord, storage_root

__all__ = ["artifact_shape", "file_shape", "ml_repo_shape", "subject", "version_shape"]

_ID_FIELD = {
    ArtifactKind.ARTIFACT: "artifact_id",
    ArtifactKind.MODEL: "model_id",
    ArtifactKind.AGENT_SKILL: "agent_skill_id",
}
_MANIFEST_TYPE = {
    ArtifactKind.ARTIFACT: "artifact-version",
    ArtifactKind.MODEL: "model-version",
    ArtifactKind.AGENT_SKILL: "agent-skill",
}


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def subject(user: User | Creator | None) -> dict[str, Any]:
    """``created_by_subject``: who did it (a deleted user shows as a virtual account)."""
    if user is None:
        return {
            "subjectId": "0",
            "subjectType": "virtualaccount",
            "subjectSlug": "deleted",
            "subjectDisplayName": "deleted user",
        }
    return {
        "subjectId": str(user.id),
        "subjectType": "serviceaccount" if user.is_service_account else "user",
        "subjectSlug": user.username,
        "subjectDisplayName": user.display_name or user.username,
    }


def ml_repo_shape(repo: MlRepoRow) -> dict[str, Any]:
    stored = dict(repo.metadata_.get("ml_repo") or {})
    manifest = {
        "type": "ml-repo",
        "name": repo.slug,
        "description": repo.description or None,
        "storage_integration_fqn": stored.get("storage_integration_fqn", "depot:default"),
        "collaborators": stored.get("collaborators") or [],
    }
    return {
        "id": str(repo.id),
        "tenant_name": repo.org_slug,
        "manifest": manifest,
        "created_by_subject": subject(repo.creator),
        "created_at": _time(repo.created_at),
        "updated_at": _time(repo.updated_at),
        "account_id": str(repo.org_id),
        "num_runs": 0,
        "datasets_count": 0,
    }


def version_shape(record: VersionRecord) -> dict[str, Any]:
    """An ArtifactVersion, ModelVersion or AgentSkillVersion."""
    version, artifact, space = record.version, record.artifact, record.space
    kind = ArtifactKind(artifact.kind)
    manifest = dict(version.manifest)
    source = manifest.get("source") or {}
    if source.get("type") not in ("external", "inline"):
        manifest["source"] = {
            **source,
            "type": source.get("type", "truefoundry"),
            "uri": storage_root(version, artifact),
        }
    manifest.update(
        type=_MANIFEST_TYPE[kind],
        name=artifact.name,
        ml_repo=space.slug,
        version=version.number,
        metadata=dict(version.metadata_),
    )
    if kind != ArtifactKind.AGENT_SKILL:
        manifest["description"] = version.description or None
        manifest["version_alias"] = version.label
        manifest.setdefault("step", 0)
    shape: dict[str, Any] = {
        "id": str(version.id),
        "fqn": record.fqn,
        "manifest": manifest,
        "created_by_subject": subject(record.creator),
        "ml_repo_id": str(space.id),
        _ID_FIELD[kind]: str(artifact.id),
        "created_at": _time(version.created_at),
        "updated_at": _time(version.updated_at),
        "tags": list(version.tags),
    }
    if kind == ArtifactKind.MODEL:
        shape.update(metrics=[], deployable=False)
    if kind == ArtifactKind.AGENT_SKILL:
        shape["usage_code_snippets"] = [
            {
                "display_name": "Download with the tfy CLI",
                "language": "bash",
                "code": f'tfy download skill --fqn "{record.fqn}" --dir .',
            }
        ]
    else:
        getter = f"get_{FQN_PREFIX[kind]}_version_by_fqn"
        shape["usage_code_snippet"] = (
            "from truefoundry.ml import get_client\n\n"
            f'version = get_client().{getter}("{record.fqn}")\n'
            'version.download(path=".")'
        )
    return shape


def artifact_shape(
    artifact: Artifact, space: Space, org: Org, creator: User | None, latest: VersionRecord | None
) -> dict[str, Any]:
    """An Artifact, Model or AgentSkill container."""
    kind = ArtifactKind(artifact.kind)
    return {
        "id": str(artifact.id),
        "ml_repo_id": str(space.id),
        "type": FQN_PREFIX[kind],
        "name": artifact.name,
        "fqn": f"{FQN_PREFIX[kind]}:{org.slug}/{space.slug}/{artifact.name}",
        "created_by_subject": subject(creator),
        "created_at": _time(artifact.created_at),
        "updated_at": _time(artifact.updated_at),
        "latest_version": version_shape(latest) if latest is not None else None,
        "run_steps": [],
    }


def file_shape(entry: FileEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "is_dir": entry.is_dir,
        "file_size": entry.size,
        "signed_url": None,
        "last_modified": _time(entry.last_modified),
    }
