"""`depot login`, `depot whoami` and `depot token ...`: who you are to a Depot server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from depot.cli.options import console
from depot.cli.remote import AsJson, connect, print_json, talking_to_server
from depot.client import Client
from depot.client.config import ClientConfig, load_config, save_config

__all__ = ["login", "token_app", "whoami"]


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8000")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="An API token (asked for, hidden, when left out)."),
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Org for references that leave it out.")
    ] = None,
) -> None:
    """Check a token against a server and save both in your config (mode 0600)."""
    if token is None:
        token = typer.prompt("Token", hide_input=True)
    with talking_to_server(), Client(url, token, org=org) as client:
        identity = client.whoami()
    path = save_config(ClientConfig(url=url.rstrip("/"), token=token, org=org or load_config().org))
    console.print(f"logged in to {url} as {identity.username}; saved in {path}")


def whoami(as_json: AsJson = False) -> None:
    """Show who your token belongs to, your orgs and your roles."""
    with talking_to_server(), connect() as client:
        identity = client.whoami()
    if as_json:
        print_json(identity)
        return
    console.print(
        f"{identity.username} on {client.url}" + (" (superuser)" if identity.is_superuser else "")
    )
    console.print(f"orgs: {', '.join(identity.orgs) or 'none'}")
    for role in identity.roles:
        console.print(f"  {role['role']} on {role['scope']}")


token_app = typer.Typer(help="Create, list and revoke your API tokens.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    expires_in_days: Annotated[
        int | None,
        typer.Option("--expires-in-days", min=1, max=3650, help="Expire after this many days."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a token for yourself; it is printed once."""
    with talking_to_server(), connect() as client:
        made = client.create_token(name=name, expires_in_days=expires_in_days)
    if as_json:
        print_json(made)
    else:
        console.print(made.token, markup=False)


@token_app.command("list")
def token_list(as_json: AsJson = False) -> None:
    """List your tokens, newest first (revoked ones too)."""
    with talking_to_server(), connect() as client:
        tokens = client.tokens()
    if as_json:
        print_json(tokens)
        return
    table = Table("id", "name", "created", "expires", "last used", "state")
    for item in tokens:
        table.add_row(
            item.id,
            item.name,
            item.created_at[:19],
            (item.expires_at or "never")[:19],
            (item.last_used_at or "never")[:19],
            "revoked" if item.revoked_at else "active",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke one of your tokens."""
    with talking_to_server(), connect() as client:
        client.revoke_token(token_id)
    console.print(f"revoked token {token_id}")
