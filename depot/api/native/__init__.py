"""Depot's native API under /api/v1."""

from fastapi import APIRouter

from depot.api.native import artifacts, namespaces, orgs, pushes, search, tokens, whoami

router = APIRouter()
for module in (whoami, orgs, artifacts, pushes, namespaces, tokens, search):
    router.include_router(module.router)

__all__ = ["router"]
