from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from depot.settings import Settings, load_settings


def test_defaults_live_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.resolved_data_dir == tmp_path / "depot-data"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'depot-data' / 'depot.db'}"
    assert settings.effective_storage_url == (tmp_path / "depot-data").as_uri()
    assert settings.is_embedded_database
    assert settings.effective_public_url == "http://127.0.0.1:8000"


def test_flags_beat_environment_beat_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOT_PORT", "9001")
    monkeypatch.setenv("DEPOT_HOST", "0.0.0.0")
    settings = load_settings(port=9002, host=None)
    assert settings.port == 9002  # flag
    assert settings.host == "0.0.0.0"  # environment (the flag was not given)
    assert settings.effective_public_url == "http://127.0.0.1:9002"


def test_aws_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("DEPOT_S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    settings = load_settings()
    assert (settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_region) == (
        "key",
        "secret",
        "eu-west-1",
    )
    assert settings.s3_endpoint_url == "http://127.0.0.1:8333"


def test_plain_postgresql_urls_use_psycopg() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:5432/depot")
    assert settings.effective_database_url.startswith("postgresql+psycopg://")
    assert not settings.is_embedded_database


@pytest.mark.parametrize(
    "values",
    [
        {"database_url": "mysql://x"},
        {"storage_url": "ftp://x"},
        {"port": 70000},
        {"upload_chunk_size": 1024},
        {"server": "gunicorn"},
        {"unknown_setting": 1},
    ],
)
def test_bad_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)  # type: ignore[arg-type]


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        variable = f"DEPOT_{name.upper()}" if not name.startswith("aws_") else name.upper()
        assert variable in doc, f"{variable} is missing from docs/settings.md"
        assert field.description and field.description in doc, (
            f"the description of {name} is not in docs/settings.md"
        )
