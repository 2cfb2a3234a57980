"""A platform operator sees and acts on every client in the panel: those of every
merchant and those of none (made in the CLI without ``--merchant``, or registered
dynamically), with their merchant shown; merchant users keep seeing their own only."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, login
from tests.partner import REDIRECT, make_user
from tokensmith.core.clock import FrozenClock


async def test_an_operator_sees_every_key_with_its_merchant(
    harness: Harness, shop: Shop, other: Shop, operator: Browser
) -> None:
    await harness.client(name="Platform job")
    await harness.client(name="Acme ERP", merchant_id=shop.merchant.merchant_id)
    await harness.client(name="Globex ERP", merchant_id=other.merchant.merchant_id)
    page = await operator.get("/panel/keys")
    assert page.status_code == 200
    for name in ("Platform job", "Acme ERP", "Globex ERP"):
        assert name in page.text
    assert '<th scope="col">Merchant</th>' in page.text
    assert "None (platform)" in page.text and ">Globex</td>" in page.text


async def test_an_operator_sees_an_app_without_merchant(
    harness: Harness, operator: Browser
) -> None:
    app, _ = await harness.client(
        name="Platform app", grant_types=("authorization_code",), redirect_uris=(REDIRECT,)
    )
    page = await operator.get("/panel/apps")
    assert "Platform app" in page.text and "None (platform)" in page.text
    detail = await operator.get(f"/panel/apps/{app.client_id}")
    assert detail.status_code == 200 and "None (platform)" in detail.text


async def test_an_operator_acts_on_a_client_without_merchant(
    harness: Harness, operator: Browser
) -> None:
    key, _ = await harness.client(name="Platform job")
    assert (await operator.get(f"/panel/keys/{key.client_id}")).status_code == 200
    rotated = await operator.post(f"/panel/keys/{key.client_id}/rotate", {"overlap": "0"})
    client_id, secret, _ = await operator.reveal(rotated)
    assert client_id == key.client_id
    assert (await harness.token(key.client_id, secret)).status_code == 200
    revoked = await operator.post(f"/panel/keys/{key.client_id}/revoke")
    assert revoked.status_code == 303
    assert (await harness.token(key.client_id, secret)).status_code == 401


async def test_an_operator_edits_a_platform_app_and_it_stays_without_merchant(
    harness: Harness, operator: Browser
) -> None:
    app, _ = await harness.client(
        name="Platform app", grant_types=("authorization_code",), redirect_uris=(REDIRECT,)
    )
    r = await operator.post(
        f"/panel/apps/{app.client_id}", {"name": "Renamed", "redirect_uris": REDIRECT}
    )
    assert r.status_code == 303, r.text
    stored = await harness.ctx.client_admin.get(app.client_id)
    assert stored is not None and stored.name == "Renamed" and stored.merchant_id is None


async def test_a_merchant_admin_still_sees_only_their_own_clients(
    harness: Harness, shop: Shop, other: Shop, admin: Browser
) -> None:
    platform, _ = await harness.client(name="Platform job")
    theirs, _ = await harness.client(name="Globex ERP", merchant_id=other.merchant.merchant_id)
    await harness.client(name="Acme ERP", merchant_id=shop.merchant.merchant_id)
    page = await admin.get("/panel/keys")
    assert "Acme ERP" in page.text
    assert "Platform job" not in page.text and "Globex ERP" not in page.text
    assert '<th scope="col">Merchant</th>' not in page.text
    for client in (platform, theirs):
        assert (await admin.get(f"/panel/keys/{client.client_id}")).status_code == 404
        r = await admin.post(f"/panel/keys/{client.client_id}/revoke")
        assert r.status_code == 404
        stored = await harness.ctx.client_admin.get(client.client_id)
        assert stored is not None and stored.active


async def test_an_operator_without_merchants_still_sees_platform_clients(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'o.db'}")
    async with running_app(settings, FrozenClock()) as h:
        key, _ = await h.client(name="Made in the CLI")
        ops = await login(h, await make_user(h, None, "ops@platform.test", "operator"))
        page = await ops.get("/panel/keys")
        assert page.status_code == 200
        assert "Made in the CLI" in page.text and "No merchants yet" in page.text
        assert 'href="/panel/keys/new"' not in page.text  # a new key needs a merchant
        assert (await ops.get(f"/panel/keys/{key.client_id}")).status_code == 200
        assert (await ops.get("/panel/users")).status_code == 200  # the how-to page
        await ops.http.aclose()


async def test_a_dynamically_registered_client_shows_for_the_operator(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", registration="open")
    async with running_app(settings, FrozenClock()) as h:
        r = await h.http.post(
            "/oauth/register",
            json={"client_name": "Self-registered", "grant_types": ["client_credentials"]},
        )
        assert r.status_code == 201
        ops = await login(h, await make_user(h, None, "ops@platform.test", "operator"))
        page = await ops.get("/panel/keys")
        assert "Self-registered" in page.text and "registered dynamically" in page.text
        await ops.http.aclose()
