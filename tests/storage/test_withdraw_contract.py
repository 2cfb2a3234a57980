"""Withdrawing an authorization (``withdraw_authorization``): one contract for the in-memory
store and SQLAlchemy on SQLite and PostgreSQL.

A user withdraws their own consent and families; a merchant those of all its users. The
consents go and the families die with their refresh and access tokens in one transaction:
all or nothing, and a refresh racing it either loses or has its new tokens revoked too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tests.conftest import migrated_store
from tokensmith.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    Consent,
    Grantor,
    Merchant,
    RefreshTokenRecord,
    TokenFamily,
    User,
    Withdrawal,
)
from tokensmith.core.ports import Store
from tokensmith.storage.sql import SqlStore

NOW = 500.0
#: (family, client, merchant, user); every family starts live
FAMILIES = (
    ("f1", "app", "m1", "u1"),
    ("f2", "app", "m1", "u2"),
    ("f3", "other", "m1", "u1"),
    ("f4", "app", "m2", "u3"),
)
CONSENTS = (("u1", "app"), ("u2", "app"), ("u1", "other"), ("u3", "app"))


def _user(uid: str, merchant_id: str) -> User:
    return User(uid, f"{uid}@shop.test", "$argon2id$x", "admin", merchant_id, 1.0)


def _family(fid: str, client_id: str, merchant_id: str, user_id: str, **kw: float) -> TokenFamily:
    times = {"expires_at": 1000.0, "absolute_expires_at": 5000.0} | kw
    return TokenFamily(fid, client_id, merchant_id, user_id, "read", 100.0, **times)


def _refresh(fid: str, n: int = 1) -> str:
    return f"{fid}r{n}".ljust(64, "x")


async def _grant(store: Store, family: TokenFamily) -> None:
    """The family as a redeemed code leaves it: a refresh token and an access token."""
    code = AuthorizationCode(
        code_hash=f"{family.family_id}c".ljust(64, "x"),
        client_id=family.client_id,
        redirect_uri="https://a.example/cb",
        redirect_uri_sent=True,
        code_challenge=None,
        merchant_id=family.merchant_id,
        user_id=family.user_id,
        scope=family.scope,
        family_id=family.family_id,
        issued_at=100.0,
        expires_at=700.0,
    )
    fid = family.family_id
    first = RefreshTokenRecord(
        _refresh(fid), fid, family.client_id, family.scope, 100.0, 1000.0, access_jti=f"{fid}-a1"
    )
    access = AccessTokenRecord(
        f"{fid}-a1", family.client_id, family.merchant_id, family.scope, 100.0, 4000.0,
        token_hash=f"{fid}a1".ljust(64, "x"), family_id=fid,
    )  # fmt: skip
    await store.add_code(code)
    assert await store.redeem_code(code.code_hash, 100.0, family, first, access)


async def _seed(store: Store) -> None:
    for merchant_id in ("m1", "m2"):
        await store.add_merchant(Merchant(merchant_id, f"Shop {merchant_id}", 1.0))
    for uid, merchant_id in (("u1", "m1"), ("u2", "m1"), ("u3", "m2")):
        await store.add_user(_user(uid, merchant_id))
    for f in FAMILIES:
        await _grant(store, _family(*f))
    for user_id, client_id in CONSENTS:
        await store.save_consent(Consent(user_id, client_id, "read", 50.0))


async def _live(store: Store, fid: str) -> bool:
    """Whether anything of the family still works: the family, its first access token, or
    an unspent refresh token (the first, or the one a rotation made)."""
    family = await store.get_family(fid)
    assert family is not None
    access = await store.find_access_token_by_jti(f"{fid}-a1")
    assert access is not None
    refresh = [await store.find_refresh_token(_refresh(fid, n)) for n in (1, 2)]
    return (
        family.revoked_at is None
        or access.revoked_at is None
        or any(r is not None and r.revoked_at is None and r.spent_at is None for r in refresh)
    )


async def _consents(store: Store) -> set[tuple[str, str]]:
    return {
        (c.user_id, c.client_id)
        for uid in ("u1", "u2", "u3")
        for c in await store.list_consents(uid)
    }


async def test_a_user_withdraws_their_own_consent_and_families_only(store: Store) -> None:
    await _seed(store)
    done = await store.withdraw_authorization(Grantor(user_id="u1"), "app", NOW)
    assert done == Withdrawal(consents=1, families=1)
    assert not await _live(store, "f1")
    assert [await _live(store, f) for f in ("f2", "f3", "f4")] == [True, True, True]
    assert await _consents(store) == {("u2", "app"), ("u1", "other"), ("u3", "app")}
    assert await store.rotate_refresh_token(_refresh("f1"), _next("f1"), NOW) is False


async def test_a_merchant_withdraws_for_all_its_users_and_no_other_merchant(store: Store) -> None:
    await _seed(store)
    done = await store.withdraw_authorization(Grantor(merchant_id="m1"), "app", NOW)
    assert done == Withdrawal(consents=2, families=2)
    assert [await _live(store, f) for f in ("f1", "f2", "f3", "f4")] == [False, False, True, True]
    assert await _consents(store) == {("u1", "other"), ("u3", "app")}


async def test_a_second_withdrawal_finds_nothing_left(store: Store) -> None:
    await _seed(store)
    assert await store.withdraw_authorization(Grantor(merchant_id="m1"), "app", NOW)
    again = await store.withdraw_authorization(Grantor(merchant_id="m1"), "app", NOW + 1)
    assert again == Withdrawal() and not again
    assert (await store.get_family("f1")).revoked_at == NOW  # type: ignore[union-attr]


async def test_an_expired_family_is_revoked_but_not_counted_as_live(store: Store) -> None:
    await store.add_merchant(Merchant("m1", "Shop", 1.0))
    await store.add_user(_user("u1", "m1"))
    await _grant(store, _family("f9", "app", "m1", "u1", expires_at=NOW - 1))
    done = await store.withdraw_authorization(Grantor(user_id="u1"), "app", NOW)
    assert done == Withdrawal(consents=0, families=0)
    assert (await store.get_family("f9")).revoked_at == NOW  # type: ignore[union-attr]


def _next(fid: str, n: int = 2) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        _refresh(fid, n), fid, "app", "read", NOW, 1200.0, access_jti=f"{fid}-a{n}"
    )


def _access(fid: str, n: int = 2) -> AccessTokenRecord:
    return AccessTokenRecord(
        f"{fid}-a{n}", "app", "m1", "read", NOW, 4000.0,
        token_hash=f"{fid}a{n}".ljust(64, "x"), family_id=fid,
    )  # fmt: skip


async def test_parallel_withdrawals_end_everything_once(store: Store) -> None:
    await _seed(store)
    grantors = [Grantor(merchant_id="m1"), Grantor(user_id="u1"), Grantor(user_id="u2")] * 4
    done = await asyncio.gather(*(store.withdraw_authorization(g, "app", NOW) for g in grantors))
    assert sum(d.consents for d in done) == 2 and sum(d.families for d in done) == 2
    assert [await _live(store, f) for f in ("f1", "f2", "f3", "f4")] == [False, False, True, True]


async def test_a_refresh_racing_a_withdrawal_leaves_no_live_token(store: Store) -> None:
    """Either the rotation commits first and the withdrawal revokes its new tokens, or the
    withdrawal does and the rotation finds the family revoked: never a live successor."""
    await _seed(store)
    for i in range(8):
        fid = f"g{i}"
        await _grant(store, _family(fid, "app", "m1", "u1"))
        racing = [
            store.rotate_refresh_token(_refresh(fid), _next(fid), NOW, _access(fid)),
            store.withdraw_authorization(Grantor(user_id="u1"), "app", NOW),
        ]
        await asyncio.gather(*(racing if i % 2 else racing[::-1]))
        assert not await _live(store, fid), i
        successor = await store.find_access_token_by_jti(f"{fid}-a2")
        assert successor is None or successor.revoked_at is not None, i


# -- all or nothing (SQL: a statement of the transaction fails) ------------------------------

_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE UPDATE ON access_tokens "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
        "CREATE TRIGGER refuse BEFORE UPDATE ON access_tokens "
        "FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


@pytest.fixture
async def refusing_store(db_url: str) -> AsyncIterator[SqlStore]:
    """A SQL store whose access tokens cannot be updated: the withdrawal's last step fails."""
    async with migrated_store(db_url) as store:
        await _seed(store)
        async with store.engine.begin() as conn:
            for statement in _REFUSE[conn.dialect.name]:
                await conn.execute(text(statement))
        yield store


async def test_a_withdrawal_that_fails_midway_changes_nothing(refusing_store: SqlStore) -> None:
    store = refusing_store
    with pytest.raises(Exception, match="refused"):
        await store.withdraw_authorization(Grantor(merchant_id="m1"), "app", NOW)
    assert await _consents(store) == set(CONSENTS)
    for fid, *_ in FAMILIES:
        family = await store.get_family(fid)
        refresh = await store.find_refresh_token(_refresh(fid))
        assert family is not None and family.revoked_at is None, fid
        assert refresh is not None and refresh.revoked_at is None, fid
