"""Agent artifacts, namespaces, knowledge sources, search chunks with full-text indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_namespaces_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_namespaces_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namespaces")),
        sa.UniqueConstraint("space_id", "name", name=op.f("uq_namespaces_space_id_name")),
    )
    op.create_index("ix_namespaces_space_id", "namespaces", ["space_id"])
    op.create_table(
        "agent_records",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("artifact_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("root_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("artifact_type", sa.String(length=100), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("replaced_by_version", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("content_text", sa.Text(), nullable=True),
        sa.Column("content_preview", sa.Text(), nullable=True),
        sa.Column("has_file", sa.Boolean(), nullable=False),
        sa.Column("file_name", sa.String(length=1024), nullable=True),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("keywords", JSON, nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("source_execution_id", sa.String(length=200), nullable=True),
        sa.Column("source_step_id", sa.String(length=200), nullable=True),
        sa.Column("source_tool", sa.String(length=200), nullable=True),
        sa.Column("scope", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=100), nullable=True),
        sa.Column("ttl_seconds", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_pinned", sa.Boolean(), nullable=False),
        sa.Column("is_indexed", sa.Boolean(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("index_collection", sa.String(length=200), nullable=True),
        sa.Column("index_error", sa.Text(), nullable=True),
        sa.Column("index_attempts", sa.Integer(), nullable=False),
        sa.Column("index_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding_model_id", sa.String(length=200), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("promoted_to_source_id", sa.Uuid(), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_agent_records_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            name=op.f("fk_agent_records_namespace_id_namespaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_agent_records_version_id_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_agent_records")),
    )
    op.create_index("ix_agent_records_artifact_id", "agent_records", ["artifact_id"])
    op.create_index("ix_agent_records_expires_at", "agent_records", ["expires_at"])
    op.create_index("ix_agent_records_index_queue", "agent_records", ["is_indexed", "index_due_at"])
    op.create_index(
        "ix_agent_records_listing",
        "agent_records",
        ["namespace_id", "is_latest", "root_created_at"],
    )
    op.create_index("ix_agent_records_thread", "agent_records", ["namespace_id", "thread_id"])
    op.create_table(
        "knowledge_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("origin_version_id", sa.Uuid(), nullable=True),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("is_indexed", sa.Boolean(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_sha256"],
            ["blobs.sha256"],
            name=op.f("fk_knowledge_sources_blob_sha256_blobs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_knowledge_sources_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            name=op.f("fk_knowledge_sources_namespace_id_namespaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["origin_version_id"],
            ["versions.id"],
            name=op.f("fk_knowledge_sources_origin_version_id_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_sources")),
        sa.UniqueConstraint(
            "origin_version_id", name=op.f("uq_knowledge_sources_origin_version_id")
        ),
    )
    op.create_index("ix_knowledge_sources_blob_sha256", "knowledge_sources", ["blob_sha256"])
    op.create_index("ix_knowledge_sources_namespace_id", "knowledge_sources", ["namespace_id"])
    op.create_table(
        "search_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection", sa.String(length=200), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["knowledge_sources.id"],
            name=op.f("fk_search_chunks_source_id_knowledge_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_search_chunks_version_id_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_chunks")),
    )
    op.create_index("ix_search_chunks_collection", "search_chunks", ["collection"])
    op.create_index("ix_search_chunks_source_id", "search_chunks", ["source_id"])
    op.create_index("ix_search_chunks_version_id", "search_chunks", ["version_id"])

    # Full-text search over chunk text, per engine; the models do not know these objects.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_chunks_fts USING fts5(text, content='search_chunks',"
            " content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_fts_insert AFTER INSERT ON search_chunks BEGIN"
            " INSERT INTO search_chunks_fts(rowid, text) VALUES (new.id, new.text); END"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_fts_delete AFTER DELETE ON search_chunks BEGIN"
            " INSERT INTO search_chunks_fts(search_chunks_fts, rowid, text)"
            " VALUES ('delete', old.id, old.text); END"
        )
    else:
        op.execute(
            "ALTER TABLE search_chunks ADD COLUMN text_search tsvector"
            " GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX search_chunks_fts_idx ON search_chunks USING gin (text_search)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS search_chunks_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS search_chunks_fts_insert")
        op.execute("DROP TABLE IF EXISTS search_chunks_fts")
    op.drop_index("ix_search_chunks_version_id", table_name="search_chunks")
    op.drop_index("ix_search_chunks_source_id", table_name="search_chunks")
    op.drop_index("ix_search_chunks_collection", table_name="search_chunks")

    op.drop_table("search_chunks")
    op.drop_index("ix_knowledge_sources_namespace_id", table_name="knowledge_sources")
    op.drop_index("ix_knowledge_sources_blob_sha256", table_name="knowledge_sources")

    op.drop_table("knowledge_sources")
    op.drop_index("ix_agent_records_thread", table_name="agent_records")
    op.drop_index("ix_agent_records_listing", table_name="agent_records")
    op.drop_index("ix_agent_records_index_queue", table_name="agent_records")
    op.drop_index("ix_agent_records_expires_at", table_name="agent_records")
    op.drop_index("ix_agent_records_artifact_id", table_name="agent_records")

    op.drop_table("agent_records")
    op.drop_index("ix_namespaces_space_id", table_name="namespaces")

    op.drop_table("namespaces")
