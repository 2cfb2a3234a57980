"""The merchant panel's storage (ActivityStore, RevealStore, MerchantFamilyStore): one
contract for the in-memory store and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tokensmith.core.models import AuthorizationCode, TokenFamily
from tokensmith.core.panel_models import AuthFailure, Reveal, TokenCount
from tokensmith.core.ports import Store

H = 3600 * 500_000  # an hour boundary


def _failure(at: float, merchant: str | None = "m1", client: str | None = "k1") -> AuthFailure:
    return AuthFailure(at, client, "203.0.113.7", "bad_secret", "oauth", merchant)


def _reveal(h: str = "r" * 64, session: str = "s" * 64, expires: float = 700.0) -> Reveal:
    return Reveal(h, session, b"\x00sealed\xff" * 4, 100.0, expires)


# -- token counts ------------------------------------------------------------------------------


async def test_token_counts_add_up_per_client_and_hour(store: Store) -> None:
    await store.add_token_counts([TokenCount("k1", H, 3, 1, H + 10.0), TokenCount("k2", H, 5)])
    await store.add_token_counts([TokenCount("k1", H, 2, 0, H + 5.0)])
    await store.add_token_counts([TokenCount("k1", H, 1, 2, H + 30.0)])
    rows = await store.token_counts(["k1", "k2"], H)
    assert rows == [TokenCount("k1", H, 6, 3, H + 30.0), TokenCount("k2", H, 5, 0, None)]


async def test_token_counts_filter_by_client_and_first_hour(store: Store) -> None:
    await store.add_token_counts(
        [TokenCount("k1", H - 3600, 1), TokenCount("k1", H, 2), TokenCount("k9", H, 7)]
    )
    assert [c.hour for c in await store.token_counts(["k1"], H - 3600)] == [H - 3600, H]
    assert await store.token_counts(["k1"], H) == [TokenCount("k1", H, 2)]
    assert await store.token_counts([], 0) == []
    await store.add_token_counts([])


async def test_last_used_is_the_latest_issue_per_client(store: Store) -> None:
    await store.add_token_counts(
        [
            TokenCount("k1", H - 3600, 1, 0, H - 100.0),
            TokenCount("k1", H, 1, 0, H + 50.0),
            TokenCount("k2", H, 0, 4, None),
        ]
    )
    assert await store.last_used(["k1", "k2", "k3"]) == {"k1": H + 50.0}
    assert await store.last_used([]) == {}


async def test_concurrent_flushes_of_several_instances_add_up(store: Store) -> None:
    batches = [[TokenCount("k1", H, 1, 0, H + n), TokenCount("k2", H, 2)] for n in range(8)]
    await asyncio.gather(*(store.add_token_counts(b) for b in batches))
    rows = await store.token_counts(["k1", "k2"], H)
    assert [(r.client_id, r.issued) for r in rows] == [("k1", 8), ("k2", 16)]
    assert rows[0].last_issued_at == H + 7


# -- failed authentications -----------------------------------------------------------------


async def test_recent_failures_are_the_merchants_newest_first(store: Store) -> None:
    await store.add_auth_failures(
        [_failure(10.0), _failure(30.0), _failure(20.0, "m2"), _failure(40.0, None, "zz")]
    )
    mine = await store.recent_auth_failures("m1", 10)
    assert [f.at for f in mine] == [30.0, 10.0]
    assert mine[0] == _failure(30.0)
    assert [f.at for f in await store.recent_auth_failures("m1", 1)] == [30.0]
    assert [f.client_id for f in await store.recent_auth_failures(None, 10)] == ["zz"]
    await store.add_auth_failures([])


async def test_purge_deletes_old_counts_old_failures_and_all_but_the_newest(store: Store) -> None:
    await store.add_token_counts([TokenCount("k1", H - 3600, 1), TokenCount("k1", H, 1)])
    await store.add_auth_failures([_failure(float(t)) for t in range(10, 20)])
    deleted = await store.purge_activity(H, 12.0, 5)
    assert deleted == 1 + 2 + 3
    assert await store.token_counts(["k1"], 0) == [TokenCount("k1", H, 1)]
    assert [f.at for f in await store.recent_auth_failures("m1", 50)] == [19, 18, 17, 16, 15]
    assert await store.purge_activity(H, 0.0, 100) == 0


# -- one-time reveals -------------------------------------------------------------------------


async def test_a_reveal_is_taken_once_by_its_own_session(store: Store) -> None:
    await store.add_reveal(_reveal())
    assert await store.take_reveal("r" * 64, "other" + "s" * 59, 200.0) is None
    taken = await store.take_reveal("r" * 64, "s" * 64, 200.0)
    assert taken == _reveal()
    assert await store.take_reveal("r" * 64, "s" * 64, 200.0) is None


async def test_an_expired_reveal_is_not_taken_and_is_purged(store: Store) -> None:
    await store.add_reveal(_reveal(expires=150.0))
    await store.add_reveal(_reveal("q" * 64, expires=900.0))
    assert await store.take_reveal("r" * 64, "s" * 64, 150.0) is None
    assert await store.purge_reveals(200.0) == 1
    assert await store.take_reveal("q" * 64, "s" * 64, 200.0) is not None


async def test_concurrent_takes_give_the_reveal_to_one_caller(store: Store) -> None:
    await store.add_reveal(_reveal())
    got = await asyncio.gather(*(store.take_reveal("r" * 64, "s" * 64, 200.0) for _ in range(6)))
    assert sum(r is not None for r in got) == 1


# -- merchant token families ----------------------------------------------------------------


def _family(fid: str, merchant: str) -> TokenFamily:
    return TokenFamily(fid, "app", merchant, "u1", "read", 100.0, 1000.0, 5000.0)


def _code(fid: str, merchant: str) -> AuthorizationCode:
    return AuthorizationCode(
        (fid * 64)[:64], "app", "https://a.example/cb", True, None, merchant, "u1", "read",
        fid, 100.0, 700.0,
    )  # fmt: skip


async def test_merchant_families_are_the_unrevoked_ones_of_that_merchant(store: Store) -> None:
    for fid, owner in (("f1", "m1"), ("f2", "m1"), ("f3", "m2")):
        await store.add_code(_code(fid, owner))
        assert await store.redeem_code((fid * 64)[:64], 110.0, _family(fid, owner), None)
    await store.revoke_family("f2", 120.0)
    assert [f.family_id for f in await store.merchant_families("m1")] == ["f1"]
    assert await store.merchant_families("nobody") == []
