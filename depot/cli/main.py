"""Entry point of the `depot` command."""

from __future__ import annotations

import typer

from depot import __version__
from depot.cli import account, admin, browse, db, gc, serve, transfer

__all__ = ["app", "main"]

app = typer.Typer(
    name="depot",
    help="Depot: a registry for ML models, agent skills and other artifacts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Talking to a server.
app.command("login")(account.login)
app.command("whoami")(account.whoami)
app.command("push")(transfer.push)
app.command("pull")(transfer.pull)
app.command("ls")(browse.ls)
app.command("show")(browse.show)
app.command("search")(browse.search)
app.command("rm")(browse.rm)
app.add_typer(browse.alias_app, name="alias")
app.add_typer(account.token_app, name="token")
# Running one.
app.command("serve")(serve.serve)
app.command("gc")(gc.gc)
app.add_typer(admin.app, name="admin")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"depot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Depot: a registry for ML models, agent skills and other artifacts."""


def main() -> None:
    """Run the CLI."""
    app()
