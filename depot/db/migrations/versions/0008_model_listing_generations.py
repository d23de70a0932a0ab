"""A generation per space, bumped by triggers whenever one of its model cards changes.

Processes keep large spaces' listings in memory (depot.model_records.listing_index) and use
one only while its space's generation is the one it was read at. Triggers, not the
application, bump it: every write to a card counts, whichever code path or replica made it
(a cascade from a deleted artifact included), in the writing transaction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SQLITE_TRIGGER = """
CREATE TRIGGER model_cards_listing_{name} AFTER {event} ON model_cards BEGIN
    INSERT OR IGNORE INTO model_listing_generations (space_id, generation)
        VALUES ({row}.space_id, 0);
    UPDATE model_listing_generations SET generation = generation + 1
        WHERE space_id = {row}.space_id;
END
"""
_POSTGRES_FUNCTION = """
CREATE FUNCTION model_cards_listing_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO model_listing_generations AS g (space_id, generation)
        VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.space_id ELSE NEW.space_id END, 1)
        ON CONFLICT (space_id) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END
$$
"""
_EVENTS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def upgrade() -> None:
    op.create_table(
        "model_listing_generations",
        # No foreign key: a space's deletion cascades to its cards, whose triggers then
        # write here while the space is going.
        sa.Column("space_id", sa.Integer(), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO model_listing_generations (space_id, generation)"
        " SELECT DISTINCT space_id, 1 FROM model_cards"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER model_cards_listing AFTER INSERT OR UPDATE OR DELETE ON model_cards"
            " FOR EACH ROW EXECUTE FUNCTION model_cards_listing_bump()"
        )
    else:
        for event, row in _EVENTS.items():
            op.execute(_SQLITE_TRIGGER.format(name=event, event=event.upper(), row=row))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS model_cards_listing ON model_cards")
        op.execute("DROP FUNCTION IF EXISTS model_cards_listing_bump()")
    else:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS model_cards_listing_{event}")
    op.drop_table("model_listing_generations")
