"""The Hugging Face Hub surface, mounted at ``/hf/{org}`` (see docs/huggingface.md)."""

from __future__ import annotations

from fastapi import APIRouter

from depot.api.huggingface import account, downloads, uploads

__all__ = ["router"]

router = APIRouter(tags=["hugging face"])
router.include_router(account.router)
router.include_router(downloads.router)
router.include_router(uploads.router)
