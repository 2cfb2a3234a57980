"""The partner-flow storage protocols (users, codes, refresh token families, consents,
sessions): one contract for the in-memory store and SQLAlchemy on SQLite and PostgreSQL.

PostgreSQL runs it twice: with refresh tokens rotated in one statement (as it serves) and
with the portable statements SQLite rotates with, so the two forms of the rotation rule
(:mod:`tokensmith.storage.sql.rotation`) are held to the same outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, fresh_database
from tests.storage.conftest import ROTATION_FORMS, store_of
from tokensmith.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    Client,
    ClientSecret,
    Consent,
    Merchant,
    PushedRequest,
    RefreshTokenRecord,
    Session,
    TokenFamily,
    User,
)
from tokensmith.core.ports import Store
from tokensmith.storage.sql import SqlStore, make_engine, migrate


@pytest.fixture(params=ROTATION_FORMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_of(request.param, tmp_path) as made:
        yield made


def _user(uid: str = "u1", email: str = "a@shop.test", **kw: object) -> User:
    base: dict[str, object] = {
        "user_id": uid,
        "email": email,
        "password_hash": "$argon2id$x",
        "role": "admin",
        "merchant_id": "m1",
        "created_at": 1.0,
    }
    base.update(kw)
    return User(**base)  # type: ignore[arg-type]


def _code(h: str = "c" * 64, **kw: object) -> AuthorizationCode:
    base: dict[str, object] = {
        "code_hash": h,
        "client_id": "app",
        "redirect_uri": "https://a.example/cb",
        "redirect_uri_sent": True,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "merchant_id": "m1",
        "user_id": "u1",
        "scope": "read write",
        "family_id": "f1",
        "issued_at": 100.0,
        "expires_at": 700.0,
    }
    base.update(kw)
    return AuthorizationCode(**base)  # type: ignore[arg-type]


def _family(fid: str = "f1", **kw: object) -> TokenFamily:
    base: dict[str, object] = {
        "family_id": fid,
        "client_id": "app",
        "merchant_id": "m1",
        "user_id": "u1",
        "scope": "read write",
        "created_at": 100.0,
        "expires_at": 1000.0,
        "absolute_expires_at": 5000.0,
    }
    base.update(kw)
    return TokenFamily(**base)  # type: ignore[arg-type]


def _rt(h: str, fid: str = "f1", **kw: object) -> RefreshTokenRecord:
    base: dict[str, object] = {
        "token_hash": h,
        "family_id": fid,
        "client_id": "app",
        "scope": "read write",
        "issued_at": 100.0,
        "expires_at": 1000.0,
        "access_jti": "j-" + h[:4],
    }
    base.update(kw)
    return RefreshTokenRecord(**base)  # type: ignore[arg-type]


async def _seed(store: Store) -> None:
    await store.add_merchant(Merchant("m1", "Shop", 1.0))
    await store.add_user(_user())


async def _started(store: Store) -> None:
    """A family f1 whose first refresh token is ``r1``."""
    await _seed(store)
    await store.add_code(_code())
    assert await store.redeem_code("c" * 64, 150.0, _family(), _rt("r1" * 32))


async def test_user_round_trips_and_emails_are_unique(store: Store) -> None:
    await _seed(store)
    assert await store.get_user("u1") == _user()
    assert await store.find_user_by_email("a@shop.test") == _user()
    with pytest.raises(KeyError):
        await store.add_user(_user("u2"))
    await store.add_user(_user("u3", "op@ts.test", role="operator", merchant_id=None))
    assert [u.user_id for u in await store.list_users("m1")] == ["u1"]
    assert len(await store.list_users()) == 2
    assert await store.disable_user("u1", 5.0) is True
    assert await store.disable_user("u1", 6.0) is False
    assert (await store.get_user("u1")).disabled_at == 5.0  # type: ignore[union-attr]


async def test_a_password_hash_is_replaced_only_while_it_is_unchanged(store: Store) -> None:
    await _seed(store)
    old, new, other = "$argon2id$old", "$argon2id$new", "$argon2id$other"
    await store.add_user(_user("u2", "b@shop.test", password_hash=old))
    assert await store.update_password_hash("u2", old, new) is True
    assert (await store.get_user("u2")) == _user("u2", "b@shop.test", password_hash=new)
    # a second upgrade from the same old hash (a parallel login) changes nothing
    assert await store.update_password_hash("u2", old, other) is False
    assert (await store.find_user_by_email("b@shop.test")).password_hash == new  # type: ignore[union-attr]
    assert await store.update_password_hash("nobody", old, new) is False
    assert await store.get_user("u1") == _user()  # other users are untouched


async def test_disable_merchant_once(store: Store) -> None:
    await _seed(store)
    assert await store.disable_merchant("m1", 9.0) is True
    assert await store.disable_merchant("m1", 10.0) is False
    assert await store.disable_merchant("nope", 10.0) is False
    assert (await store.get_merchant("m1")).disabled_at == 9.0  # type: ignore[union-attr]


async def test_code_round_trips_and_redeems_once(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code())
    assert await store.find_code("c" * 64) == _code()
    assert await store.redeem_code("c" * 64, 150.0, _family(), _rt("r1" * 32)) is True
    assert await store.redeem_code("c" * 64, 151.0, _family("f2"), _rt("r2" * 32)) is False
    assert (await store.find_code("c" * 64)).used_at == 150.0  # type: ignore[union-attr]
    assert (
        await store.get_family("f2") is None and await store.find_refresh_token("r2" * 32) is None
    )
    assert await store.get_family("f1") == _family()


async def test_a_code_keeps_the_dpop_key_it_is_bound_to(store: Store) -> None:
    """RFC 9449 §10: the ``dpop_jkt`` of the request travels with the code."""
    await store.add_code(_code(dpop_jkt="k" * 43))
    assert (await store.find_code("c" * 64)).dpop_jkt == "k" * 43  # type: ignore[union-attr]


async def test_parallel_redemptions_of_one_code_succeed_once(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code())
    results = await asyncio.gather(
        *(
            store.redeem_code("c" * 64, 150.0, _family(f"f{i}"), _rt(f"{i:064d}", f"f{i}"))
            for i in range(10)
        )
    )
    assert results.count(True) == 1


async def test_rotation_spends_once_and_links_the_successor(store: Store) -> None:
    await _started(store)
    new = _rt("r2" * 32, issued_at=200.0, expires_at=1200.0)
    assert await store.rotate_refresh_token("r1" * 32, new, 200.0) is True
    assert await store.rotate_refresh_token("r1" * 32, _rt("r3" * 32), 201.0) is False
    old = await store.find_refresh_token("r1" * 32)
    assert old is not None and old.spent_at == 200.0 and old.spent_reason == "rotated"
    assert old.replaced_by == "r2" * 32
    assert await store.find_refresh_token("r3" * 32) is None
    assert (await store.get_family("f1")).expires_at == 1200.0  # type: ignore[union-attr]


async def test_parallel_rotations_of_one_token_succeed_once(store: Store) -> None:
    await _started(store)
    results = await asyncio.gather(
        *(store.rotate_refresh_token("r1" * 32, _rt(f"{i:064d}"), 200.0) for i in range(20))
    )
    assert results.count(True) == 1


async def test_replay_spends_the_successor_as_superseded_once(store: Store) -> None:
    await _started(store)
    await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 200.0)
    assert await store.replay_refresh_token("r1" * 32, "r2" * 32, _rt("r3" * 32), 210.0)
    assert not await store.replay_refresh_token("r1" * 32, "r3" * 32, _rt("r4" * 32), 211.0)
    assert not await store.replay_refresh_token("r1" * 32, "r2" * 32, _rt("r5" * 32), 211.0)
    old, successor = (
        await store.find_refresh_token("r1" * 32),
        await store.find_refresh_token("r2" * 32),
    )
    assert old is not None and old.replayed_at == 210.0
    assert successor is not None and successor.spent_reason == "superseded"
    assert successor.replaced_by == "r3" * 32
    assert await store.find_refresh_token("r4" * 32) is None


async def test_replay_withdraws_the_unseen_successors_pair_in_its_transaction(
    store: Store,
) -> None:
    """The successor's access token was answered with it (to nobody): the replay revokes it
    together with spending the successor, so the family keeps one live chain."""
    await _started(store)
    await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 200.0, _access("j-r2r2", "f1"))
    new = _rt("r3" * 32, issued_at=210.0, expires_at=1210.0)
    assert await store.replay_refresh_token("r1" * 32, "r2" * 32, new, 210.0, _access("j3", "f1"))
    withdrawn = await store.find_access_token_by_jti("j-r2r2")
    assert withdrawn is not None and withdrawn.revoked_at == 210.0
    assert await store.find_access_token_by_jti("j3") == _access("j3", "f1")
    assert await store.find_refresh_token("r3" * 32) == new
    assert (await store.get_family("f1")).expires_at == 1210.0  # type: ignore[union-attr]


async def _rotated_twice(store: Store) -> None:
    await store.rotate_refresh_token("r2" * 32, _rt("r3" * 32), 205.0)


async def _revoked(store: Store) -> None:
    await store.revoke_family("f1", 205.0)


async def _replayed(store: Store) -> None:
    assert await store.replay_refresh_token("r1" * 32, "r2" * 32, _rt("r3" * 32), 205.0)


@pytest.mark.parametrize(
    ("then", "old", "successor"),
    [
        (None, "r2", "r2"),  # the successor itself was never spent: nothing to replay
        (None, "r1", "r9"),  # not the token r1 was exchanged for
        (_rotated_twice, "r1", "r2"),  # the successor was used: r1 is not the last spent
        (_revoked, "r1", "r2"),
        (_replayed, "r1", "r3"),  # a second replay, even naming the new successor
        (_replayed, "r1", "r2"),
    ],
    ids=["unspent", "wrong-successor", "successor-used", "revoked", "replayed", "replayed-again"],
)
async def test_replay_is_refused_and_writes_nothing(
    store: Store, then: object, old: str, successor: str
) -> None:
    await _started(store)
    await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 200.0)
    if then is not None:
        await then(store)  # type: ignore[operator]
    before = [await store.find_refresh_token(h * 32) for h in ("r1", "r2", "r3", "r9")]
    assert not await store.replay_refresh_token(
        old * 32, successor * 32, _rt("r4" * 32), 210.0, _access("j4", "f1")
    )
    assert [await store.find_refresh_token(h * 32) for h in ("r1", "r2", "r3", "r9")] == before
    assert await store.find_refresh_token("r4" * 32) is None
    assert await store.find_access_token_by_jti("j4") is None


def _both_instances(store: Store) -> tuple[Store, Store]:
    """The store and another instance on its database (itself, in memory)."""
    return (store, _second_instance(store)) if isinstance(store, SqlStore) else (store, store)


async def test_parallel_replays_of_one_token_succeed_once(store: Store) -> None:
    await _started(store)
    await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 200.0)
    instances = _both_instances(store)
    results = await asyncio.gather(
        *(
            instances[i % 2].replay_refresh_token(
                "r1" * 32, "r2" * 32, _rt(f"{i:062d}rn"), 210.0, _access(f"j{i}", "f1")
            )
            for i in range(10)
        )
    )
    assert results.count(True) == 1
    [won] = [i for i, ok in enumerate(results) if ok]
    successor = await store.find_refresh_token("r2" * 32)
    assert successor is not None and successor.replaced_by == f"{won:062d}rn"
    for i in range(10):
        stored = await store.find_refresh_token(f"{i:062d}rn")
        assert (stored is not None) == (i == won)
        assert (await store.find_access_token_by_jti(f"j{i}") is not None) == (i == won)


async def test_a_replay_racing_the_successors_rotation_leaves_one_chain(store: Store) -> None:
    """The client that did get the successor rotates it while the spent token is replayed:
    the family lock orders them, and whichever comes second finds the successor spent."""
    first, second = _both_instances(store)
    await _families(store, 6)
    for i in range(6):
        assert await store.rotate_refresh_token(f"{i:064d}", _rt(_hash(i, 1), f"f{i}"), 200.0)
    calls = [
        call
        for i in range(6)
        for call in (
            first.rotate_refresh_token(_hash(i, 1), _rt(_hash(i, 2), f"f{i}"), 210.0),
            second.replay_refresh_token(
                f"{i:064d}", _hash(i, 1), _rt(f"r{i}replay".ljust(64, "x"), f"f{i}"), 210.0
            ),
        )
    ]
    results = await asyncio.gather(*calls)
    for i in range(6):
        rotated, replayed = results[2 * i], results[2 * i + 1]
        assert rotated != replayed, (i, results)
        usable = [
            t
            for t in (_hash(i, 2), f"r{i}replay".ljust(64, "x"))
            if (r := await store.find_refresh_token(t)) is not None and r.spent_at is None
        ]
        assert len(usable) == 1, (i, usable)


async def test_revoking_a_family_revokes_its_refresh_and_access_tokens(store: Store) -> None:
    await _started(store)
    await store.add_access_token(
        AccessTokenRecord("j1", "app", "m1", "read", 100.0, 7300.0, family_id="f1")
    )
    await store.add_access_token(AccessTokenRecord("j2", "app", "m1", "read", 100.0, 7300.0))
    assert await store.revoke_family("f1", 300.0) is True
    assert await store.revoke_family("f1", 301.0) is False
    assert (await store.get_family("f1")).revoked_at == 300.0  # type: ignore[union-attr]
    assert (await store.find_refresh_token("r1" * 32)).revoked_at == 300.0  # type: ignore[union-attr]
    assert (await store.find_access_token_by_jti("j1")).revoked_at == 300.0  # type: ignore[union-attr]
    assert (await store.find_access_token_by_jti("j2")).revoked_at is None  # type: ignore[union-attr]
    assert await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 302.0) is False


async def test_revoke_families_of_a_user_and_client(store: Store) -> None:
    await _started(store)
    assert await store.revoke_families("u1", "other-app", 300.0) == 0
    assert await store.revoke_families("u1", "app", 300.0) == 1


async def test_purge_removes_ended_families_and_expired_codes(store: Store) -> None:
    await _started(store)
    await store.add_code(_code("d" * 64, family_id="f9", expires_at=900.0))
    assert await store.purge_families(1000.0, 10) == 0
    assert await store.purge_codes(700.0, 10) == 0
    assert await store.purge_codes(701.0, 10) == 1
    assert await store.purge_families(1000.5, 10) == 1
    assert (
        await store.get_family("f1") is None and await store.find_refresh_token("r1" * 32) is None
    )
    assert await store.find_code("d" * 64) is not None


async def test_consents_upsert_list_and_delete(store: Store) -> None:
    await store.save_consent(Consent("u1", "app", "read", 1.0))
    await store.save_consent(Consent("u1", "app", "read write", 2.0))
    await store.save_consent(Consent("u1", "b", "read", 3.0))
    assert await store.get_consent("u1", "app") == Consent("u1", "app", "read write", 2.0)
    assert [c.client_id for c in await store.list_consents("u1")] == ["app", "b"]
    assert await store.delete_consent("u1", "app") is True
    assert await store.delete_consent("u1", "app") is False
    assert await store.get_consent("u1", "app") is None


async def test_sessions_touch_delete_and_purge(store: Store) -> None:
    await store.add_session(Session("s1" * 32, "u1", 10.0, 10.0, 1000.0))
    await store.add_session(Session("s2" * 32, None, 10.0, 10.0, 1000.0))
    await store.add_session(Session("s3" * 32, "u1", 10.0, 10.0, 50.0))
    await store.touch_session("s1" * 32, 500.0)
    assert (await store.get_session("s1" * 32)).last_seen_at == 500.0  # type: ignore[union-attr]
    assert await store.purge_sessions(idle_before=100.0, now=60.0, batch=10) == 2
    assert await store.get_session("s1" * 32) is not None
    assert await store.delete_user_sessions("u1") == 1
    await store.delete_session("nope")
    assert await store.get_session("s1" * 32) is None


async def test_migrations_match_the_table_definitions(db_url: str) -> None:
    """``storage/sql/tables.py`` and the Alembic revisions describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tokensmith.storage.sql.tables import metadata

    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def _families(store: Store, n: int) -> None:
    """Families ``f0``..``f{n-1}``, each with its first refresh token ``{i:064d}``."""
    await _seed(store)
    for i in range(n):
        code = f"{i:063d}c"
        await store.add_code(_code(code, family_id=f"f{i}"))
        assert await store.redeem_code(code, 150.0, _family(f"f{i}"), _rt(f"{i:064d}", f"f{i}"))


def _access(jti: str, fid: str) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "app", "m1", "read", 200.0, 7400.0, family_id=fid)


async def test_redeeming_a_code_stores_its_access_token_with_it(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code())
    assert await store.redeem_code("c" * 64, 150.0, _family(), None, _access("ja", "f1"))
    assert not await store.redeem_code("c" * 64, 151.0, _family("f2"), None, _access("jb", "f2"))
    assert await store.find_access_token_by_jti("ja") == _access("ja", "f1")
    assert await store.find_access_token_by_jti("jb") is None


async def test_parallel_rotations_across_families_each_succeed_once(store: Store) -> None:
    """Each family's token is presented twice at once, all families together: one
    exchange per family wins, and only the winners' tokens are stored."""
    await _families(store, 12)
    calls = [
        store.rotate_refresh_token(
            f"{i:064d}", _rt(f"{i:062d}{k}n", f"f{i}"), 200.0, _access(f"j{i}-{k}", f"f{i}")
        )
        for k in range(2)
        for i in range(12)
    ]
    results = await asyncio.gather(*calls)
    for i in range(12):
        won = [k for k in range(2) if results[k * 12 + i]]
        assert len(won) == 1, (i, results)
        lost = 1 - won[0]
        assert await store.find_refresh_token(f"{i:062d}{won[0]}n") is not None
        assert await store.find_refresh_token(f"{i:062d}{lost}n") is None
        assert await store.find_access_token_by_jti(f"j{i}-{won[0]}") is not None
        assert await store.find_access_token_by_jti(f"j{i}-{lost}") is None


async def test_rotations_in_flight_with_a_revoked_family_fail_only_there(store: Store) -> None:
    await _families(store, 3)
    assert await store.revoke_family("f1", 190.0)
    results = await asyncio.gather(
        *(
            store.rotate_refresh_token(f"{i:064d}", _rt(f"{i:063d}n", f"f{i}"), 200.0)
            for i in range(3)
        )
    )
    assert results == [True, False, True]
    assert await store.find_refresh_token(f"{1:063d}n") is None


async def test_find_refresh_grant_reads_token_family_and_merchant(store: Store) -> None:
    await _families(store, 5)
    await store.disable_merchant("m1", 160.0)
    found = await asyncio.gather(
        *(store.find_refresh_grant(f"{i:064d}") for i in range(5)),
        store.find_refresh_grant("9" * 64),
    )
    assert found[-1] is None
    for i, grant in enumerate(found[:-1]):
        assert grant is not None
        assert grant.token == _rt(f"{i:064d}", f"f{i}")
        assert grant.family == _family(f"f{i}")
        assert grant.merchant == Merchant("m1", "Shop", 1.0, disabled_at=160.0)


def _hash(family: int, step: int) -> str:
    """The refresh token of family ``f{family}`` after ``step`` rotations."""
    return f"{family:064d}" if step == 0 else f"r{family}s{step}".ljust(64, "x")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set")
async def test_rotations_rewrite_no_index_entry_of_their_family(tmp_path: Path) -> None:
    """Every rotation moves its family's idle expiry; on PostgreSQL that must be an in-place
    (HOT) update, which adds no index entries, or the family's indexes grow at every
    rotation and each later one gets slower (migration 0004)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from tokensmith.storage.sql.engine import normalize_url

    async with fresh_database("postgres", tmp_path) as url:
        # without a pool every connection ends with its batch, and a backend that ends
        # reports its table statistics
        store = SqlStore(create_async_engine(normalize_url(url), poolclass=NullPool))
        await migrate(store.engine)
        await _families(store, 3)
        for step in range(1, 6):
            rotations = [
                store.rotate_refresh_token(
                    _hash(i, step - 1),
                    _rt(_hash(i, step), f"f{i}", issued_at=200.0 + step, expires_at=1000.0 + step),
                    200.0 + step,
                )
                for i in range(3)
            ]
            assert await asyncio.gather(*rotations) == [True] * 3
        async with store.engine.connect() as conn:
            for _ in range(50):
                row = (
                    await conn.execute(
                        text(
                            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                            "WHERE relname = 'token_families'"
                        )
                    )
                ).one()
                if row.n_tup_upd >= 15:
                    break
                await asyncio.sleep(0.1)
                await conn.rollback()
        await store.close()
    assert row.n_tup_upd >= 15
    assert row.n_tup_hot_upd == row.n_tup_upd


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set")
async def test_postgres_connections_plan_each_statement_for_its_values() -> None:
    """asyncpg prepares a statement once per connection, and PostgreSQL may then keep one
    plan for it, made for the table sizes of that moment; token tables grow from empty
    under load, so every run is planned for the table as it is (``make_engine``)."""
    from sqlalchemy import text

    from tokensmith.storage.sql.engine import make_engine

    engine = make_engine(PG_URL or "", pool_size=1)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
    finally:
        await engine.dispose()
    assert mode == "force_custom_plan"


def _second_instance(store: Store) -> Store:
    """Another instance on the same database (as another process would be): its own
    batches, so its statements run beside the first one's."""
    if not isinstance(store, SqlStore):
        pytest.skip("an in-memory store has no second instance")
    return SqlStore(store.engine, portable_rotation=store.portable_rotation)


async def test_parallel_rotations_from_two_instances_succeed_once(store: Store) -> None:
    other = _second_instance(store)
    await _families(store, 8)
    calls = [
        s.rotate_refresh_token(
            f"{i:064d}", _rt(f"{i:062d}{k}n", f"f{i}", expires_at=1500.0 + k), 200.0
        )
        for k, s in enumerate((store, other))
        for i in range(8)
    ]
    results = await asyncio.gather(*calls)
    for i in range(8):
        won = [k for k in range(2) if results[k * 8 + i]]
        assert len(won) == 1, (i, results)
        assert await store.find_refresh_token(f"{i:062d}{won[0]}n") is not None
        assert await store.find_refresh_token(f"{i:062d}{1 - won[0]}n") is None
        family = await store.get_family(f"f{i}")
        assert family is not None and family.expires_at == 1500.0 + won[0]


async def test_a_revocation_racing_rotations_leaves_no_live_token(store: Store) -> None:
    """Whichever commits first, a revoked family keeps no unrevoked refresh token: a
    rotation after the revocation fails, one before it has its new token revoked."""
    other = _second_instance(store)
    await _families(store, 8)
    rotations = [
        store.rotate_refresh_token(f"{i:064d}", _rt(f"{i:063d}n", f"f{i}"), 200.0) for i in range(8)
    ]
    revocations = [other.revoke_family(f"f{i}", 200.0) for i in range(0, 8, 2)]
    await asyncio.gather(*rotations, *revocations)
    for i in range(0, 8, 2):
        new = await store.find_refresh_token(f"{i:063d}n")
        assert new is None or new.revoked_at is not None, i
    for i in range(1, 8, 2):
        new = await store.find_refresh_token(f"{i:063d}n")
        assert new is not None and new.revoked_at is None, i


async def _everything_of(store: Store, cid: str) -> None:
    """A client ``cid`` with a secret, a code, a family with a refresh token and an access
    token, a consent and a pushed request."""
    await store.add_client(Client(cid, cid, ("read",), secrets=(ClientSecret(cid * 64, 1.0),)))
    fid, h = f"f-{cid}", f"{cid:0>64}"
    await store.add_code(_code(h, client_id=cid, family_id=fid))
    access = AccessTokenRecord(f"j-{cid}", cid, "u1", "read", 150.0, 900.0, token_hash=h)
    family, first = _family(fid, client_id=cid), _rt(h[::-1], fid, client_id=cid)
    assert await store.redeem_code(h, 150.0, family, first, access)
    await store.save_consent(Consent("u1", cid, "read", 1.0))
    pushed = PushedRequest(h, cid, (("client_id", cid),), "0123456789abcdef", 100.0, 160.0)
    await store.add_pushed_request(pushed)


async def _left_of(store: Store, cid: str) -> list[object]:
    h = f"{cid:0>64}"
    found = [
        await store.get_client(cid),
        await store.find_code(h),
        await store.get_family(f"f-{cid}"),
        await store.find_refresh_token(h[::-1]),
        await store.find_access_token(h),
        await store.find_access_token_by_jti(f"j-{cid}"),
        await store.get_consent("u1", cid),
        await store.find_pushed_request(h),
    ]
    return [f for f in found if f is not None]


async def test_deleting_a_client_removes_it_with_everything_it_holds(store: Store) -> None:
    await _seed(store)
    for cid in ("a", "b"):
        await _everything_of(store, cid)
    assert await store.delete_client("a") is True
    assert await _left_of(store, "a") == []
    assert len(await _left_of(store, "b")) == 8  # another client's rows stay
    assert [c.client_id for c in await store.list_clients()] == ["b"]
    assert await store.delete_client("a") is False
    assert await store.delete_client("nope") is False
