"""`depot ls`, `show`, `search`, `rm` and `alias`: looking around a Depot server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from depot.cli.options import console
from depot.cli.remote import AsJson, OrgOption, connect, print_json, talking_to_server
from depot.client import ArtifactInfo
from depot.client.refs import parse_ref

__all__ = ["alias_app", "ls", "rm", "search", "show"]

Limit = Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")]
Kind = Annotated[
    str | None,
    typer.Option("--kind", help="Only this kind: model, artifact, agent-skill or document."),
]


def _size(count: int | None) -> str:
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(count)


def _artifact_table(items: list[ArtifactInfo]) -> Table:
    table = Table("artifact", "kind", "latest", "versions", "aliases", "description")
    for item in items:
        table.add_row(
            item.ref,
            item.kind,
            str(item.latest_version or "-"),
            str(item.version_count),
            ", ".join(f"{name}→{number}" for name, number in item.aliases.items()),
            item.description.splitlines()[0][:60] if item.description else "",
        )
    return table


def ls(
    target: Annotated[
        str | None,
        typer.Argument(help="Nothing (spaces), SPACE (artifacts) or [ORG/]SPACE/NAME (versions)."),
    ] = None,
    kind: Kind = None,
    limit: Limit = 100,
    org: OrgOption = None,
    as_json: AsJson = False,
) -> None:
    """List spaces, the artifacts of a space, or the versions of an artifact.

    Spaces of another org than your default: `depot ls --org ORG`, `depot ls SPACE --org ORG`.
    """
    with talking_to_server(), connect(org) as client:
        if target is None:
            spaces = client.spaces()
            if as_json:
                print_json(spaces)
                return
            table = Table("space", "name", "description")
            for space in spaces:
                table.add_row(f"{space.org}/{space.slug}", space.name, space.description[:60])
            console.print(table)
            return
        if "/" in target:
            versions = client.versions(target)[:limit]
            if as_json:
                print_json(versions)
                return
            table = Table("version", "aliases", "created", "description")
            for version in versions:
                table.add_row(
                    str(version.number),
                    ", ".join(version.aliases),
                    (version.created_at or "")[:19],
                    version.description[:60],
                )
            console.print(table)
            return
        kind_value = kind.replace("-", "_") if kind else None
        items = client.artifacts(target, kind=kind_value, page_size=min(limit, 1000)).first(limit)
    if as_json:
        print_json(items)
    else:
        console.print(_artifact_table(items))


def show(
    ref: Annotated[str, typer.Argument(help="[ORG/]SPACE/NAME[:VERSION|@ALIAS] (latest if none).")],
    org: OrgOption = None,
    as_json: AsJson = False,
) -> None:
    """Show one version: its number, aliases, metadata and files."""
    with talking_to_server(), connect(org) as client:
        version = client.version(ref)
    if as_json:
        print_json(version)
        return
    console.print(f"[bold]{version.ref}[/bold]  {version.kind}", highlight=False)
    if version.aliases:
        console.print(f"aliases:  {', '.join(version.aliases)}")
    console.print(f"created:  {(version.created_at or '')[:19]}")
    console.print(f"commit:   {version.commit_id}")
    if version.description:
        console.print(f"about:    {version.description}", markup=False)
    for key, value in version.metadata.items():
        console.print(f"meta:     {key} = {value}", markup=False)
    table = Table("path", "size", "sha256")
    for file in version.files or []:
        table.add_row(file.path, _size(file.size), file.sha256[:16])
    console.print(table)
    console.print(f"{len(version.files or [])} files, {_size(version.size)}")


def search(
    query: Annotated[str, typer.Argument(help="Words to find in names and descriptions.")],
    kind: Kind = None,
    limit: Limit = 50,
    org: OrgOption = None,
    as_json: AsJson = False,
) -> None:
    """Find artifacts in every space you may view."""
    kind_value = kind.replace("-", "_") if kind else None
    with talking_to_server(), connect(org) as client:
        items = client.search(query, kind=kind_value, org=org, page_size=min(limit, 1000)).first(
            limit
        )
    if as_json:
        print_json(items)
    elif items:
        console.print(_artifact_table(items))
    else:
        console.print(f"nothing matches {query!r}")


def rm(
    ref: Annotated[
        str, typer.Argument(help="SPACE/NAME:VERSION (one version) or SPACE/NAME (everything).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    org: OrgOption = None,
) -> None:
    """Delete a version, or a whole artifact with every version."""
    with talking_to_server():
        parsed = parse_ref(ref)
    what = f"version {parsed.version} of {ref}" if parsed.version else f"{ref} and every version"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    with talking_to_server(), connect(org) as client:
        client.delete(ref)
    console.print(f"deleted {what}")


alias_app = typer.Typer(help="Point aliases at versions, or remove them.", no_args_is_help=True)


@alias_app.command("set")
def alias_set(
    ref: Annotated[str, typer.Argument(help="[ORG/]SPACE/NAME[:VERSION] (latest if none).")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. prod.")],
    org: OrgOption = None,
    as_json: AsJson = False,
) -> None:
    """Point an alias at a version, moving it from wherever it pointed."""
    with talking_to_server(), connect(org) as client:
        version = client.set_alias(ref, alias)
    if as_json:
        print_json(version)
    else:
        console.print(f"{alias} → {version.ref}")


@alias_app.command("rm")
def alias_rm(
    ref: Annotated[str, typer.Argument(help="[ORG/]SPACE/NAME")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    org: OrgOption = None,
) -> None:
    """Remove an alias; the version stays."""
    with talking_to_server(), connect(org) as client:
        client.remove_alias(ref, alias)
    console.print(f"removed alias {alias}")
