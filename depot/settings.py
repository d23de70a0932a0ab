"""Depot's one typed settings object.

Precedence: command-line flags (passed as keyword arguments), then ``DEPOT_*``
environment variables (and the usual ``AWS_*`` ones for S3), then defaults
derived from the data directory. :func:`load_settings` is the only place that
reads the environment; everything else receives a :class:`Settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings", "MiB"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Everything Depot can be told, typed and validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="DEPOT_", extra="forbid", frozen=True, populate_by_name=True
    )

    data_dir: Path = Field(
        default=Path("./depot-data"),
        description="Directory holding the embedded database, local blobs and admin.token.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the metadata database; empty means SQLite at DATA_DIR/depot.db."
        ),
    )
    storage_url: str = Field(
        default="",
        description="Where blobs live: file:///path or s3://bucket/prefix; empty means file://DATA_DIR.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, SeaweedFS, Ceph); unset means AWS.",
    )
    aws_access_key_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        description="S3 access key, read from AWS_ACCESS_KEY_ID.",
    )
    aws_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        description="S3 secret key, read from AWS_SECRET_ACCESS_KEY.",
    )
    aws_region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("aws_region", "AWS_REGION"),
        description="S3 region, read from AWS_REGION.",
    )
    s3_downloads: Literal["redirect", "proxy"] = Field(
        default="redirect",
        description=(
            "Downloads from S3: redirect (307 to a pre-signed URL) or proxy (through Depot)."
        ),
    )
    s3_response_headers: bool = Field(
        default=True,
        description=(
            "Pre-signed downloads set Content-Type and Content-Disposition (turn off for"
            " stores that refuse response-* parameters, such as SeaweedFS)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `depot serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `depot serve` listens on.")
    server: Literal["granian", "uvicorn"] = Field(
        default="granian",
        description=(
            "ASGI server that runs the app: granian (fastest measured) or uvicorn (httptools)."
        ),
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Worker processes of `depot serve` (granian only). Each takes about 100 MiB;"
            " metadata requests scale with them, up to the number of cores."
        ),
    )
    public_url: str | None = Field(
        default=None,
        description="Absolute URL clients reach this server at; unset means http://HOST:PORT.",
    )
    upload_chunk_size: int = Field(
        # Each chunk costs a few database transactions; at 16 MiB they took a third of
        # a sequential 1 GiB upload's time (docs/performance.md).
        default=64 * MiB,
        ge=5 * MiB,
        le=5 * 1024 * MiB,
        description="Chunk size the server asks clients to use for chunked uploads, in bytes.",
    )
    upload_max_size: int = Field(
        default=5 * 1024 * 1024 * MiB,
        ge=1,
        description="Largest single file an upload session accepts, in bytes.",
    )
    upload_expiry_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long an unfinished upload session lives before it expires.",
    )
    sweep_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often background jobs (expired uploads) run in `depot serve`.",
    )
    gc_interval_seconds: float = Field(
        default=6 * 3600,
        ge=0,
        description="How often `depot serve` collects garbage blobs itself; 0 turns it off.",
    )
    gc_grace_seconds: int = Field(
        default=3600,
        ge=0,
        description="Unreferenced blobs younger than this are left alone by `depot gc`.",
    )
    catalog_product_limit: int = Field(
        default=0,
        ge=0,
        description="Most model products one space may hold; 0 means no limit.",
    )
    index_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often `depot serve` looks for agent artifacts waiting to be indexed.",
    )
    agent_expiry_grace_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long expired agent artifacts stay (hidden) before they are deleted.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str) -> str:
        if value and urlparse(value).scheme not in {"file", "s3", "memory"}:
            raise ValueError("storage_url must start with file://, s3:// or memory://")
        return value

    @model_validator(mode="after")
    def _check_database_url(self) -> Settings:
        url = self.database_url
        if url and not url.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return self

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            url = self.database_url
            # A bare postgresql:// URL would pick psycopg2; Depot ships psycopg 3.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.resolved_data_dir / 'depot.db'}"

    @property
    def effective_storage_url(self) -> str:
        """The blob store URL, defaulting to the data directory."""
        return self.storage_url or self.resolved_data_dir.as_uri()

    @property
    def is_embedded_database(self) -> bool:
        """True when the metadata database is SQLite."""
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_public_url(self) -> str:
        """Base URL used when Depot writes absolute links."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"


def load_settings(**flags: Any) -> Settings:
    """Build settings from flags (``None`` means "not given"), the environment and defaults."""
    given = {key: value for key, value in flags.items() if value is not None}
    return Settings(**given)
