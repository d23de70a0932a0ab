"""`depot admin`: orgs, spaces, users, teams, roles and tokens, straight on the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from depot.access import service as access
from depot.access.models import Role
from depot.catalog import service as catalog
from depot.cli.options import DatabaseUrl, DataDir, console, reporting_errors, settings_from
from depot.cli.runtime import open_current_database
from depot.db.base import utcnow

__all__ = ["app"]

app = typer.Typer(
    help="Administer orgs, spaces, users, teams, roles and tokens (works without a server).",
    no_args_is_help=True,
)

Name = Annotated[str | None, typer.Option("--name", help="Display name (defaults to the slug).")]


@contextmanager
def _transaction(data_dir: DataDir, database_url: DatabaseUrl) -> Iterator[Session]:
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    database = open_current_database(settings)
    try:
        with reporting_errors(), database.write() as db:
            yield db
    finally:
        database.dispose()


def _principal_target(db: Session, who: str) -> dict[str, object]:
    """``USERNAME`` or ``team:ORG/TEAM`` as keyword arguments for grant and revoke."""
    if who.startswith("team:"):
        org_slug, _, team_slug = who.removeprefix("team:").partition("/")
        org = catalog.get_org(db, org_slug)
        return {"team": access.get_team(db, org, team_slug)}
    return {"user": access.get_user(db, who)}


@app.command("create-org")
def create_org(
    slug: str, name: Name = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Create an organisation."""
    with _transaction(data_dir, database_url) as db:
        org = catalog.create_org(db, slug, name=name)
        console.print(f"created org {org.slug}")


@app.command("create-space")
def create_space(
    org: str,
    slug: str,
    name: Name = None,
    description: Annotated[str, typer.Option("--description")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a space inside an organisation."""
    with _transaction(data_dir, database_url) as db:
        space = catalog.create_space(
            db, catalog.get_org(db, org), slug, name=name, description=description
        )
        console.print(f"created space {org}/{space.slug}")


@app.command("create-user")
def create_user(
    username: str,
    org: Annotated[
        str | None, typer.Option("--org", help="Also make the user a viewer of this org.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    superuser: Annotated[bool, typer.Option("--superuser", help="Admin everywhere.")] = False,
    service_account: Annotated[
        bool,
        typer.Option("--service-account", help="A machine user (CI, a pipeline), not a person."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user and print a new API token for them as the last line."""
    with _transaction(data_dir, database_url) as db:
        user = access.create_user(
            db, username, email=email, is_superuser=superuser, is_service_account=service_account
        )
        if org is not None:
            scope = access.parse_scope(db, f"org:{org}")
            access.grant_role(db, Role.VIEWER, scope, user=user)
        _row, token = access.create_token(db, user, name="created by depot admin")
        console.print(f"created user {user.username}" + (f" (viewer of org {org})" if org else ""))
        console.print(token, markup=False)


@app.command("grant")
def grant(
    who: Annotated[str, typer.Argument(metavar="USERNAME", help="A user name, or team:ORG/TEAM.")],
    role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor or admin.")],
    scope: Annotated[str, typer.Argument(metavar="SCOPE", help="org:ORG or space:ORG/SPACE.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user or team a role on an org or a space (replacing their role there)."""
    with _transaction(data_dir, database_url) as db:
        target = access.parse_scope(db, scope)
        access.grant_role(db, role, target, **_principal_target(db, who))  # type: ignore[arg-type]
        console.print(f"granted {role} on {target.label} to {who}")


@app.command("revoke")
def revoke(
    who: Annotated[str, typer.Argument(metavar="USERNAME", help="A user name, or team:ORG/TEAM.")],
    scope: Annotated[str, typer.Argument(metavar="SCOPE", help="org:ORG or space:ORG/SPACE.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove the role a user or team holds on an org or a space."""
    with _transaction(data_dir, database_url) as db:
        target = access.parse_scope(db, scope)
        removed = access.revoke_role(db, target, **_principal_target(db, who))  # type: ignore[arg-type]
        console.print(
            f"revoked {who} on {target.label}"
            if removed
            else f"{who} had no role on {target.label}"
        )


@app.command("create-team")
def create_team(
    org: str,
    slug: str,
    name: Name = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a team inside an organisation; grant roles to it as team:ORG/TEAM."""
    with _transaction(data_dir, database_url) as db:
        team = access.create_team(db, catalog.get_org(db, org), slug, name=name)
        console.print(f"created team {org}/{team.slug}")


@app.command("add-member")
def add_member(
    team: Annotated[str, typer.Argument(metavar="ORG/TEAM")],
    username: str,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a user to a team."""
    with _transaction(data_dir, database_url) as db:
        org_slug, _, team_slug = team.partition("/")
        row = access.get_team(db, catalog.get_org(db, org_slug), team_slug)
        access.add_team_member(db, row, access.get_user(db, username))
        console.print(f"added {username} to {team}")


@app.command("create-token")
def create_token(
    username: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, help="Expire after N days.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue another API token for a user and print it as the last line."""
    with _transaction(data_dir, database_url) as db:
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        row, token = access.create_token(
            db, access.get_user(db, username), name=name, expires_at=expires
        )
        console.print(f"created token {row.id} for {username}")
        console.print(token, markup=False)


@app.command("list-tokens")
def list_tokens(
    username: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List a user's tokens (ids and dates only; secrets are never stored)."""
    with _transaction(data_dir, database_url) as db:
        rows = access.list_tokens(db, access.get_user(db, username))
        records = [
            {
                "id": row.id,
                "name": row.name,
                "created_at": _iso(row.created_at),
                "expires_at": _iso(row.expires_at),
                "last_used_at": _iso(row.last_used_at),
                "revoked_at": _iso(row.revoked_at),
            }
            for row in rows
        ]
    if as_json:
        console.print_json(json.dumps(records))
        return
    table = Table("id", "name", "created", "expires", "last used", "revoked")
    for record in records:
        table.add_row(*[str(value or "") for value in record.values()])
    console.print(table)


@app.command("revoke-token")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a token by its id (the part after `tfy_`, as `list-tokens` shows)."""
    with _transaction(data_dir, database_url) as db:
        access.revoke_token(db, token_id)
        console.print(f"revoked token {token_id}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
