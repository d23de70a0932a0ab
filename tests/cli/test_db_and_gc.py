from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from depot.cli.main import app
from depot.services import Services

runner = CliRunner()


def test_db_upgrade_on_a_new_sqlite_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "upgraded from empty" in result.output
    assert (tmp_path / "depot.db").exists()
    again = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert "already at" in again.output
    current = runner.invoke(app, ["db", "current", "--data-dir", str(tmp_path)])
    assert "up to date" in current.output


def test_admin_commands_migrate_an_empty_embedded_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["admin", "create-org", "acme", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_gc_dry_run_then_for_real(services: Services, data_dir: Path, database_url: str) -> None:
    garbage = services.uploads.upload_blob([b"x" * 2048]).sha256
    settings = services.settings
    args = [
        "gc",
        "--grace",
        "0",
        "--data-dir",
        str(data_dir),
        "--database-url",
        database_url,
        "--storage-url",
        settings.effective_storage_url,
    ]
    env = {
        "DEPOT_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
    }
    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would free 2.0 KiB (2048 bytes) in 1 blob(s)" in dry.output
    assert services.store.exists(garbage)
    real = runner.invoke(app, args, env=env)
    assert "freed 2.0 KiB (2048 bytes)" in real.output
    assert not services.store.exists(garbage)
