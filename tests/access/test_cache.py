"""The principal cache: served while fresh, forgotten when access changes commit here."""

from __future__ import annotations

import time

import pytest

from depot.access import service as access
from depot.access.cache import PrincipalCache, current_generation
from depot.access.models import ApiToken
from depot.db.base import utcnow
from depot.db.engine import Database
from tests.conftest import World


def cached(database: Database, cache: PrincipalCache, token: str) -> access.Principal:
    generation = current_generation()
    with database.read() as db:
        principal = access.authenticate(db, token)
    cache.put(token, principal, generation)
    return principal


def test_a_principal_is_served_until_it_expires(database: Database, world: World) -> None:
    cache = PrincipalCache(ttl=0.2)
    alice = cached(database, cache, world.tokens["alice"])
    assert cache.get(world.tokens["alice"]) == alice
    assert cache.get(world.tokens["bob"]) is None
    time.sleep(0.25)
    assert cache.get(world.tokens["alice"]) is None


def test_committed_grants_and_revocations_empty_it(database: Database, world: World) -> None:
    cache = PrincipalCache()
    token = world.tokens["dave"]
    cached(database, cache, token)
    with database.write() as db:
        access.grant_role(
            db, "viewer", access.Scope(space_id=world.ml.id), user=access.get_user(db, "dave")
        )
        # Not committed yet: still served (the old grants are what others still see).
        assert cache.get(token) is not None
    assert cache.get(token) is None
    assert cached(database, cache, token).grants != ()

    with database.write() as db:
        access.revoke_role(db, access.Scope(space_id=world.ml.id), user=access.get_user(db, "dave"))
    assert cache.get(token) is None

    cached(database, cache, token)
    with database.write() as db:
        row = db.get(ApiToken, token.split("_", 2)[1])
        assert row is not None
        access.revoke_token(db, row.id)
    assert cache.get(token) is None


def test_a_rolled_back_change_and_a_last_use_keep_it(database: Database, world: World) -> None:
    cache = PrincipalCache()
    token = world.tokens["bob"]
    bob = cached(database, cache, token)
    with pytest.raises(RuntimeError), database.write() as db:
        access.grant_role(
            db, "admin", access.Scope(space_id=world.ml.id), user=access.get_user(db, "bob")
        )
        raise RuntimeError("abandon")
    assert cache.get(token) == bob
    with database.write() as db:
        access.record_token_use(db, token.split("_", 2)[1])
    assert cache.get(token) == bob


def test_a_principal_read_before_a_change_is_not_kept(database: Database, world: World) -> None:
    cache = PrincipalCache()
    token = world.tokens["carol"]
    generation = current_generation()
    with database.read() as db:
        stale = access.authenticate(db, token)
    with database.write() as db:
        db.get(ApiToken, token.split("_", 2)[1]).expires_at = utcnow()  # type: ignore[union-attr]
    cache.put(token, stale, generation)
    assert cache.get(token) is None
