"""Model records, files attached to an artifact, release metadata of versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(
            sa.Column("display_name", sa.String(500), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("release_type", sa.String(64), nullable=True))
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))

    # Files learn their artifact (filled from their version) and may stand without a version.
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("artifact_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE files SET artifact_id = (SELECT versions.artifact_id FROM versions"
        " WHERE versions.id = files.version_id), updated_at = created_at"
    )
    with op.batch_alter_table("files") as batch:
        batch.alter_column("artifact_id", existing_type=sa.Uuid(), nullable=False)
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("version_id", existing_type=sa.Uuid(), nullable=True)
        batch.create_index("ix_files_artifact_id", ["artifact_id"])
        batch.create_foreign_key(
            "fk_files_artifact_id_artifacts",
            "artifacts",
            ["artifact_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_files_created_by_id_users",
            "users",
            ["created_by_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "model_cards",
        sa.Column("artifact_id", sa.Uuid(), nullable=False),
        sa.Column("product_type", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(500), nullable=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("risk_classification", sa.String(100), nullable=True),
        sa.Column("lifecycle_stage", sa.String(100), nullable=True),
        sa.Column("model_family", sa.String(64), nullable=True),
        sa.Column("model_task_type", sa.String(100), nullable=True),
        sa.Column("model_architecture", sa.String(500), nullable=True),
        sa.Column("framework", sa.String(500), nullable=True),
        sa.Column("long_description", sa.Text(), nullable=True),
        sa.Column("intended_use", sa.Text(), nullable=True),
        sa.Column("limitations", sa.Text(), nullable=True),
        sa.Column("deployment_status", sa.String(100), nullable=False),
        sa.Column("serving_url", sa.String(2000), nullable=True),
        sa.Column("input_schema", JSON, nullable=True),
        sa.Column("output_schema", JSON, nullable=True),
        sa.Column("ai_system_type", sa.String(200), nullable=True),
        sa.Column("vendor_name", sa.String(500), nullable=True),
        sa.Column("vendor_product_name", sa.String(500), nullable=True),
        sa.Column("vendor_model_id", sa.String(500), nullable=True),
        sa.Column("deployment_environment", sa.String(200), nullable=True),
        sa.Column("business_use_case", sa.Text(), nullable=True),
        sa.Column("is_gpai", sa.Boolean(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_model_cards_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("artifact_id", name=op.f("pk_model_cards")),
    )
    op.create_index("ix_model_cards_deployment_status", "model_cards", ["deployment_status"])
    op.create_index("ix_model_cards_family", "model_cards", ["model_family"])
    op.create_index("ix_model_cards_product_type", "model_cards", ["product_type"])

    op.create_table(
        "model_files",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("artifact_id", sa.Uuid(), nullable=False),
        sa.Column("artifact_kind", sa.String(32), nullable=False),
        sa.Column("version_label", sa.String(200), nullable=True),
        sa.Column("version_id", sa.Uuid(), nullable=True),
        sa.Column("training_run_id", sa.Uuid(), nullable=True),
        sa.Column("external_uri", sa.String(2000), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("upload_id", sa.Uuid(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_model_files_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_model_files_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_model_files_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_model_files_version_id_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_model_files")),
        sa.UniqueConstraint("upload_id", name=op.f("uq_model_files_upload_id")),
    )
    op.create_index("ix_model_files_artifact_id", "model_files", ["artifact_id"])
    op.create_index("ix_model_files_version_id", "model_files", ["version_id"])


def downgrade() -> None:
    op.drop_table("model_files")
    op.drop_table("model_cards")
    op.execute("DELETE FROM files WHERE version_id IS NULL")
    with op.batch_alter_table("files") as batch:
        batch.drop_constraint("fk_files_created_by_id_users", type_="foreignkey")
        batch.drop_constraint("fk_files_artifact_id_artifacts", type_="foreignkey")
        batch.drop_index("ix_files_artifact_id")
        batch.alter_column("version_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_column("updated_at")
        batch.drop_column("created_by_id")
        batch.drop_column("artifact_id")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("released_at")
        batch.drop_column("release_type")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("archived_at")
        batch.drop_column("display_name")
