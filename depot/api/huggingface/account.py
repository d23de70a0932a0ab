"""Who the caller is, and the side requests every client makes (agent harnesses, Xet)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from depot.access.models import ApiToken, User
from depot.api.deps import CurrentPrincipal, ReadDb
from depot.api.routing import OneHopRoute
from depot.catalog.service import list_orgs
from depot.errors import Unsupported

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(route_class=OneHopRoute)

XET_UNSUPPORTED = "Xet is not supported by Depot; set HF_HUB_DISABLE_XET=1 to upload"


@router.get("/api/whoami-v2")
def whoami(org: str, principal: CurrentPrincipal, db: ReadDb) -> dict[str, object]:
    """The caller as `hf auth whoami` and `HfApi.whoami` read it."""
    user = db.get(User, principal.user_id)
    token = db.get(ApiToken, principal.token_id) if principal.token_id else None
    return {
        "type": "user",
        "id": str(principal.user_id),
        "name": principal.username,
        "fullname": principal.username,
        "email": user.email if user is not None else None,
        "isPro": False,
        "orgs": [
            {"type": "org", "name": row.slug, "fullname": row.name}
            for row in list_orgs(db, principal)
        ],
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": (token.name if token is not None and token.name else "depot token"),
                "role": "write",
            },
        },
    }


@router.get("/api/agent-harnesses", include_in_schema=False)
async def agent_harnesses(org: str) -> dict[str, object]:
    """Fetched once a day, anonymously, by every client: nothing to declare."""
    return {"standardEnvVars": [], "harnesses": {}}


@router.get("/api/{repo_type}/{space}/{name}/xet-write-token/{revision}", include_in_schema=False)
@router.get("/api/{repo_type}/{space}/{name}/xet-read-token/{revision}", include_in_schema=False)
async def xet_token(org: str, repo_type: str, space: str, name: str, revision: str) -> Response:
    """Xet is not spoken here: say how to upload over LFS instead."""
    log.warning("a client asked for a Xet token (%s/%s/%s): %s", org, space, name, XET_UNSUPPORTED)
    raise Unsupported(XET_UNSUPPORTED)
