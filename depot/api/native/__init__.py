"""Depot's native API under /api/v1."""

from fastapi import APIRouter

from depot.api.native import artifacts, namespaces, whoami

router = APIRouter()
router.include_router(whoami.router)
router.include_router(artifacts.router)
router.include_router(namespaces.router)

__all__ = ["router"]
