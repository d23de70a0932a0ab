"""The ML API (TrueFoundry-compatible), the same handlers under /api/ml/v1 and /api/svc/v1."""

from fastapi import APIRouter

from depot.api.ml_v1 import routes, signed
from depot.api.ml_v1.routes import PREFIXES

router = APIRouter()
router.include_router(routes.router)
router.include_router(signed.router)

__all__ = ["PREFIXES", "router"]
