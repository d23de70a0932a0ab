"""The Hugging Face Hub surface, at ``/hf/{org}`` (see docs/huggingface.md)."""

from __future__ import annotations

from fastapi import APIRouter

from depot.api.huggingface import account, downloads, uploads

__all__ = ["PREFIX", "router"]

PREFIX = "/hf"
router = APIRouter(tags=["hugging face"])
# The org is part of every route's own path, so the surface can be mounted at /hf.
for module in (account, downloads, uploads):
    router.include_router(module.router, prefix="/{org}")
