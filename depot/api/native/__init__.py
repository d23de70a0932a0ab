"""Depot's native API under /api/v1."""

from fastapi import APIRouter

from depot.api.native import whoami

router = APIRouter()
router.include_router(whoami.router)

__all__ = ["router"]
