"""Where the client finds its server and token: flags, then DEPOT_* variables, then the file.

``depot login`` writes ``$XDG_CONFIG_HOME/depot/config.json`` (``~/.config/depot`` by
default) with mode 0600, since it holds a token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ClientConfig", "cache_dir", "config_path", "load_config", "save_config"]


@dataclass(frozen=True)
class ClientConfig:
    url: str | None = None
    token: str | None = None
    org: str | None = None


def config_path() -> Path:
    """The config file: ``$XDG_CONFIG_HOME/depot/config.json``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "depot" / "config.json"


def cache_dir() -> Path:
    """Where push journals and the digest cache live: ``$XDG_CACHE_HOME/depot``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depot"


def load_config() -> ClientConfig:
    """The saved config with ``DEPOT_URL``, ``DEPOT_TOKEN`` and ``DEPOT_ORG`` on top."""
    saved: dict[str, str] = {}
    path = config_path()
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        if isinstance(loaded, dict):
            saved = {k: v for k, v in loaded.items() if isinstance(v, str)}
    return ClientConfig(
        url=os.environ.get("DEPOT_URL") or saved.get("url"),
        token=os.environ.get("DEPOT_TOKEN") or saved.get("token"),
        org=os.environ.get("DEPOT_ORG") or saved.get("org"),
    )


def save_config(config: ClientConfig) -> Path:
    """Write the config file, readable by its owner only; returns its path."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({k: v for k, v in asdict(config).items() if v is not None}, out, indent=2)
    os.chmod(temp, 0o600)
    os.replace(temp, path)
    return path
