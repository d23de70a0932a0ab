"""Artifact references: ``[ORG/]SPACE/NAME[:VERSION|@ALIAS]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Ref", "parse_ref", "parse_space"]

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Ref:
    """An artifact, and optionally one version of it (a number, label, alias or ``latest``)."""

    org: str | None
    space: str
    name: str
    version: str | None = None

    def __str__(self) -> str:
        base = f"{self.org}/{self.space}/{self.name}" if self.org else f"{self.space}/{self.name}"
        return base if self.version is None else f"{base}:{self.version}"


def _check(part: str, what: str, text: str) -> str:
    if not _PART.match(part):
        raise ValueError(f"{text!r} is not a valid reference: bad {what} {part!r}")
    return part


def parse_ref(text: str) -> Ref:
    """Parse ``[ORG/]SPACE/NAME[:VERSION|@ALIAS]``.

    Raises:
        ValueError: the text has another shape.
    """
    body, version = text, None
    if "@" in text:
        body, _, version = text.rpartition("@")
    elif ":" in text:
        body, _, version = text.rpartition(":")
    if version is not None:
        _check(version, "version", text)
    parts = body.split("/")
    if len(parts) == 2:
        org, space, name = None, parts[0], parts[1]
    elif len(parts) == 3:
        org, space, name = parts
        _check(org, "org", text)
    else:
        raise ValueError(
            f"{text!r} is not a valid reference: use [ORG/]SPACE/NAME[:VERSION|@ALIAS]"
        )
    return Ref(org, _check(space, "space", text), _check(name, "name", text), version)


def parse_space(text: str) -> tuple[str | None, str]:
    """Parse ``[ORG/]SPACE`` into the org (None when left out) and the space.

    Raises:
        ValueError: the text has another shape.
    """
    parts = text.split("/")
    if len(parts) == 1:
        return None, _check(parts[0], "space", text)
    if len(parts) == 2:
        return _check(parts[0], "org", text), _check(parts[1], "space", text)
    raise ValueError(f"{text!r} is not a valid space: use [ORG/]SPACE")
