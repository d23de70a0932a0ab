"""The agent artifacts API under /v1."""

from fastapi import APIRouter

from depot.api.agents_v1 import routes, signed

router = APIRouter()
router.include_router(routes.router)
router.include_router(signed.router)

__all__ = ["router"]
