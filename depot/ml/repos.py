"""ML repos: the spaces of the caller's org (the tenant), as the ML API sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from depot.access.models import Role, User
from depot.access.service import (
    Principal,
    Scope,
    grant_role,
    require,
    require_org,
    visible_org_ids,
    visible_spaces,
)
from depot.catalog.models import Org, Space
from depot.catalog.service import create_space
from depot.db.base import parse_integer
from depot.db.columns import execute_columns
from depot.errors import Invalid, NotFound
from depot.ml.schemas import MlRepoManifest

__all__ = [
    "COLLABORATOR_ROLES",
    "Creator",
    "MlRepoRow",
    "apply_ml_repo",
    "delete_ml_repo",
    "find_ml_repo",
    "get_ml_repo",
    "list_ml_repos",
    "ml_repo_row",
    "repo_by_name",
    "tenant",
    "user_email",
]

# TrueFoundry's role ids for ML repo collaborators, and the Depot role each grants.
COLLABORATOR_ROLES = {
    "mlf-project-admin": Role.ADMIN,
    "mlf-project-editor": Role.EDITOR,
    "mlf-project-viewer": Role.VIEWER,
}
EMAIL_DOMAIN = "users.depot.invalid"


@dataclass(frozen=True, slots=True)
class Creator:
    """Who created an ML repo, as the ML API names them (a plain row)."""

    id: int
    username: str
    display_name: str
    is_service_account: bool


@dataclass(frozen=True, slots=True)
class MlRepoRow:
    """An ML repo as the ML API shows it: its space, with its org's slug and its creator,
    as plain rows (it is also what access checks read of a space)."""

    id: int
    org_id: int
    slug: str
    description: str
    metadata_: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    org_slug: str
    creator: Creator | None


# A repo with its org and creator in one statement of plain columns: the ORM's work for
# three mapped objects was most of an ML repo GET.
_REPO_ROW = (
    select(
        *(getattr(Space, name) for name in MlRepoRow.__slots__[:7]),
        Org.slug,
        *(getattr(User, name) for name in Creator.__slots__),
    )
    .join(Org, Org.id == Space.org_id)
    .outerjoin(User, User.id == Space.created_by_id)
    .where(Space.id == bindparam("repo_id"))
)


def _repo_row(db: Session, space_id: int) -> MlRepoRow | None:
    row = execute_columns(db, _REPO_ROW, {"repo_id": space_id}).first()
    if row is None:
        return None
    creator = None if row[8] is None else Creator(row[8], row[9], row[10], row[11])
    return MlRepoRow(*row[:8], creator=creator)


def user_email(user: User) -> str:
    """The user's email, or a stable stand-in for users without one (clients require one)."""
    return user.email or f"{user.username}@{EMAIL_DOMAIN}"


def tenant(db: Session, principal: Principal) -> Org:
    """The org the ML API works in for this caller: the first (by slug) they have a role in.

    Raises:
        NotFound: the caller has no role in any org.
    """
    ids = visible_org_ids(principal, db)
    query = select(Org).order_by(Org.slug).limit(1)
    if ids is not None:
        query = query.where(Org.id.in_(ids))
    org = db.scalar(query)
    if org is None:
        raise NotFound(
            "there is no org to work in: create one (depot admin create-org SLUG)"
            " and give this user a role in it"
        )
    return org


def _find_user(db: Session, subject: str) -> User:
    kind, _, who = subject.partition(":")
    if kind != "user" or not who:
        raise Invalid(
            f"collaborator subject {subject!r} must look like user:<email or name>",
            loc=("body", "manifest", "collaborators"),
        )
    local, _, domain = who.partition("@")
    user = db.scalar(select(User).where(func.lower(User.email) == who.lower()))
    if user is None and domain in ("", EMAIL_DOMAIN):
        user = db.scalar(select(User).where(User.username == local))
    if user is None:
        raise Invalid(
            f"collaborator {who!r} is not a Depot user", loc=("body", "manifest", "collaborators")
        )
    return user


def apply_ml_repo(db: Session, principal: Principal, manifest: MlRepoManifest) -> Space:
    """Create the ML repo (a space of the tenant) or update the one with that name.

    Creating needs editor on the tenant org; updating needs admin on the repo.
    Collaborators are granted their role on the space.
    """
    org = tenant(db, principal)
    space = db.scalar(select(Space).where(Space.org_id == org.id, Space.slug == manifest.name))
    if space is None:
        require_org(db, principal, org, Role.EDITOR)
        space = create_space(db, org, manifest.name, description=manifest.description or "")
        space.created_by_id = principal.user_id
    else:
        require(principal, space, Role.ADMIN, what=f"ML repo {manifest.name}")
        space.description = manifest.description or ""
    for collaborator in manifest.collaborators or []:
        role = COLLABORATOR_ROLES.get(collaborator.role_id)
        if role is None:
            allowed = ", ".join(COLLABORATOR_ROLES)
            raise Invalid(
                f"role_id {collaborator.role_id!r} is not one of {allowed}",
                loc=("body", "manifest", "collaborators"),
            )
        grant_role(db, role, Scope(space_id=space.id), user=_find_user(db, collaborator.subject))
    space.metadata_ = {**space.metadata_, "ml_repo": manifest.model_dump(mode="json")}
    db.flush()
    return space


def find_ml_repo(db: Session, principal: Principal, repo_id: str) -> MlRepoRow:
    """The ML repo with this (integer) id, with its org and creator, if the caller may view it.

    Raises:
        NotFound: no such repo, or not visible.
    """
    number = parse_integer(repo_id)
    repo = None if number is None else _repo_row(db, number)
    if repo is None:
        raise NotFound(f"ML repo {repo_id} not found")
    require(principal, repo, Role.VIEWER, what=f"ML repo {repo_id}")
    return repo


def ml_repo_row(db: Session, space: Space) -> MlRepoRow:
    """``space`` as the ML API shows it (the caller checked access)."""
    repo = _repo_row(db, space.id)
    assert repo is not None  # the space is in this transaction
    return repo


def get_ml_repo(db: Session, principal: Principal, repo_id: str) -> Space:
    """The ML repo with this (integer) id, if the caller may view it.

    Raises:
        NotFound: no such repo, or not visible.
    """
    space = db.get(Space, find_ml_repo(db, principal, repo_id).id)
    assert space is not None  # found in this transaction a statement ago
    return space


def repo_by_name(db: Session, principal: Principal, org: Org, name: str) -> Space:
    """The ML repo ``name`` of ``org``, if the caller may view it.

    Raises:
        NotFound: no such repo, or not visible.
    """
    space = db.scalar(select(Space).where(Space.org_id == org.id, Space.slug == name))
    if space is None:
        raise NotFound(f"ML repo {name} not found")
    require(principal, space, Role.VIEWER, what=f"ML repo {name}")
    return space


def list_ml_repos(
    db: Session, principal: Principal, *, name: str | None, limit: int, offset: int
) -> tuple[list[Space], int]:
    """The tenant's repos the caller may view (an exact ``name`` filter), by id."""
    org = tenant(db, principal)
    query = select(Space).where(Space.org_id == org.id, visible_spaces(principal))
    if name is not None:
        query = query.where(Space.slug == name)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(Space.id).offset(offset).limit(limit)))
    return rows, total


def delete_ml_repo(db: Session, principal: Principal, repo_id: str) -> None:
    """Delete an ML repo with everything in it (admins of the repo only)."""
    space = get_ml_repo(db, principal, repo_id)
    require(principal, space, Role.ADMIN, what=f"ML repo {repo_id}")
    db.delete(space)
    db.flush()
