"""Listing, creating and updating model records."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from depot.access.models import Role
from depot.access.service import require, require_org_visible
from depot.api.deps import CurrentPrincipal, ReadDb, Svc, WriteDb
from depot.api.routing import OneHopRoute, short_read
from depot.catalog.service import get_org
from depot.model_records import service as records
from depot.model_records.schemas import (
    ModelFamily,
    ModelRecordChanges,
    ModelRecordCreate,
    ModelSummary,
    ProductType,
)

__all__ = ["router"]

router = APIRouter(route_class=OneHopRoute)


class ListingQuery(BaseModel):
    """The query of a listing of model records: its filters and its page."""

    # One model rather than nine parameters: FastAPI then validates the query once, not
    # each parameter apart (a page of a small space: 4.06M -> 3.81M instructions).

    q: str | None = Field(None, max_length=500, description="Search the model's text fields.")
    model_family: ModelFamily | None = None
    types: list[ProductType] | None = None
    deployment_status: str | None = None
    model_task_type: str | None = None
    risk_classification: str | None = None
    include_archived: bool = False
    skip: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=1000)

    def filters(self) -> records.ModelFilters:
        """What the listing service filters on (the page is ``skip`` and ``limit``)."""
        return records.ModelFilters(
            q=self.q or None,
            model_family=self.model_family,
            types=tuple(self.types or ()),
            deployment_status=self.deployment_status,
            model_task_type=self.model_task_type,
            risk_classification=self.risk_classification,
            include_archived=self.include_archived,
        )


Listing = Annotated[ListingQuery, Query()]


def _paged(
    response: Response, page: list[ModelSummary], total: int, skip: int, limit: int
) -> list[ModelSummary]:
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Page"] = str(skip // limit + 1)
    response.headers["X-Has-More"] = "true" if skip + len(page) < total else "false"
    return page


# On the loop on SQLite: a page of a space is a few indexed queries (a space under
# listing_index.MIN_MODELS) or a walk of the in-memory index, which holds the GIL in a
# thread too. Through the thread pool, 16 connections to one worker made a page of one
# model cost 1.4 ms of CPU against 0.6 ms here (890 -> 1,790 req/s). The exception, a
# large space's first page while its index builds (SQL, tens of ms), is rare.
@router.get("/catalog/spaces/{slug}/model-repository/models", response_model=list[ModelSummary])
@short_read
def list_space_models(
    slug: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    response: Response,
    query: Listing,
) -> list[ModelSummary]:
    """Model repository records of one space (the slug, or ORG:SLUG when ambiguous)."""
    space = records.find_space(db, principal, slug)
    page, total = records.list_model_records(
        db, principal, query.filters(), space=space, skip=query.skip, limit=query.limit
    )
    return _paged(response, page, total, query.skip, query.limit)


@router.get("/organizations/{slug}/model-repository/models", response_model=list[ModelSummary])
def list_organization_models(
    slug: str,
    principal: CurrentPrincipal,
    db: ReadDb,
    response: Response,
    query: Listing,
) -> list[ModelSummary]:
    """Model repository records across the org's spaces the caller may view."""
    org = get_org(db, slug)
    require_org_visible(db, principal, org)
    page, total = records.list_model_records(
        db, principal, query.filters(), org=org, skip=query.skip, limit=query.limit
    )
    return _paged(response, page, total, query.skip, query.limit)


@router.post(
    "/catalog/spaces/{slug}/model-repository/models", status_code=201, response_model=ModelSummary
)
def create_model(
    slug: str,
    body: ModelRecordCreate,
    principal: CurrentPrincipal,
    db: WriteDb,
    svc: Svc,
) -> ModelSummary:
    """Create a model record (a catalog product of a Model Repository type) in a space."""
    space = records.resolve_space(db, principal, slug)
    require(principal, space, Role.EDITOR)
    artifact = records.create_model_record(
        db,
        space,
        body,
        created_by_id=principal.user_id,
        product_limit=svc.settings.catalog_product_limit,
    )
    return records.summarize(db, [artifact.id], new=True)[0]


@router.patch("/catalog/products/{product_id}/model-repository", response_model=ModelSummary)
def update_model(
    product_id: uuid.UUID,
    body: ModelRecordChanges,
    principal: CurrentPrincipal,
    db: WriteDb,
) -> ModelSummary:
    """Change some fields of a model record; `is_archived` archives or restores it."""
    artifact, _space = records.load_model(db, principal, product_id, Role.EDITOR)
    records.update_model_record(db, artifact, body)
    return records.summarize(db, [artifact.id])[0]
