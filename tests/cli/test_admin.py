from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from depot.access import service as access
from depot.access.models import Role
from depot.catalog import service as catalog
from depot.cli.main import app
from depot.db.engine import Database

runner = CliRunner()


@pytest.fixture
def depot(data_dir: Path, database_url: str, database: Database):  # type: ignore[no-untyped-def]
    """Run `depot ...` against the test database; returns the result."""

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(
            app, [*args, "--data-dir", str(data_dir), "--database-url", database_url]
        )
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_the_admin_contract(depot, database: Database) -> None:  # type: ignore[no-untyped-def]
    depot("admin", "create-org", "acme", "--name", "Acme Corp")
    depot("admin", "create-space", "acme", "ml", "--name", "ML")
    output = depot("admin", "create-user", "alice", "--org", "acme")
    token = output.strip().splitlines()[-1]
    assert token.startswith("tfy_")
    depot("admin", "grant", "alice", "editor", "space:acme/ml")
    with database.read() as db:
        who = access.authenticate(db, token)
        space = catalog.get_space(db, "acme", "ml")
        assert catalog.get_org(db, "acme").name == "Acme Corp"
        assert space.name == "ML"
    assert access.role_on_space(who, space) is Role.EDITOR


def test_errors_are_one_line_with_exit_codes(depot) -> None:  # type: ignore[no-untyped-def]
    depot("admin", "create-org", "acme")
    assert "already exists" in depot("admin", "create-org", "acme", code=1)
    assert "not found" in depot("admin", "create-space", "nope", "x", code=3)
    depot("admin", "create-user", "bob", "--service-account")
    assert "role must be" in depot("admin", "grant", "bob", "owner", "org:acme", code=1)
    assert "scope must be" in depot("admin", "grant", "bob", "viewer", "acme", code=1)
    assert "not found" in depot("admin", "grant", "nobody", "viewer", "org:acme", code=3)


def test_teams_tokens_and_revocation(depot, database: Database) -> None:  # type: ignore[no-untyped-def]
    depot("admin", "create-org", "acme")
    depot("admin", "create-space", "acme", "web")
    depot("admin", "create-user", "carol")
    depot("admin", "create-team", "acme", "platform")
    depot("admin", "add-member", "acme/platform", "carol")
    depot("admin", "grant", "team:acme/platform", "admin", "space:acme/web")
    token = (
        depot("admin", "create-token", "carol", "--name", "ci", "--expires-in-days", "30")
        .strip()
        .splitlines()[-1]
    )
    with database.read() as db:
        who = access.authenticate(db, token)
        assert access.role_on_space(who, catalog.get_space(db, "acme", "web")) is Role.ADMIN
    listing = depot("admin", "list-tokens", "carol", "--json")
    assert '"name": "ci"' in listing
    token_id = token.split("_")[1]
    depot("admin", "revoke-token", token_id)
    with database.read() as db, pytest.raises(Exception, match="revoked"):
        access.authenticate(db, token)
    # carol's role comes through her team, so it is the team's binding that goes.
    assert "had no role" in depot("admin", "revoke", "carol", "space:acme/web")
    assert "revoked team:acme/platform" in depot(
        "admin", "revoke", "team:acme/platform", "space:acme/web"
    )


def test_bad_settings_are_reported(data_dir: Path) -> None:
    result = runner.invoke(
        app,
        ["admin", "create-org", "x", "--data-dir", str(data_dir), "--database-url", "mysql://nope"],
    )
    assert result.exit_code == 2 and "invalid settings" in result.output
