"""The Model Repository API under /api/v1.0: catalog model records and their model artifacts."""

from fastapi import APIRouter

from depot.api.model_repository_v1 import artifacts, records

router = APIRouter(tags=["model repository"])
router.include_router(records.router)
router.include_router(artifacts.router)

__all__ = ["router"]
