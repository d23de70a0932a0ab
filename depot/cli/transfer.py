"""`depot push` and `depot pull`: moving files, with a progress bar, resumably."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from depot.cli.options import console, err_console, fail
from depot.cli.remote import EXIT_USAGE, AsJson, OrgOption, connect, print_json, talking_to_server
from depot.client import TransferProgress
from depot.client.refs import parse_ref

__all__ = ["pull", "push"]

Workers = Annotated[int, typer.Option("--workers", min=1, max=64, help="Files in flight at once.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]

_PHASES = {"hash": "hashing", "transfer": "sending", "done": "done"}


@contextmanager
def _progress_bar(verb: str, quiet: bool) -> Iterator[Any]:
    """A Rich progress bar on standard error (bytes, rate, ETA, files) and its callback."""
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]}"),
        console=err_console,
        transient=False,
    )
    task: TaskID = bar.add_task(verb, total=None, files="")

    def update(state: TransferProgress) -> None:
        label = (
            _PHASES.get(state.phase, state.phase)
            if verb == "push"
            else (
                "checking"
                if state.phase == "hash"
                else ("done" if state.phase == "done" else "pulling")
            )
        )
        bar.update(
            task,
            description=label,
            total=state.total_bytes,
            completed=state.done_bytes,
            files=f"{state.done_files}/{state.total_files} files",
        )

    with bar:
        yield update


def _metadata(pairs: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--meta takes KEY=VALUE, not {pair!r}", EXIT_USAGE)
        try:
            found[key] = json.loads(raw)  # numbers, booleans and JSON stay typed
        except ValueError:
            found[key] = raw
    return found


def push(
    ref: Annotated[str, typer.Argument(help="[ORG/]SPACE/NAME of the artifact.")],
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to push.")],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="model, artifact, agent-skill or document (new: artifact)."),
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Point this alias at the new version.")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="KEY=VALUE metadata of the version; repeatable."),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What changed.")] = "",
    hash_first: Annotated[
        bool,
        typer.Option(
            "--hash-first",
            help="Hash large files new to this machine before sending, so that none the"
            " server holds is sent (they are read twice).",
        ),
    ] = False,
    workers: Workers = 4,
    org: OrgOption = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Push files and directories as one new version of an artifact.

    Running the same command again after Ctrl-C, a crash or a dropped connection
    continues the push without re-sending what the server already has. Files whose
    content is already in a space you may write are not sent at all, if their digest is
    known first: small files, and files pushed or pulled before and unchanged since. Other
    large files are hashed while they are sent (see --hash-first).
    """
    metadata = _metadata(meta or [])
    kind_value = kind.replace("-", "_") if kind else None
    try:
        with talking_to_server(), connect(org) as client, _progress_bar("push", quiet) as update:
            result = client.push(
                ref,
                paths,
                kind=kind_value,
                alias=alias,
                metadata=metadata,
                description=description,
                workers=workers,
                progress=update,
                hash_first=hash_first,
            )
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to continue the push", 130)
    if as_json:
        print_json(result)
        return
    sent = f"{len(result.uploaded)} sent, {len(result.present)} already there"
    aliases = f" @{', @'.join(result.version.aliases)}" if result.version.aliases else ""
    console.print(f"pushed {result.version.ref}{aliases} ({sent})")


def pull(
    ref: Annotated[
        str, typer.Argument(help="[ORG/]SPACE/NAME[:VERSION|@ALIAS]; the latest version if none.")
    ],
    dest: Annotated[
        Path | None, typer.Argument(help="Directory to put the files in [default: ./NAME]")
    ] = None,
    workers: Workers = 4,
    org: OrgOption = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Download a version's files, verifying each against its SHA-256.

    Files already there and intact are skipped; an interrupted pull continues
    where it stopped when run again.
    """
    with talking_to_server():
        target = dest or Path(parse_ref(ref).name)
    try:
        with talking_to_server(), connect(org) as client, _progress_bar("pull", quiet) as update:
            result = client.pull(ref, target, workers=workers, progress=update)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to continue the pull", 130)
    if as_json:
        print_json(result)
        return
    console.print(
        f"pulled {result.version.ref} into {result.dest}"
        f" ({len(result.downloaded)} downloaded, {len(result.skipped)} already there)"
    )
