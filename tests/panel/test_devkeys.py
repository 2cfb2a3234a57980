"""Integration > API > Developer app keys: the tbc dialect's apikey header."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop

TBC = "/v2/tpay/access-token"


async def _tbc(h: Harness, apikey: str, client_id: str, secret: str) -> int:
    r = await h.http.post(
        TBC, headers={"apikey": apikey}, data={"client_id": client_id, "client_secret": secret}
    )
    return r.status_code


async def test_a_developer_app_key_is_shown_once_and_works_until_revoked(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    client_id, secret = await admin.create_key()
    made = await admin.post("/panel/devkeys", {"name": "Mobile app"})
    key_id, apikey, page = await admin.reveal(made)
    assert key_id.startswith("ak_") and "apikey" in page.text
    assert (await admin.get(made.headers["location"])).status_code == 410
    assert await _tbc(harness, apikey, client_id, secret) == 200
    listing = await admin.get("/panel/devkeys")
    assert "Mobile app" in listing.text and key_id in listing.text and apikey not in listing.text
    (stored,) = await harness.ctx.store.list_api_keys(shop.merchant.merchant_id)
    assert stored.key_id == key_id

    assert (await admin.get(f"/panel/devkeys/{key_id}/revoke")).status_code == 200
    done = await admin.post(f"/panel/devkeys/{key_id}/revoke")
    assert done.headers["location"] == "/panel/devkeys?done=devkey-revoked"
    assert await _tbc(harness, apikey, client_id, secret) == 401
    assert (await admin.get(f"/panel/devkeys/{key_id}/revoke")).status_code == 404


@pytest.mark.parametrize("name", ["", "  ", "x" * 201], ids=["empty", "blank", "long"])
async def test_a_developer_app_key_needs_a_name(
    harness: Harness, shop: Shop, admin: Browser, name: str
) -> None:
    r = await admin.post("/panel/devkeys", {"name": name})
    assert r.status_code == 400 and "Give the key a name" in r.text
    assert await harness.ctx.store.list_api_keys(shop.merchant.merchant_id) == []


async def test_a_key_revoked_by_another_instance_is_refused_within_the_cache_ttl(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    """The token path reads a warm key from memory; a revocation made elsewhere (another
    instance, ``tokensmith apikeys revoke``) counts within ``client_cache_ttl``, as for
    clients."""
    client_id, secret = await admin.create_key()
    key_id, apikey, _ = await admin.reveal(await admin.post("/panel/devkeys", {"name": "App"}))
    assert await _tbc(harness, apikey, client_id, secret) == 200
    await harness.ctx.store.revoke_api_key(key_id, harness.clock.now())  # not through ctx
    assert await _tbc(harness, apikey, client_id, secret) == 200  # still cached
    harness.clock.advance(harness.ctx.settings.client_cache_ttl)
    assert await _tbc(harness, apikey, client_id, secret) == 401
