"""What every command that talks to a Depot server shares: the client, errors, output."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from depot.cli.options import console, fail
from depot.client import AuthError, Client, ClientError, NotFoundError

__all__ = [
    "AsJson",
    "OrgOption",
    "connect",
    "print_json",
    "talking_to_server",
]

# Exit codes: 1 a failed operation, 2 bad usage, 3 not found, 4 not authenticated or allowed.
EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_AUTH = 1, 2, 3, 4

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org", help="Org of references without one [env: DEPOT_ORG; default: your only org]"
    ),
]


@contextmanager
def talking_to_server() -> Iterator[None]:
    """Turn client errors into a one-line message with the server's words and an exit code."""
    try:
        yield
    except ValueError as exc:  # a malformed reference or option value
        fail(str(exc), EXIT_USAGE)
    except NotFoundError as exc:
        fail(exc.message, EXIT_NOT_FOUND)
    except AuthError as exc:
        hint = " (run `depot login`)" if exc.status == 401 else ""
        fail(exc.message + hint, EXIT_AUTH)
    except ClientError as exc:
        fail(exc.message, EXIT_ERROR)


def connect(org: str | None = None) -> Client:
    """A client from the saved login and the DEPOT_URL / DEPOT_TOKEN / DEPOT_ORG variables."""
    with talking_to_server():
        return Client(org=org)
    raise AssertionError("unreachable")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any) -> None:
    """Print dataclasses, lists and dicts as indented JSON on standard output."""
    console.print_json(json.dumps(_plain(value)), highlight=False)
