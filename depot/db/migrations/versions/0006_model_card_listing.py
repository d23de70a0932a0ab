"""Model cards carry their model's space, creation and archive times, indexed for listings;
every model artifact gets a card; PostgreSQL indexes the search text by trigrams.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LISTED = (
    "archived_at",
    "model_family",
    "product_type",
    "deployment_status",
    "model_task_type",
    "risk_classification",
)
# Made here, not by the models (the "text_search" prefix keeps schema comparisons off it).
TRIGRAM_INDEX = "text_search_model_cards"

log = logging.getLogger(__name__)


def upgrade() -> None:
    with op.batch_alter_table("model_cards") as batch:
        batch.add_column(sa.Column("space_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE model_cards SET"
        " space_id = (SELECT space_id FROM artifacts WHERE artifacts.id = model_cards.artifact_id),"
        " created_at = (SELECT created_at FROM artifacts WHERE artifacts.id = model_cards.artifact_id),"
        " archived_at = (SELECT archived_at FROM artifacts WHERE artifacts.id = model_cards.artifact_id)"
    )
    _add_missing_cards()
    with op.batch_alter_table("model_cards") as batch:
        batch.alter_column("space_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index(
        "ix_model_cards_listing", "model_cards", ["space_id", "created_at", "artifact_id", *LISTED]
    )
    op.create_index(
        "ix_model_cards_recent", "model_cards", ["created_at", "artifact_id", "space_id", *LISTED]
    )
    if op.get_bind().dialect.name == "postgresql":
        _trigram_index()


def _add_missing_cards() -> None:
    """Models made by other surfaces had no card; give them one with the defaults."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, space_id, name, display_name, description, created_at, archived_at"
            " FROM artifacts WHERE kind = 'model' AND NOT EXISTS"
            " (SELECT 1 FROM model_cards WHERE model_cards.artifact_id = artifacts.id)"
        )
    ).all()
    insert = sa.text(
        "INSERT INTO model_cards (artifact_id, space_id, created_at, archived_at, product_type,"
        " environment, deployment_status, search_text) VALUES (:id, :space_id, :created_at,"
        " :archived_at, 'ML Model', 'development', 'development', :search_text)"
    )
    for row in rows:
        # The same text depot.model_records.models.compose_search_text makes for a bare model.
        parts = (row.name, row.display_name, row.description)
        text = " ".join(part for part in parts if part).lower()
        bind.execute(
            insert,
            {
                "id": row.id,
                "space_id": row.space_id,
                "created_at": row.created_at,
                "archived_at": row.archived_at,
                "search_text": text,
            },
        )


def _trigram_index() -> None:
    """A trigram index serves `search_text LIKE '%...%'`, if pg_trgm can be had."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        installed = bind.exec_driver_sql(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
        ).first()
        if installed is None:
            # Search still works, reading each candidate row. A superuser can add it later:
            # CREATE EXTENSION pg_trgm, then the CREATE INDEX below.
            log.warning("pg_trgm unavailable (%s): model search runs without an index", exc.orig)
            return
    op.execute(f"CREATE INDEX {TRIGRAM_INDEX} ON model_cards USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    op.drop_index("ix_model_cards_recent", table_name="model_cards")
    op.drop_index("ix_model_cards_listing", table_name="model_cards")
    with op.batch_alter_table("model_cards") as batch:
        batch.drop_column("archived_at")
        batch.drop_column("created_at")
        batch.drop_column("space_id")
