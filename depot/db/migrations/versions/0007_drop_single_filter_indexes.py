"""Drop the single-column filter indexes of model cards.

The covering listing indexes of 0006 answer every filter. Without statistics, SQLite took
these equality indexes for a filter such as ``product_type`` and then read every matching
card row (a count over 100k models: about 200 ms instead of 10 ms).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DROPPED = {
    "ix_model_cards_family": "model_family",
    "ix_model_cards_product_type": "product_type",
    "ix_model_cards_deployment_status": "deployment_status",
}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="model_cards")


def downgrade() -> None:
    for name, column in DROPPED.items():
        op.create_index(name, "model_cards", [column])
