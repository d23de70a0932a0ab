"""Who the caller is, and what they may do: users, teams, tokens, role bindings.

One permission check serves every surface: :func:`require` raises
:class:`NotFound` when the caller may not even see the object (so existence
does not leak) and :class:`Forbidden` when they may see it but lack the role.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, bindparam, delete, false, or_, select, true
from sqlalchemy.orm import Session

from depot.access.models import ApiToken, Role, RoleBinding, Team, TeamMember, User
from depot.catalog.models import Org, Space
from depot.db.base import add_unique, affected_rows, utcnow
from depot.errors import Forbidden, Invalid, MissingCredentials, NotFound, Unauthenticated

__all__ = [
    "Grant",
    "Principal",
    "Scope",
    "SpaceKey",
    "TOKEN_PREFIX",
    "add_team_member",
    "authenticate",
    "create_team",
    "create_token",
    "create_user",
    "get_team",
    "get_user",
    "grant_role",
    "list_grants",
    "list_tokens",
    "load_principal",
    "parse_scope",
    "record_token_use",
    "require",
    "require_org",
    "require_org_visible",
    "revoke_role",
    "revoke_token",
    "role_on_org",
    "role_on_space",
    "VISIBLE_SPACES",
    "visible_org_ids",
    "visible_space_params",
    "visible_spaces",
]

# Depot's tokens start with "tfy_": TrueFoundry's `truefoundry` package resolves such keys
# through /session and would try to decode any other key as a JWT. Nothing else in Depot
# reads the prefix; the part after it is "<public id>_<secret>".
TOKEN_PREFIX = "tfy"
_USERNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
_TEAM_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Writing last_used_at on every request would make every read a write; once a minute is enough.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Grant:
    """One role the principal holds, directly or through a team, on one scope."""

    role: Role
    org_id: int | None = None
    space_id: int | None = None
    artifact_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and every grant that applies to them."""

    user_id: int
    username: str
    is_superuser: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    token_id: str | None = None
    token_last_used_at: datetime | None = None

    @property
    def token_use_is_stale(self) -> bool:
        """True when the token's last-use time is old enough to be worth a write."""
        if self.token_id is None:
            return False
        last = self.token_last_used_at
        return last is None or utcnow() - last > _LAST_USED_RESOLUTION


@dataclass(frozen=True)
class Scope:
    """Where a role binding applies: exactly one of an org, a space or an artifact."""

    org_id: int | None = None
    space_id: int | None = None
    artifact_id: uuid.UUID | None = None
    label: str = ""


# -- users, teams, tokens ---------------------------------------------------------------


def create_user(
    db: Session,
    username: str,
    *,
    email: str | None = None,
    display_name: str = "",
    is_superuser: bool = False,
    is_service_account: bool = False,
) -> User:
    """Create a user.

    Raises:
        Invalid: the username is not 1-64 letters, digits, dots, dashes or underscores.
        Conflict: the username is taken.
    """
    if not _USERNAME.match(username):
        raise Invalid(
            "username must be 1-64 letters, digits, '.', '-' or '_', starting and ending"
            " with a letter or digit",
            loc=("username",),
        )
    user = User(
        username=username,
        email=email,
        display_name=display_name or username,
        is_superuser=is_superuser,
        is_service_account=is_service_account,
        created_at=utcnow(),
    )
    add_unique(db, user, f"user {username!r} already exists")
    return user


def get_user(db: Session, username: str) -> User:
    """The user called ``username``.

    Raises:
        NotFound: no such user.
    """
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def create_team(db: Session, org: Org, slug: str, *, name: str | None = None) -> Team:
    """Create a team in ``org``.

    Raises:
        Invalid: the slug is not lowercase letters, digits and dashes.
        Conflict: the org already has a team with that slug.
    """
    if not _TEAM_SLUG.match(slug):
        raise Invalid("team slug must be lowercase letters, digits and '-'", loc=("slug",))
    team = Team(org_id=org.id, slug=slug, name=name or slug, created_at=utcnow())
    add_unique(db, team, f"team {org.slug}/{slug} already exists")
    return team


def get_team(db: Session, org: Org, slug: str) -> Team:
    """The team ``slug`` of ``org``.

    Raises:
        NotFound: no such team.
    """
    team = db.scalar(select(Team).where(Team.org_id == org.id, Team.slug == slug))
    if team is None:
        raise NotFound(f"team {org.slug}/{slug} not found")
    return team


def add_team_member(db: Session, team: Team, user: User) -> None:
    """Add ``user`` to ``team``; adding a member twice does nothing."""
    if db.get(TeamMember, (team.id, user.id)) is None:
        db.add(TeamMember(team_id=team.id, user_id=user.id))
        db.flush()


def create_token(
    db: Session, user: User, *, name: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Issue a new API token for ``user``.

    Returns:
        The stored token row and the token string. The string is shown once;
        only the SHA-256 of its secret part is kept.
    """
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("a token cannot expire in the past", loc=("expires_at",))
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    row = ApiToken(
        id=token_id,
        user_id=user.id,
        name=name,
        secret_sha256=_digest(secret),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def list_tokens(db: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked ones included."""
    return list(
        db.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        )
    )


def revoke_token(db: Session, token_id: str, *, user: User | None = None) -> ApiToken:
    """Revoke a token by its public id (restricted to ``user``'s tokens if given).

    Raises:
        NotFound: no such token.
    """
    row = db.get(ApiToken, token_id)
    if row is None or (user is not None and row.user_id != user.id):
        raise NotFound(f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(db: Session, token: str | None) -> Principal:
    """The principal a bearer token stands for. Reads only; see :func:`record_token_use`.

    Raises:
        Unauthenticated: no token, or one that is malformed, unknown, revoked or expired.
    """
    if not token:
        raise MissingCredentials("authentication required: send 'Authorization: Bearer <token>'")
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthenticated("invalid token")
    _prefix, token_id, secret = parts
    row = db.get(ApiToken, token_id)
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        raise Unauthenticated("invalid token")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthenticated("token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("token has expired")
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("the token's user is disabled")
    principal = load_principal(db, user)
    return replace(principal, token_id=token_id, token_last_used_at=row.last_used_at)


def record_token_use(db: Session, token_id: str) -> None:
    """Note that a token was just used (callers do it when :attr:`Principal.token_use_is_stale`)."""
    row = db.get(ApiToken, token_id)
    if row is not None:
        row.last_used_at = utcnow()


def load_principal(db: Session, user: User) -> Principal:
    """Gather every grant that applies to ``user``: their own and their teams'."""
    team_ids = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    bindings = db.scalars(
        select(RoleBinding).where(
            or_(RoleBinding.user_id == user.id, RoleBinding.team_id.in_(team_ids))
        )
    )
    grants = tuple(Grant(Role(b.role), b.org_id, b.space_id, b.artifact_id) for b in bindings)
    return Principal(user.id, user.username, user.is_superuser, grants)


# -- role bindings ----------------------------------------------------------------------


def parse_scope(db: Session, text: str) -> Scope:
    """Resolve ``org:ORG`` or ``space:ORG/SPACE``.

    Raises:
        Invalid: the text has neither form.
        NotFound: the org or space does not exist.
    """
    kind, _, rest = text.partition(":")
    if kind == "org" and rest:
        org = _org(db, rest)
        return Scope(org_id=org.id, label=f"org:{org.slug}")
    if kind == "space" and rest.count("/") == 1:
        org_slug, space_slug = rest.split("/")
        org = _org(db, org_slug)
        space = db.scalar(select(Space).where(Space.org_id == org.id, Space.slug == space_slug))
        if space is None:
            raise NotFound(f"space {org_slug}/{space_slug} not found")
        return Scope(space_id=space.id, label=f"space:{org.slug}/{space.slug}")
    raise Invalid(f"scope must be org:ORG or space:ORG/SPACE, not {text!r}", loc=("scope",))


def _org(db: Session, slug: str) -> Org:
    org = db.scalar(select(Org).where(Org.slug == slug))
    if org is None:
        raise NotFound(f"org {slug!r} not found")
    return org


def _binding_filter(
    scope: Scope, *, user: User | None, team: Team | None
) -> list[ColumnElement[bool]]:
    if (user is None) == (team is None):
        raise ValueError("a role binding names exactly one user or one team")
    return [
        RoleBinding.user_id == user.id if user else RoleBinding.user_id.is_(None),
        RoleBinding.team_id == team.id if team else RoleBinding.team_id.is_(None),
        RoleBinding.org_id == scope.org_id if scope.org_id else RoleBinding.org_id.is_(None),
        RoleBinding.space_id == scope.space_id
        if scope.space_id
        else RoleBinding.space_id.is_(None),
        RoleBinding.artifact_id == scope.artifact_id
        if scope.artifact_id
        else RoleBinding.artifact_id.is_(None),
    ]


def grant_role(
    db: Session,
    role: Role | str,
    scope: Scope,
    *,
    user: User | None = None,
    team: Team | None = None,
) -> RoleBinding:
    """Give ``user`` or ``team`` ``role`` on ``scope``, replacing the role they had there.

    Raises:
        Invalid: ``role`` is not viewer, editor or admin.
    """
    try:
        role = Role(role)
    except ValueError:
        raise Invalid("role must be viewer, editor or admin", loc=("role",)) from None
    where = _binding_filter(scope, user=user, team=team)
    binding = db.scalar(select(RoleBinding).where(*where))
    if binding is None:
        binding = RoleBinding(
            user_id=user.id if user else None,
            team_id=team.id if team else None,
            org_id=scope.org_id,
            space_id=scope.space_id,
            artifact_id=scope.artifact_id,
            role=role.value,
            created_at=utcnow(),
        )
        db.add(binding)
    else:
        binding.role = role.value
    db.flush()
    return binding


def revoke_role(
    db: Session, scope: Scope, *, user: User | None = None, team: Team | None = None
) -> bool:
    """Remove whatever role ``user`` or ``team`` holds on ``scope``. True if there was one."""
    where = _binding_filter(scope, user=user, team=team)
    # A bulk delete passes no objects through the flush: tell the principal cache
    # (depot.access.cache) directly.
    db.info["access_changed"] = True
    return bool(affected_rows(db.execute(delete(RoleBinding).where(*where))))


def list_grants(db: Session, principal: Principal) -> list[tuple[Role, str]]:
    """The principal's grants as (role, ``org:ORG`` / ``space:ORG/SPACE``) pairs."""
    labels: list[tuple[Role, str]] = []
    for grant in principal.grants:
        if grant.org_id is not None:
            org = db.get(Org, grant.org_id)
            if org is not None:
                labels.append((grant.role, f"org:{org.slug}"))
        elif grant.space_id is not None:
            row = db.execute(
                select(Org.slug, Space.slug)
                .join(Space, Space.org_id == Org.id)
                .where(Space.id == grant.space_id)
            ).first()
            if row is not None:
                labels.append((grant.role, f"space:{row[0]}/{row[1]}"))
        elif grant.artifact_id is not None:
            labels.append((grant.role, f"artifact:{grant.artifact_id}"))
    return sorted(set(labels), key=lambda pair: (pair[1], pair[0].rank))


# -- the permission check -----------------------------------------------------------------


def _best(roles: list[Role]) -> Role | None:
    return max(roles, key=lambda role: role.rank) if roles else None


def role_on_org(principal: Principal, org: Org) -> Role | None:
    """The principal's role on the org itself (superusers are admins everywhere)."""
    if principal.is_superuser:
        return Role.ADMIN
    return _best([g.role for g in principal.grants if g.org_id == org.id])


class SpaceKey(Protocol):
    """What access checks read of a space: a :class:`Space`, or a read's plain row."""

    @property
    def id(self) -> int: ...
    @property
    def org_id(self) -> int: ...
    @property
    def slug(self) -> str: ...


def role_on_space(
    principal: Principal, space: SpaceKey, *, artifact_id: uuid.UUID | None = None
) -> Role | None:
    """The principal's role on ``space`` (or one artifact in it), through any binding."""
    if principal.is_superuser:
        return Role.ADMIN
    return _best(
        [
            g.role
            for g in principal.grants
            if g.org_id == space.org_id
            or g.space_id == space.id
            or (artifact_id is not None and g.artifact_id == artifact_id)
        ]
    )


def require(
    principal: Principal,
    space: SpaceKey,
    role: Role,
    *,
    artifact_id: uuid.UUID | None = None,
    what: str | None = None,
) -> Role:
    """Check that ``principal`` holds at least ``role`` on ``space`` (or the artifact).

    Args:
        what: how to name the object in the error, e.g. ``"model acme/ml/churn"``.

    Raises:
        NotFound: the principal may not see the space at all.
        Forbidden: the principal may see it but holds a lesser role.
    """
    held = role_on_space(principal, space, artifact_id=artifact_id)
    name = what or f"space {space.slug}"
    if held is None:
        raise NotFound(f"{name} not found")
    if held.rank < role.rank:
        raise Forbidden(f"{role.value} role required on {name}; you are {held.value}")
    return held


def require_org(db: Session, principal: Principal, org: Org, role: Role) -> Role:
    """Check that ``principal`` holds at least ``role`` on the org itself.

    Raises:
        NotFound: the principal has no binding anywhere in the org.
        Forbidden: the principal is in the org but holds a lesser role on it.
    """
    held = role_on_org(principal, org)
    if held is None or held.rank < role.rank:
        if held is None and org.id not in (visible_org_ids(principal, db) or set()):
            raise NotFound(f"org {org.slug} not found")
        shown = held.value if held else "not a member of the org itself"
        raise Forbidden(f"{role.value} role required on org {org.slug}; you are {shown}")
    return held


def require_org_visible(db: Session, principal: Principal, org: Org) -> None:
    """Check that the principal has some role in ``org`` (on it or on one of its spaces).

    Raises:
        NotFound: the principal has none, so the org is not theirs to know about.
    """
    visible = visible_org_ids(principal, db)
    if visible is not None and org.id not in visible:
        raise NotFound(f"org {org.slug!r} not found")


def visible_spaces(principal: Principal) -> ColumnElement[bool]:
    """A filter on :class:`Space` rows that keeps the spaces the principal may view."""
    if principal.is_superuser:
        return true()
    org_ids = {g.org_id for g in principal.grants if g.org_id is not None}
    space_ids = {g.space_id for g in principal.grants if g.space_id is not None}
    if not org_ids and not space_ids:
        return false()
    return or_(Space.org_id.in_(org_ids), Space.id.in_(space_ids))


# visible_spaces with the ids as parameters, for a statement built once (building one costs
# more Python than running it): run it with visible_space_params(principal).
VISIBLE_SPACES: ColumnElement[bool] = or_(
    Space.org_id.in_(bindparam("visible_org_ids", expanding=True)),
    Space.id.in_(bindparam("visible_space_ids", expanding=True)),
)


def visible_space_params(principal: Principal) -> dict[str, list[int]] | None:
    """The parameters of :data:`VISIBLE_SPACES`; ``None`` for a superuser, who sees all."""
    if principal.is_superuser:
        return None
    return {
        "visible_org_ids": sorted({g.org_id for g in principal.grants if g.org_id is not None}),
        "visible_space_ids": sorted(
            {g.space_id for g in principal.grants if g.space_id is not None}
        ),
    }


def visible_org_ids(principal: Principal, db: Session | None) -> set[int] | None:
    """Ids of orgs the principal has any binding in; ``None`` means all (superuser).

    Space bindings count through their space's org, which needs ``db``.
    """
    if principal.is_superuser:
        return None
    org_ids = {g.org_id for g in principal.grants if g.org_id is not None}
    space_ids = {g.space_id for g in principal.grants if g.space_id is not None}
    if space_ids and db is not None:
        org_ids |= set(db.scalars(select(Space.org_id).where(Space.id.in_(space_ids))))
    return org_ids
