"""Offsets of staged chunks; announced part count and learnt part size of free-part uploads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.add_column(sa.Column("part_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("part_size", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("upload_chunks") as batch:
        batch.add_column(sa.Column("offset", sa.BigInteger(), nullable=True))
    # Chunks of fixed-size sessions were always written at index * chunk_size.
    op.execute(
        'UPDATE upload_chunks SET "offset" = "index" * (SELECT chunk_size FROM'
        " upload_sessions WHERE upload_sessions.id = upload_chunks.session_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("upload_chunks") as batch:
        batch.drop_column("offset")
    with op.batch_alter_table("upload_sessions") as batch:
        batch.drop_column("part_size")
        batch.drop_column("part_count")
