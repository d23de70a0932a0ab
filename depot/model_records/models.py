"""Tables of model records: the governance card of a model, and its attached model files.

Every model artifact has a card: :func:`_card_for_new_model` adds one, with the defaults,
whenever a model artifact is inserted, whichever surface creates it. Listings then read one
table: the card carries copies of its artifact's space, creation time and archive time, and
two covering indexes answer every filter, count and page without touching another table.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    insert,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from depot.catalog.models import Artifact, ArtifactKind
from depot.db.base import Base, Json, UTCDateTime, utcnow

__all__ = [
    "CARD_DEFAULTS",
    "NEW_CARD",
    "LISTED_COLUMNS",
    "SEARCHED_FIELDS",
    "ModelCard",
    "ModelFile",
    "ModelListingDeletion",
    "ModelListingGeneration",
    "compose_search_text",
]

# The key, in a new artifact's ``inspect(artifact).info``, of the values its card is
# inserted with; without it the card gets the defaults and a search text of its own.
NEW_CARD = "depot.model_card"
# What a card says when nobody said otherwise (a model created by another surface).
CARD_DEFAULTS = {
    "product_type": "ML Model",
    "environment": "development",
    "deployment_status": "development",
}
# The fields `q` searches, besides the name and description of the artifact itself.
SEARCHED_FIELDS = (
    "long_description",
    "intended_use",
    "limitations",
    "model_architecture",
    "framework",
    "provider",
)
# The filter columns the listing indexes carry, so filters are checked inside the index.
LISTED_COLUMNS = (
    "archived_at",
    "model_family",
    "product_type",
    "deployment_status",
    "model_task_type",
    "risk_classification",
)


class ModelCard(Base):
    """Governance and descriptive metadata of one model artifact (a catalog "product")."""

    __tablename__ = "model_cards"
    __table_args__ = (
        # No single-column filter indexes (see migration 0007): these two answer them.
        # A space's models newest first, with every filter column: counts and pages of a
        # space are index-only range scans, whatever filters are combined.
        Index("ix_model_cards_listing", "space_id", "created_at", "artifact_id", *LISTED_COLUMNS),
        # Every model newest first: a page across several spaces (an org) walks this in
        # order and stops after the page, instead of sorting all of the org's models.
        Index("ix_model_cards_recent", "created_at", "artifact_id", "space_id", *LISTED_COLUMNS),
        # The cards of a space changed since a generation (depot.model_records.listing_index).
        Index("ix_model_cards_changes", "space_id", "listing_generation"),
    )

    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    # Copies of the artifact's space, creation and archive times (artifacts never move,
    # their creation time never changes, and only model records archive them), so that
    # listings never join the artifacts table.
    space_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    product_type: Mapped[str] = mapped_column(String(64), default="ML Model")
    provider: Mapped[str | None] = mapped_column(String(500), nullable=True)
    environment: Mapped[str] = mapped_column(String(100), default="development")
    risk_classification: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model_family: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_task_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model_architecture: Mapped[str | None] = mapped_column(String(500), nullable=True)
    framework: Mapped[str | None] = mapped_column(String(500), nullable=True)
    long_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    intended_use: Mapped[str | None] = mapped_column(Text, nullable=True)
    limitations: Mapped[str | None] = mapped_column(Text, nullable=True)
    deployment_status: Mapped[str] = mapped_column(String(100), default="development")
    serving_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    input_schema: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    output_schema: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    ai_system_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    vendor_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    vendor_product_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    vendor_model_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    deployment_environment: Mapped[str | None] = mapped_column(String(200), nullable=True)
    business_use_case: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_gpai: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Lowercased text of every searchable field, so `q` is one LIKE on one column
    # (on PostgreSQL a trigram index serves that LIKE; see migration 0006).
    search_text: Mapped[str] = mapped_column(Text, default="")
    # The generation of the space's listing that this card's last change made; written by
    # the database's triggers only (migration 0008), never by the application.
    listing_generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ModelListingGeneration(Base):
    """How many times the model cards of a space have changed, as a listing sees them.

    Written only by the database's triggers on ``model_cards`` (migration 0008), in the
    transaction that changes a card; a space without a row has generation 0.
    """

    __tablename__ = "model_listing_generations"

    space_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class ModelListingDeletion(Base):
    """A card deleted from a space, with the generation its deletion made.

    Written only by the database's triggers (migration 0008), which keep the last 10,000
    generations of each space.
    """

    __tablename__ = "model_listing_deletions"

    space_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    artifact_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Where the card stood in the listing (newest first, then by id).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelFile(Base):
    """What the Model Repository API knows about a file attached to a model (a "model artifact")."""

    __tablename__ = "model_files"

    file_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    artifact_kind: Mapped[str] = mapped_column(String(32), default="model_binary")
    version_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The release this file belongs to, if any; the file itself stays attached to the model.
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    training_run_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    external_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    # The upload that produced the file: completing it again returns this file.
    upload_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def compose_search_text(artifact: Artifact, card: ModelCard | None) -> str:
    """The lowercased text `q` searches: the model's names, description and card texts."""
    parts = [artifact.name, artifact.display_name, artifact.description]
    if card is not None:
        parts += [getattr(card, name) or "" for name in SEARCHED_FIELDS]
    return " ".join(part for part in parts if part).lower()


# Built once, its values passed as parameters: building ``insert(...).values(...)`` for each
# new model cost a fifth of creating one.
_INSERT_CARD = insert(ModelCard)


@event.listens_for(Artifact, "after_insert")
def _card_for_new_model(
    _mapper: Mapper[Artifact], connection: Connection, target: Artifact
) -> None:
    # NOTE: listings read cards only, so a model without a card would be invisible there.
    # Model artifacts made by any surface get their card here, in the same flush (and the
    # same savepoint); model records then fill it in.
    if target.kind != ArtifactKind.MODEL:
        return
    values = inspect(target).info.pop(NEW_CARD, None) or {
        **CARD_DEFAULTS,
        "search_text": compose_search_text(target, None),
    }
    connection.execute(
        _INSERT_CARD,
        {
            "artifact_id": target.id,
            "space_id": target.space_id,
            "created_at": target.created_at,
            "archived_at": target.archived_at,
            **values,
        },
    )
