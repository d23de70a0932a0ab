"""Model records: create, update, list and summarise models; attach, list and delete their files.

A model record is a core artifact of kind ``model`` plus its :class:`ModelCard`.
Its "model artifacts" are files attached to the artifact itself (not to a
version), each described by a :class:`ModelFile`; its "product versions" are
the artifact's ready versions.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    bindparam,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Session

from depot.access.models import Role
from depot.access.service import (
    VISIBLE_SPACES,
    Principal,
    require,
    visible_space_params,
    visible_spaces,
)
from depot.blobs.models import Blob
from depot.catalog.models import Artifact, ArtifactKind, File, Org, Space, Version, VersionStatus
from depot.catalog.service import SpaceRef, insert_artifact, new_artifact
from depot.db.base import add_unique, utcnow
from depot.db.columns import execute_columns
from depot.errors import Invalid, NotFound, QuotaExceeded
from depot.model_records import listing_index
from depot.model_records.models import (
    CARD_DEFAULTS,
    NEW_CARD,
    ModelCard,
    ModelFile,
    compose_search_text,
)
from depot.model_records.schemas import ModelRecordChanges, ModelRecordCreate, ModelSummary

__all__ = [
    "CARD_FIELDS",
    "ModelFilters",
    "ModelFileView",
    "attach_model_file",
    "check_release",
    "create_model_record",
    "delete_model_file",
    "find_space",
    "find_uploaded_file",
    "get_model_file",
    "list_model_files",
    "list_model_records",
    "load_model",
    "model_format",
    "resolve_space",
    "slugify",
    "summarize",
    "update_model_record",
]

CARD_FIELDS = (
    "product_type",
    "provider",
    "environment",
    "risk_classification",
    "lifecycle_stage",
    "model_family",
    "model_task_type",
    "model_architecture",
    "framework",
    "long_description",
    "intended_use",
    "limitations",
    "deployment_status",
    "serving_url",
    "input_schema",
    "output_schema",
    "ai_system_type",
    "vendor_name",
    "vendor_product_name",
    "vendor_model_id",
    "deployment_environment",
    "business_use_case",
    "is_gpai",
)
_MODEL_FORMATS = {
    ".onnx": "onnx",
    ".safetensors": "safetensors",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".bin": "bin",
    ".gguf": "gguf",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".h5": "keras",
    ".keras": "keras",
    ".pb": "tensorflow",
    ".tflite": "tflite",
    ".mlmodel": "coreml",
    ".pmml": "pmml",
    ".json": "json",
    ".ckpt": "checkpoint",
    ".npz": "numpy",
    ".zip": "zip",
    ".tar": "tar",
    ".gz": "gzip",
}


@dataclass(frozen=True)
class ModelFilters:
    """The listing filters of the Model Repository API."""

    q: str | None = None
    model_family: str | None = None
    types: Sequence[str] = ()
    deployment_status: str | None = None
    model_task_type: str | None = None
    risk_classification: str | None = None
    include_archived: bool = False

    def card_values(self) -> dict[str, tuple[str, ...]]:
        """The card columns these filters test, each with the values it may hold."""
        values = {
            "model_family": (self.model_family,) if self.model_family else (),
            "product_type": tuple(self.types),
            "deployment_status": (self.deployment_status,) if self.deployment_status else (),
            "model_task_type": (self.model_task_type,) if self.model_task_type else (),
            "risk_classification": (
                (self.risk_classification,) if self.risk_classification else ()
            ),
        }
        return {column: accepted for column, accepted in values.items() if accepted}


@dataclass(frozen=True)
class ModelFileView:
    """A file attached to a model, with what the Model Repository API says about it."""

    file: File
    info: ModelFile
    metadata: dict[str, Any] = field(default_factory=dict)


def slugify(name: str) -> str:
    """``"Churn Prediction Model"`` → ``"churn-prediction-model"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:256].strip("-") or "model"


# -- spaces and access --------------------------------------------------------------------


def find_space(db: Session, principal: Principal, ref: str) -> SpaceRef:
    """Find a space by slug among those the caller may view, as a plain row (for reads).

    ``ref`` is a space slug, or ``ORG:SLUG`` when the caller sees spaces of that
    slug in more than one org.

    Raises:
        NotFound: no visible space has that slug.
        Invalid: the slug is ambiguous; the message names the orgs to choose from.
    """
    org_slug, _, slug = ref.rpartition(":")
    visible = visible_space_params(principal)
    params: dict[str, Any] = {"slug": slug, "org_slug": org_slug, **(visible or {})}
    statement = _spaces_by_slug(visible is not None, bool(org_slug))
    rows = execute_columns(db, statement, params).all()
    if not rows:
        raise NotFound(f"space {ref} not found")
    if len(rows) > 1:
        orgs = ", ".join(row[3] for row in rows)
        raise Invalid(
            f"space slug {slug!r} exists in several of your orgs ({orgs});"
            f" name one as ORG:SLUG, e.g. {rows[0][3]}:{slug}",
            loc=("path", "slug"),
        )
    return SpaceRef(*rows[0][:3])


def resolve_space(db: Session, principal: Principal, ref: str) -> Space:
    """:func:`find_space` as the mapped space, for a write into it."""
    space = db.get(Space, find_space(db, principal, ref).id)
    if space is None:  # deleted since the row was read: only a write's session can tell
        raise NotFound(f"space {ref} not found")
    return space


@functools.cache
def _spaces_by_slug(restricted: bool, in_org: bool) -> Select[int, int, str, str]:
    """Spaces named ``:slug`` (id, org id, slug) with their org's slug, built once per
    shape (see _listing)."""
    query = (
        select(Space.id, Space.org_id, Space.slug, Org.slug)
        .join(Org, Org.id == Space.org_id)
        .where(Space.slug == bindparam("slug"))
        .order_by(Org.slug)
    )
    if restricted:
        query = query.where(VISIBLE_SPACES)
    if in_org:
        query = query.where(Org.slug == bindparam("org_slug"))
    return query


def load_model(
    db: Session, principal: Principal, product_id: uuid.UUID, role: Role
) -> tuple[Artifact, Space]:
    """The model artifact ``product_id`` and its space, if the caller holds ``role`` on it.

    Raises:
        NotFound: no such model, or the caller may not see it.
        Forbidden: the caller may see it but lacks ``role``.
    """
    artifact = db.get(Artifact, product_id)
    space = db.get(Space, artifact.space_id) if artifact is not None else None
    what = f"product {product_id}"
    if artifact is None or space is None or artifact.kind != ArtifactKind.MODEL:
        raise NotFound(f"{what} not found")
    require(principal, space, role, artifact_id=artifact.id, what=what)
    return artifact, space


# -- records ------------------------------------------------------------------------------


def create_model_record(
    db: Session,
    space: Space,
    body: ModelRecordCreate,
    *,
    created_by_id: int | None,
    product_limit: int = 0,
) -> Artifact:
    """Create a model artifact with its card in ``space``.

    Args:
        product_limit: the most models a space may hold; 0 means no limit.

    Raises:
        QuotaExceeded: the space holds ``product_limit`` models already.
        Conflict: the slug is taken in the space.
        Invalid: the slug is not valid.
    """
    if product_limit:
        held = (
            db.scalar(
                select(func.count())
                .select_from(Artifact)
                .where(Artifact.space_id == space.id, Artifact.kind == ArtifactKind.MODEL)
            )
            or 0
        )
        if held >= product_limit:
            raise QuotaExceeded(
                f"space {space.slug} has reached its catalog product limit of {product_limit}"
            )
    artifact = new_artifact(
        space,
        body.slug or slugify(body.name),
        ArtifactKind.MODEL,
        description=body.description or "",
        created_by_id=created_by_id,
        display_name=body.name,
    )
    values = {name: getattr(body, name) for name in CARD_FIELDS}
    for name, default in CARD_DEFAULTS.items():
        values[name] = values[name] or default
    values["search_text"] = compose_search_text(artifact, ModelCard(**values))
    # The card is inserted with the artifact, filled in (see depot.model_records.models).
    inspect(artifact).info[NEW_CARD] = values
    insert_artifact(db, space, artifact)
    return artifact


def _card(db: Session, artifact: Artifact) -> ModelCard:
    """The model's card; one with the defaults if it has none (rows older than cards)."""
    card = db.get(ModelCard, artifact.id)
    if card is None:
        card = ModelCard(
            artifact_id=artifact.id,
            space_id=artifact.space_id,
            created_at=artifact.created_at,
            archived_at=artifact.archived_at,
            **CARD_DEFAULTS,
        )
        db.add(card)
    return card


def update_model_record(db: Session, artifact: Artifact, changes: ModelRecordChanges) -> None:
    """Apply the fields present in ``changes``; absent fields keep their values."""
    sent = changes.model_fields_set
    card = _card(db, artifact)
    for name in CARD_FIELDS:
        if name in sent:
            value = getattr(changes, name)
            setattr(card, name, value if value is not None else CARD_DEFAULTS.get(name))
    if "name" in sent and changes.name is not None:
        artifact.display_name = changes.name
    if "description" in sent:
        artifact.description = changes.description or ""
    if "is_archived" in sent and changes.is_archived is not None:
        if changes.is_archived and artifact.archived_at is None:
            artifact.archived_at = utcnow()
        elif not changes.is_archived:
            artifact.archived_at = None
    artifact.updated_at = utcnow()
    card.archived_at = artifact.archived_at
    card.search_text = compose_search_text(artifact, card)
    db.flush()


_Row = Row[*tuple[Any, ...]]
# Newest first; the id breaks ties, so the order never changes between pages.
_NEWEST_FIRST = (ModelCard.created_at.desc(), ModelCard.artifact_id.desc())
# Past this many matches in several spaces, a page walks all models newest first instead of
# sorting the matches (see _Listing).
_SORT_AT_MOST = 2000


@dataclass(frozen=True)
class _Listing:
    """The statements of one shape of listing: which filters, ``q`` or not, how spaces are
    tested. Their values are parameters (:meth:`params`), so each shape is built once:
    building a select costs more Python than running it (0.18 ms against 0.04 for a count,
    measured), and a built statement also hits SQLAlchemy's compiled cache at once."""

    count: Select[int]
    page: Select[uuid.UUID]
    # The page with the number of matches on each row: one pass where the text test is the
    # costly part.
    counted_page: Select[uuid.UUID, int]

    @staticmethod
    def params(
        filters: ModelFilters, space_ids: Sequence[int], skip: int, limit: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"space_ids": list(space_ids), "skip": skip, "limit": limit}
        for column, accepted in filters.card_values().items():
            params[column] = accepted[0] if len(accepted) == 1 else list(accepted)
        if filters.q:
            params["q"] = _like(filters.q)
        return params


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _listing_for(filters: ModelFilters, *, walk_newest: bool = False) -> _Listing:
    shape = tuple((column, len(accepted) > 1) for column, accepted in filters.card_values().items())
    return _listing(shape, bool(filters.q), filters.include_archived, walk_newest)


@functools.lru_cache(maxsize=512)
def _listing(
    shape: tuple[tuple[str, bool], ...], q: bool, include_archived: bool, walk_newest: bool
) -> _Listing:
    """``shape``: each card column tested, and whether it may hold several values.

    ``walk_newest``: several spaces with many matches. SQLite would read each space's
    matches from ix_model_cards_listing and sort them all; with "+ 0" the space test cannot
    use an index, so SQLite walks ix_model_cards_recent newest first, tests the space inside
    the index and stops after the page. PostgreSQL weighs both plans by itself.
    """
    space = ModelCard.space_id + 0 if walk_newest else ModelCard.space_id
    where: list[ColumnElement[bool]] = [space.in_(bindparam("space_ids", expanding=True))]
    if not include_archived:
        where.append(ModelCard.archived_at.is_(None))
    for column, several in shape:
        card_column = getattr(ModelCard, column)
        if several:
            where.append(card_column.in_(bindparam(column, expanding=True)))
        else:
            where.append(card_column == bindparam(column))
    if q:
        where.append(ModelCard.search_text.like(bindparam("q"), escape="\\"))
    skip: BindParameter[int] = bindparam("skip")
    limit: BindParameter[int] = bindparam("limit")
    return _Listing(
        count=select(func.count()).select_from(ModelCard).where(*where),
        page=select(ModelCard.artifact_id)
        .where(*where)
        .order_by(*_NEWEST_FIRST)
        .offset(skip)
        .limit(limit),
        counted_page=select(ModelCard.artifact_id, func.count().over())
        .where(*where)
        .order_by(*_NEWEST_FIRST)
        .offset(skip)
        .limit(limit),
    )


def list_model_records(
    db: Session,
    principal: Principal,
    filters: ModelFilters,
    *,
    space: SpaceRef | None = None,
    org: Org | None = None,
    skip: int = 0,
    limit: int = 50,
) -> tuple[list[ModelSummary], int]:
    """One page of model summaries in a space, or across the org's spaces the caller may view.

    Returns:
        The page, newest first, and the total number of matching models.
    """
    if space is not None:
        found = listing_index.listing_page(
            db,
            space.id,
            filters.card_values(),
            q=filters.q,
            include_archived=filters.include_archived,
            skip=skip,
            limit=limit,
        )
        if found is not None:
            ids, total = found
            return summarize(db, ids), total
        space_ids = [space.id]
    elif org is not None:
        space_ids = list(
            db.scalars(select(Space.id).where(Space.org_id == org.id, visible_spaces(principal)))
        )
    else:
        raise ValueError("list the models of a space or of an org")
    if not space_ids:
        return [], 0
    statements = _listing_for(filters)
    params = _Listing.params(filters, space_ids, skip, limit)
    if filters.q:
        rows = execute_columns(db, statements.counted_page, params).all()
        if rows or skip == 0:
            total = int(rows[0][1]) if rows else 0
            return summarize(db, [row[0] for row in rows]), total
    total = execute_columns(db, statements.count, params).scalar() or 0
    if total <= skip:
        return [], total
    if len(space_ids) > 1 and total > _SORT_AT_MOST and db.get_bind().dialect.name == "sqlite":
        statements = _listing_for(filters, walk_newest=True)
    return summarize(db, list(execute_columns(db, statements.page, params).scalars())), total


# The three statements of a page's summaries, built once: building a select with window
# functions and subqueries costs more Python than running it (a few ms a page). The ids
# arrive through an expanding bind parameter, so SQLAlchemy's compiled cache is hit too.
_IDS: BindParameter[list[uuid.UUID]] = bindparam("ids", expanding=True)
_MODELS = (
    select(
        Artifact.id,
        Artifact.name,
        Artifact.display_name,
        Artifact.description,
        Artifact.archived_at,
        Artifact.created_at,
        Artifact.updated_at,
        Space.id.label("space_id"),
        Space.slug.label("space_slug"),
        Space.name.label("space_name"),
        *(getattr(ModelCard, name) for name in CARD_FIELDS),
    )
    .join(Space, Space.id == Artifact.space_id)
    .outerjoin(ModelCard, ModelCard.artifact_id == Artifact.id)
    .where(Artifact.id.in_(_IDS))
)
_ranked_versions = (
    select(
        Version.artifact_id,
        Version.id,
        Version.number,
        Version.release_type,
        Version.released_at,
        Version.finalized_at,
        func.count().over(partition_by=Version.artifact_id).label("n"),
        func.row_number()
        .over(partition_by=Version.artifact_id, order_by=Version.number.desc())
        .label("rn"),
    )
    .where(Version.artifact_id.in_(_IDS), Version.status == VersionStatus.READY)
    .subquery()
)
# Per model: its number of ready versions and the newest of them.
_RELEASES = select(_ranked_versions).where(_ranked_versions.c.rn == 1)
_ranked_files = (
    select(
        ModelFile.artifact_id,
        ModelFile.artifact_kind,
        File.id,
        File.path,
        File.content_type,
        File.blob_sha256,
        File.size,
        File.metadata_.label("file_metadata"),
        func.count().over(partition_by=ModelFile.artifact_id).label("n"),
        func.row_number()
        .over(
            partition_by=ModelFile.artifact_id,
            order_by=(ModelFile.is_current.desc(), ModelFile.uploaded_at.desc()),
        )
        .label("rn"),
    )
    .join(File, File.id == ModelFile.file_id)
    .where(ModelFile.artifact_id.in_(_IDS))
    .subquery()
)
# Per model: its number of files and the current one, or the newest when none is.
_FILES = select(_ranked_files).where(_ranked_files.c.rn == 1)


def summarize(
    db: Session, artifact_ids: Sequence[uuid.UUID], *, new: bool = False
) -> list[ModelSummary]:
    """Summaries of the given models, in the given order, computed from their data.

    Args:
        new: the models were created in this transaction, so they have no versions
            and no files yet (nothing is read for those).
    """
    if not artifact_ids:
        return []
    ids = {"ids": list(artifact_ids)}
    found = {row.id: row for row in execute_columns(db, _MODELS, ids)}
    versions = {} if new else {row.artifact_id: row for row in execute_columns(db, _RELEASES, ids)}
    files = {} if new else {row.artifact_id: row for row in execute_columns(db, _FILES, ids)}
    return [
        _summary(found[artifact_id], versions.get(artifact_id), files.get(artifact_id))
        for artifact_id in artifact_ids
        if artifact_id in found
    ]


def _format_of(metadata: dict[str, Any], path: str) -> str | None:
    declared = metadata.get("format")
    if isinstance(declared, str) and declared:
        return declared
    return _MODEL_FORMATS.get(PurePosixPath(path).suffix.lower())


def model_format(view: ModelFileView) -> str | None:
    """The file's model format: ``metadata["format"]`` if given, else from its extension."""
    return _format_of(view.metadata, view.file.path)


def _summary(model: _Row, version: _Row | None, file: _Row | None) -> ModelSummary:
    card_values: dict[str, Any] = {name: getattr(model, name) for name in CARD_FIELDS}
    for name, default in CARD_DEFAULTS.items():
        card_values[name] = card_values[name] or default
    return ModelSummary(
        id=model.id,
        slug=model.name,
        name=model.display_name or model.name,
        description=model.description or None,
        space_id=model.space_id,
        space_slug=model.space_slug,
        space_name=model.space_name,
        **card_values,
        version_count=version.n if version else 0,
        current_version_id=version.id if version else None,
        current_version_number=version.number if version else None,
        current_version_type=version.release_type if version else None,
        current_version_release_date=(
            (version.released_at or version.finalized_at) if version else None
        ),
        artifact_count=file.n if file else 0,
        current_artifact_id=file.id if file else None,
        current_artifact_file_name=file.path if file else None,
        current_artifact_kind=file.artifact_kind if file else None,
        current_artifact_content_type=file.content_type if file else None,
        current_artifact_model_format=_format_of(file.file_metadata, file.path) if file else None,
        current_artifact_sha256=file.blob_sha256 if file else None,
        current_artifact_size_bytes=file.size if file else None,
        is_archived=model.archived_at is not None,
        archived_at=model.archived_at,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


# -- attached files -----------------------------------------------------------------------


def check_release(db: Session, artifact: Artifact, version_id: uuid.UUID | None) -> None:
    """Check that ``version_id`` (if given) is a ready version of ``artifact``.

    Raises:
        Invalid: it is not.
    """
    if version_id is None:
        return
    version = db.get(Version, version_id)
    if (
        version is None
        or version.artifact_id != artifact.id
        or version.status != (VersionStatus.READY)
    ):
        raise Invalid(
            f"product_version_id {version_id} is not a version of this product",
            loc=("body", "product_version_id"),
        )


def attach_model_file(
    db: Session,
    artifact: Artifact,
    blob_sha256: str,
    *,
    file_name: str,
    content_type: str,
    artifact_kind: str,
    version_label: str | None,
    version_id: uuid.UUID | None,
    training_run_id: uuid.UUID | None,
    external_uri: str | None,
    is_current: bool,
    metadata: dict[str, Any],
    upload_id: uuid.UUID | None,
    uploaded_by_id: int | None,
) -> ModelFileView:
    """Attach a stored blob to a model as a model file; ``is_current`` demotes the previous one.

    Raises:
        NotFound: the blob is not recorded.
        Invalid: ``version_id`` is not a ready version of the model.
        Conflict: a file was already attached from ``upload_id``.
    """
    blob = db.get(Blob, blob_sha256)
    if blob is None:
        raise NotFound(f"blob {blob_sha256} not found")
    check_release(db, artifact, version_id)
    now = utcnow()
    if is_current:
        db.execute(
            update(ModelFile)
            .where(ModelFile.artifact_id == artifact.id, ModelFile.is_current.is_(True))
            .values(is_current=False)
        )
    file = File(
        id=uuid.uuid4(),
        artifact_id=artifact.id,
        version_id=None,
        path=file_name,
        blob_sha256=blob.sha256,
        size=blob.size,
        content_type=content_type,
        metadata_=dict(metadata),
        created_by_id=uploaded_by_id,
        created_at=now,
        updated_at=now,
    )
    info = ModelFile(
        file_id=file.id,
        artifact_id=artifact.id,
        artifact_kind=artifact_kind,
        version_label=version_label,
        version_id=version_id,
        training_run_id=training_run_id,
        external_uri=external_uri,
        is_current=is_current,
        upload_id=upload_id,
        uploaded_by_id=uploaded_by_id,
        uploaded_at=now,
    )
    add_unique(db, [file, info], f"upload {upload_id} already produced a model file")
    artifact.updated_at = now
    return ModelFileView(file, info, file.metadata_)


def list_model_files(db: Session, artifact: Artifact) -> list[ModelFileView]:
    """Every file attached to the model, newest first."""
    rows = db.execute(
        select(File, ModelFile)
        .join(ModelFile, ModelFile.file_id == File.id)
        .where(ModelFile.artifact_id == artifact.id)
        .order_by(ModelFile.uploaded_at.desc(), File.id)
    ).all()
    return [ModelFileView(file, info, file.metadata_) for file, info in rows]


def get_model_file(db: Session, artifact: Artifact, file_id: uuid.UUID) -> ModelFileView:
    """One attached file of the model.

    Raises:
        NotFound: the model has no such file.
    """
    row = db.execute(
        select(File, ModelFile)
        .join(ModelFile, ModelFile.file_id == File.id)
        .where(File.id == file_id, ModelFile.artifact_id == artifact.id)
    ).first()
    if row is None:
        raise NotFound(f"artifact {file_id} not found")
    return ModelFileView(row[0], row[1], row[0].metadata_)


def find_uploaded_file(db: Session, upload_id: uuid.UUID) -> ModelFileView | None:
    """The model file an upload produced, if it has completed into one."""
    row = db.execute(
        select(File, ModelFile)
        .join(ModelFile, ModelFile.file_id == File.id)
        .where(ModelFile.upload_id == upload_id)
    ).first()
    return ModelFileView(row[0], row[1], row[0].metadata_) if row else None


def delete_model_file(db: Session, artifact: Artifact, file_id: uuid.UUID) -> None:
    """Detach a file from the model; its blob loses a reference (gc collects it if unused)."""
    view = get_model_file(db, artifact, file_id)
    db.delete(view.file)
    artifact.updated_at = utcnow()
    db.flush()
