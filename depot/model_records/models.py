"""Tables of model records: the governance card of a model, and its attached model files."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from depot.db.base import Base, Json, UTCDateTime, utcnow

__all__ = ["ModelCard", "ModelFile"]


class ModelCard(Base):
    """Governance and descriptive metadata of one model artifact (a catalog "product")."""

    __tablename__ = "model_cards"
    __table_args__ = (
        Index("ix_model_cards_family", "model_family"),
        Index("ix_model_cards_product_type", "product_type"),
        Index("ix_model_cards_deployment_status", "deployment_status"),
    )

    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
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
    # Lowercased text of every searchable field, so `q` is one LIKE on one column.
    search_text: Mapped[str] = mapped_column(Text, default="")


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
