"""Depot's native API under /api/v1."""

from fastapi import APIRouter

from depot.api.native import artifacts, whoami

router = APIRouter()
router.include_router(whoami.router)
router.include_router(artifacts.router)

__all__ = ["router"]
