"""Every public module declares __all__, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import depot


def public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(depot.__path__, "depot."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts) or ".migrations" in info.name:
            continue
        names.append(info.name)
    return names


def test_all_names_exist() -> None:
    missing = []
    for name in public_modules():
        module = importlib.import_module(name)
        for member in getattr(module, "__all__", []):
            if not hasattr(module, member):
                missing.append(f"{name}.{member}")
    assert missing == []


def test_modules_with_public_functions_declare_all() -> None:
    undeclared = []
    for name in public_modules():
        module = importlib.import_module(name)
        defines = [
            attr
            for attr, value in vars(module).items()
            if not attr.startswith("_")
            and getattr(value, "__module__", None) == name
            and callable(value)
        ]
        if defines and not hasattr(module, "__all__"):
            undeclared.append(name)
    assert undeclared == []
