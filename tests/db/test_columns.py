from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, column, select, table
from sqlalchemy.exc import DBAPIError

from depot.api.native import artifacts as native_artifacts
from depot.catalog import browse
from depot.catalog import service as catalog
from depot.catalog.models import Org, Version
from depot.db.columns import execute_columns
from depot.db.engine import Database
from depot.model_records import service as records
from depot.model_records.schemas import ModelRecordCreate
from depot.uploads.service import BlobInfo, record_blob

DIGEST = "ab" * 32


def test_execute_columns_sees_what_the_session_has_not_flushed(database: Database) -> None:
    with database.write() as db:
        db.add(Org(slug="acme", name="Acme"))
        db.add(Org(slug="zeta", name="Zeta"))
        slugs = select(Org.slug).where(Org.slug.in_(bindparam("slugs", expanding=True)))
        found = execute_columns(db, slugs.order_by(Org.slug), {"slugs": ["acme", "zeta"]})
        assert found.scalars().all() == ["acme", "zeta"]
    with database.read() as db:  # and the transaction it ran in is the session's own
        assert execute_columns(db, select(Org.name).order_by(Org.slug)).scalars().all() == [
            "Acme",
            "Zeta",
        ]


def _populated(database: Database) -> list[uuid.UUID]:
    """Two artifacts with versions, aliases and files, one model record with a card."""
    with database.write() as db:
        record_blob(db, BlobInfo(DIGEST, 10))
        org = catalog.create_org(db, "acme")
        space = catalog.create_space(db, org, "ml")
        ranker = catalog.create_artifact(db, space, "ranker", "model", metadata={"k": [1, 2]})
        catalog.create_artifact(db, space, "empty", "document")
        for number in (1, 2):
            version = catalog.create_version(db, ranker, label=f"v{number}")
            catalog.add_file(db, version, f"w{number}.bin", DIGEST, metadata={"n": number})
            catalog.finalize_version(db, version)
        catalog.set_alias(db, ranker, "prod", version)
        catalog.create_version(db, ranker)  # staged: the statements leave it out
        model = records.create_model_record(
            db, space, ModelRecordCreate(name="Churn", slug="churn"), created_by_id=None
        )
        catalog.create_release(db, model, label="1.0", release_type="major")
        records.attach_model_file(
            db,
            model,
            DIGEST,
            file_name="model.onnx",
            content_type="application/octet-stream",
            artifact_kind="model",
            version_label=None,
            version_id=None,
            training_run_id=None,
            external_uri=None,
            is_current=True,
            metadata={"format": "onnx"},
            upload_id=None,
            uploaded_by_id=None,
        )
        return [ranker.id, model.id, uuid.uuid4()]


def test_execute_columns_gives_what_connection_execute_gives(database: Database) -> None:
    """The code's own statements, with list parameters of several lengths: same rows,
    same values, same types (uuids, datetimes, enums, JSON, NULLs) on both databases."""
    ids = _populated(database)
    statements: list[tuple[Select[Any], str]] = [
        (browse._VERSION_COUNTS, "ids"),
        (browse._ALIASES, "ids"),
        (records._MODELS, "ids"),
        (records._RELEASES, "ids"),
        (records._FILES, "ids"),
        (native_artifacts._ALIASES, "artifact_id"),
    ]
    with database.read() as db:
        compared = 0
        for statement, name in statements:
            for chosen in ([], ids[:1], ids[1:2], ids):
                if name == "artifact_id":
                    if len(chosen) != 1:
                        continue
                    params: dict[str, Any] = {name: chosen[0]}
                else:
                    params = {name: chosen}
                expected = db.connection().execute(statement, params).all()
                found = execute_columns(db, statement, params).all()
                assert found == expected
                assert [row._asdict() for row in found] == [row._asdict() for row in expected]
                assert [list(map(type, row)) for row in found] == [
                    list(map(type, row)) for row in expected
                ]
                compared += len(found)
        assert compared > 10


def test_execute_columns_takes_a_parameter_s_default_unless_one_is_given(
    database: Database,
) -> None:
    ids = _populated(database)
    numbers = (
        select(Version.number)
        .where(Version.artifact_id == bindparam("artifact_id"))
        .where(Version.number >= bindparam("least", value=2))
        .order_by(Version.number)
    )
    with database.read() as db:
        assert execute_columns(db, numbers, {"artifact_id": ids[0]}).scalars().all() == [2]
        assert execute_columns(
            db, numbers, {"artifact_id": ids[0], "least": 1}
        ).scalars().all() == [
            1,
            2,
        ]
        with pytest.raises(KeyError, match="artifact_id"):
            execute_columns(db, numbers, {})


def test_a_driver_error_is_raised_as_sqlalchemy_s(database: Database) -> None:
    with database.read() as db, pytest.raises(DBAPIError, match="no_such_table"):
        execute_columns(db, select(column("x")).select_from(table("no_such_table")))
