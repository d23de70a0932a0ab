from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from depot.access import service as access
from depot.access.models import ApiToken, Role
from depot.catalog import service as catalog
from depot.db.base import utcnow
from depot.db.engine import Database
from depot.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from tests.conftest import World


def principal(database: Database, world: World, name: str) -> access.Principal:
    with database.read() as db:
        return access.authenticate(db, world.tokens[name])


def test_tokens_are_stored_only_as_a_hash(database: Database) -> None:
    with database.write() as db:
        user = access.create_user(db, "erin")
        row, token = access.create_token(db, user, name="laptop")
        assert token.startswith("tfy_") and row.id in token
        secret = token.split("_", 2)[2]
        stored = db.scalar(select(ApiToken).where(ApiToken.id == row.id))
        assert stored is not None and secret not in stored.secret_sha256
    with database.read() as db:
        who = access.authenticate(db, token)
    assert who.username == "erin" and who.token_id == row.id


@pytest.mark.parametrize(
    "token",
    [None, "", "garbage", "tfy_unknown_secret", "Bearer x", "xyz_a_b"],
)
def test_bad_tokens_are_unauthenticated(database: Database, token: str | None) -> None:
    with database.read() as db, pytest.raises(Unauthenticated):
        access.authenticate(db, token)


def test_wrong_secret_is_unauthenticated(database: Database) -> None:
    with database.write() as db:
        _row, token = access.create_token(db, access.create_user(db, "frank"))
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    with database.read() as db, pytest.raises(Unauthenticated, match="invalid"):
        access.authenticate(db, forged)


def test_revoked_and_expired_tokens(database: Database) -> None:
    with database.write() as db:
        user = access.create_user(db, "gina")
        revoked, revoked_token = access.create_token(db, user)
        expiring, expiring_token = access.create_token(
            db, user, expires_at=utcnow() + timedelta(hours=1)
        )
        access.revoke_token(db, revoked.id)
        expiring.expires_at = utcnow() - timedelta(seconds=1)
    with database.read() as db:
        with pytest.raises(Unauthenticated, match="revoked"):
            access.authenticate(db, revoked_token)
        with pytest.raises(Unauthenticated, match="expired"):
            access.authenticate(db, expiring_token)
    with database.write() as db, pytest.raises(Invalid):
        access.create_token(db, access.get_user(db, "gina"), expires_at=utcnow())


def test_disabled_users_cannot_authenticate(database: Database) -> None:
    with database.write() as db:
        user = access.create_user(db, "hank")
        _row, token = access.create_token(db, user)
        user.is_active = False
    with database.read() as db, pytest.raises(Unauthenticated, match="disabled"):
        access.authenticate(db, token)


def test_token_use_is_recorded(database: Database, world: World) -> None:
    who = principal(database, world, "alice")
    assert who.token_use_is_stale
    assert who.token_id is not None
    with database.write() as db:
        access.record_token_use(db, who.token_id)
    assert not principal(database, world, "alice").token_use_is_stale


def test_usernames_are_validated_and_unique(database: Database) -> None:
    with database.write() as db, pytest.raises(Invalid):
        access.create_user(db, "no spaces")
    with database.write() as db:
        access.create_user(db, "ivy")
    with database.write() as db, pytest.raises(Conflict):
        access.create_user(db, "ivy")


def test_roles_on_spaces(database: Database, world: World) -> None:
    alice = principal(database, world, "alice")
    bob = principal(database, world, "bob")
    carol = principal(database, world, "carol")
    dave = principal(database, world, "dave")
    root = principal(database, world, "root")
    assert access.role_on_space(alice, world.ml) is Role.EDITOR
    assert access.role_on_space(alice, world.web) is None
    assert access.role_on_space(bob, world.web) is Role.VIEWER
    assert access.role_on_space(carol, world.ml) is Role.ADMIN
    assert access.role_on_space(dave, world.ml) is None
    assert access.role_on_space(root, world.secret) is Role.ADMIN


def test_require_hides_what_cannot_be_seen(database: Database, world: World) -> None:
    alice = principal(database, world, "alice")
    bob = principal(database, world, "bob")
    assert access.require(alice, world.ml, Role.EDITOR) is Role.EDITOR
    with pytest.raises(NotFound):
        access.require(alice, world.web, Role.VIEWER)
    with pytest.raises(Forbidden, match="editor role required"):
        access.require(bob, world.ml, Role.EDITOR)
    with pytest.raises(NotFound):
        access.require(bob, world.secret, Role.VIEWER)


def test_the_highest_role_wins(database: Database, world: World) -> None:
    with database.write() as db:
        bob = access.get_user(db, "bob")
        access.grant_role(db, Role.ADMIN, access.Scope(space_id=world.ml.id), user=bob)
    who = principal(database, world, "bob")
    assert access.role_on_space(who, world.ml) is Role.ADMIN
    assert access.role_on_space(who, world.web) is Role.VIEWER


def test_granting_again_replaces_the_role(database: Database, world: World) -> None:
    scope = access.Scope(space_id=world.ml.id)
    with database.write() as db:
        alice = access.get_user(db, "alice")
        access.grant_role(db, "viewer", scope, user=alice)
    assert access.role_on_space(principal(database, world, "alice"), world.ml) is Role.VIEWER
    with database.write() as db:
        assert access.revoke_role(db, scope, user=access.get_user(db, "alice"))
        assert not access.revoke_role(db, scope, user=access.get_user(db, "alice"))
    assert access.role_on_space(principal(database, world, "alice"), world.ml) is None
    with database.write() as db, pytest.raises(Invalid):
        access.grant_role(db, "owner", scope, user=access.get_user(db, "alice"))


def test_team_roles_apply_to_members(database: Database, world: World) -> None:
    with database.write() as db:
        org = catalog.get_org(db, "acme")
        team = access.create_team(db, org, "data-eng")
        access.add_team_member(db, team, access.get_user(db, "dave"))
        access.add_team_member(db, team, access.get_user(db, "dave"))
        access.grant_role(db, "editor", access.Scope(space_id=world.web.id), team=team)
    dave = principal(database, world, "dave")
    assert access.role_on_space(dave, world.web) is Role.EDITOR
    assert access.role_on_space(dave, world.ml) is None
    with database.write() as db, pytest.raises(Conflict):
        access.create_team(db, catalog.get_org(db, "acme"), "data-eng")


def test_visible_spaces_and_orgs(database: Database, world: World) -> None:
    with database.read() as db:

        def spaces(name: str) -> list[str]:
            who = access.authenticate(db, world.tokens[name])
            return [space.slug for space in catalog.list_spaces(db, who)]

        def orgs(name: str) -> list[str]:
            who = access.authenticate(db, world.tokens[name])
            return [org.slug for org in catalog.list_orgs(db, who)]

        assert spaces("alice") == ["ml"]
        assert spaces("bob") == ["ml", "web"]
        assert spaces("dave") == []
        assert sorted(spaces("root")) == ["ml", "secret", "web"]
        assert (
            orgs("alice") == ["acme"] and orgs("dave") == [] and orgs("root") == ["acme", "globex"]
        )


def test_org_level_checks(database: Database, world: World) -> None:
    with database.read() as db:
        carol = access.authenticate(db, world.tokens["carol"])
        alice = access.authenticate(db, world.tokens["alice"])
        dave = access.authenticate(db, world.tokens["dave"])
        assert access.require_org(db, carol, world.acme, Role.ADMIN) is Role.ADMIN
        with pytest.raises(Forbidden):
            access.require_org(db, alice, world.acme, Role.VIEWER)
        with pytest.raises(NotFound):
            access.require_org(db, dave, world.acme, Role.VIEWER)


def test_scopes(database: Database, world: World) -> None:
    with database.read() as db:
        assert access.parse_scope(db, "org:acme").org_id == world.acme.id
        assert access.parse_scope(db, "space:acme/ml").space_id == world.ml.id
        for bad in ("acme", "org:", "space:acme", "team:x"):
            with pytest.raises(Invalid):
                access.parse_scope(db, bad)
        with pytest.raises(NotFound):
            access.parse_scope(db, "space:acme/nope")
        grants = access.list_grants(db, access.authenticate(db, world.tokens["alice"]))
        assert grants == [(Role.EDITOR, "space:acme/ml")]
