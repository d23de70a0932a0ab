"""Model cards carry the generation of their space's listing that last changed them.

Processes keep large spaces' listings in memory (depot.model_records.listing_index). Triggers,
not the application, count the changes, so that every write counts, whichever code path or
replica made it (a cascade from a deleted artifact included), in the writing transaction:

- each space has a generation, bumped whenever one of its cards is inserted, deleted, or
  updated in a column a listing reads (``LISTED``);
- an inserted or updated card is stamped with the generation it made
  (``listing_generation``), and a deleted one is logged with its generation and creation
  time in ``model_listing_deletions`` (the last ``KEPT`` generations of each space),

so an index read at generation g catches up by reading the cards stamped after g and the
deletions logged after g.

The price: transactions that change cards of the same space take turns at its generation row
until they commit (PostgreSQL's row lock; SQLite's writers take turns anyway), which is also
what makes the generations follow the order of the commits.

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

# The columns of a card a listing reads: an update of another column changes no listing.
LISTED = (
    "space_id",
    "created_at",
    "archived_at",
    "product_type",
    "model_family",
    "deployment_status",
    "model_task_type",
    "risk_classification",
    "search_text",
)
# Deletions older than this many generations of their space are forgotten (an index that
# far behind is read again whole; see listing_index.CATCH_UP_AT_MOST).
KEPT = 10_000

_SQLITE_BUMP = """
    INSERT OR IGNORE INTO model_listing_generations (space_id, generation) VALUES ({row}.space_id, 0);
    UPDATE model_listing_generations SET generation = generation + 1
        WHERE space_id = {row}.space_id;
"""
_SQLITE_STAMP = """
    UPDATE model_cards SET listing_generation = (
        SELECT generation FROM model_listing_generations WHERE space_id = NEW.space_id
    ) WHERE artifact_id = NEW.artifact_id;
"""
_SQLITE_LOG = f"""
    INSERT INTO model_listing_deletions (space_id, generation, artifact_id, created_at)
        SELECT OLD.space_id, generation, OLD.artifact_id, OLD.created_at
        FROM model_listing_generations WHERE space_id = OLD.space_id;
    DELETE FROM model_listing_deletions WHERE space_id = OLD.space_id AND generation < (
        SELECT generation FROM model_listing_generations WHERE space_id = OLD.space_id
    ) - {KEPT};
"""
# The UPDATE trigger names the listed columns only: the stamp it writes does not fire it
# again, and neither does any other column's update.
_SQLITE_TRIGGERS = {
    "model_cards_listing_insert": (
        "AFTER INSERT ON model_cards",
        _SQLITE_BUMP.format(row="NEW") + _SQLITE_STAMP,
    ),
    "model_cards_listing_update": (
        f"AFTER UPDATE OF {', '.join(LISTED)} ON model_cards",
        _SQLITE_BUMP.format(row="NEW") + _SQLITE_STAMP,
    ),
    "model_cards_listing_delete": (
        "AFTER DELETE ON model_cards",
        _SQLITE_BUMP.format(row="OLD") + _SQLITE_LOG,
    ),
}
_POSTGRES_BUMP = """
    INSERT INTO model_listing_generations AS g (space_id, generation) VALUES ({row}.space_id, 1)
        ON CONFLICT (space_id) DO UPDATE SET generation = g.generation + 1
        RETURNING g.generation INTO bumped;
"""
_POSTGRES_FUNCTIONS = {
    "model_cards_listing_stamp": f"""
DECLARE bumped bigint;
BEGIN
    {_POSTGRES_BUMP.format(row="NEW")}
    NEW.listing_generation := bumped;
    RETURN NEW;
END""",
    "model_cards_listing_log": f"""
DECLARE bumped bigint;
BEGIN
    {_POSTGRES_BUMP.format(row="OLD")}
    INSERT INTO model_listing_deletions (space_id, generation, artifact_id, created_at)
        VALUES (OLD.space_id, bumped, OLD.artifact_id, OLD.created_at);
    DELETE FROM model_listing_deletions
        WHERE space_id = OLD.space_id AND generation < bumped - {KEPT};
    RETURN NULL;
END""",
}
_POSTGRES_TRIGGERS = {
    "model_cards_listing_stamp": f"BEFORE INSERT OR UPDATE OF {', '.join(LISTED)} ON model_cards",
    "model_cards_listing_log": "AFTER DELETE ON model_cards",
}


def upgrade() -> None:
    op.create_table(
        "model_listing_generations",
        # No foreign key: a space's deletion cascades to its cards, whose triggers then
        # write here while the space is going.
        sa.Column("space_id", sa.Integer(), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "model_listing_deletions",
        sa.Column("space_id", sa.Integer(), primary_key=True),
        sa.Column("generation", sa.BigInteger(), primary_key=True),
        sa.Column("artifact_id", sa.Uuid(), primary_key=True),
        # Where the card stood in its space's listing (newest first, then by id).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("model_cards") as batch:
        batch.add_column(sa.Column("listing_generation", sa.BigInteger(), nullable=True))
    op.create_index("ix_model_cards_changes", "model_cards", ["space_id", "listing_generation"])
    op.execute("UPDATE model_cards SET listing_generation = 1")
    op.execute(
        "INSERT INTO model_listing_generations (space_id, generation)"
        " SELECT DISTINCT space_id, 1 FROM model_cards"
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, body in _POSTGRES_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$")
            op.execute(
                f"CREATE TRIGGER {name} {_POSTGRES_TRIGGERS[name]}"
                f" FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
    else:
        for name, (when, body) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN{body}END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON model_cards")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_model_cards_changes", table_name="model_cards")
    with op.batch_alter_table("model_cards") as batch:
        batch.drop_column("listing_generation")
    op.drop_table("model_listing_deletions")
    op.drop_table("model_listing_generations")
