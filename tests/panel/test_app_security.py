"""A partner app's security settings in the panel: require PAR, require DPoP and the FAPI
2.0 profile, changed through the same service as ``tokensmith clients update``, and in
force on the next request."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.assertions import ClientKey
from tests.conftest import Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, login, make_shop
from tests.partner import REDIRECT
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client

KEY = ClientKey.generate("ES256")
SECURITY = "/panel/apps/{}/security"


async def keyed_app(h: Harness, shop: Shop) -> Client:
    client, _ = await h.client(
        jwks=KEY.jwks(),
        merchant_id=shop.merchant.merchant_id,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(REDIRECT,),
    )
    return client


async def stored(h: Harness, client_id: str) -> Client:
    client = await h.ctx.store.get_client(client_id)
    assert client is not None
    return client


async def test_the_toggles_are_saved_and_shown(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    app = await keyed_app(harness, shop)
    form = {"require_par": "on", "require_dpop": "on", "fapi2": "on"}
    r = await admin.post(SECURITY.format(app.client_id), form)
    assert r.status_code == 303 and r.headers["location"].endswith("done=security-saved")
    saved = await stored(harness, app.client_id)
    assert (saved.require_par, saved.require_dpop, saved.profile) == (True, True, "fapi2")
    page = (await admin.get(f"/panel/apps/{app.client_id}")).text
    for box in ("require_par", "require_dpop", "fapi2"):
        assert f'id="{box}" name="{box}" value="on" checked' in page
    r = await admin.post(SECURITY.format(app.client_id), {})
    saved = await stored(harness, app.client_id)
    assert (saved.require_par, saved.require_dpop, saved.profile) == (False, False, None)


async def test_a_change_is_in_force_on_the_next_request(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    """The panel tells the client cache, as the CLI's change does: DPoP is required at once."""
    app, secret = await harness.client(
        merchant_id=shop.merchant.merchant_id,
        grant_types=("authorization_code", "client_credentials"),
        redirect_uris=(REDIRECT,),
    )
    assert (await harness.token(app.client_id, secret)).status_code == 200
    r = await admin.post(SECURITY.format(app.client_id), {"require_dpop": "on"})
    assert r.status_code == 303
    r = await harness.token(app.client_id, secret)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"


async def test_fapi2_is_refused_for_an_app_with_a_secret(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    client_id, _, _ = await admin.reveal(
        await admin.post(
            "/panel/apps", {"name": "Ledger", "redirect_uris": REDIRECT, "scope_read": "on"}
        )
    )
    r = await admin.post(SECURITY.format(client_id), {"fapi2": "on"})
    assert r.status_code == 400 and "private_key_jwt" in html.unescape(r.text)
    assert (await stored(harness, client_id)).profile is None


async def test_a_member_cannot_change_them_and_another_merchant_cannot_see_them(
    harness: Harness, shop: Shop, member: Browser
) -> None:
    app = await keyed_app(harness, shop)
    r = await member.post(SECURITY.format(app.client_id), {"require_par": "on"})
    assert r.status_code in (403, 404)
    other = await make_shop(harness, "Globex")
    stranger = await login(harness, other.admin)
    r = await stranger.post(SECURITY.format(app.client_id), {"require_par": "on"})
    assert r.status_code == 404
    assert (await stored(harness, app.client_id)).require_par is False
    await stranger.http.aclose()


async def test_under_the_servers_fapi2_the_profile_is_not_the_merchants(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'app.db'}", profile="fapi2", compat=()
    )
    async with running_app(settings, clock) as h:
        shop = await make_shop(h, "Acme Shop")
        app = await keyed_app(h, shop)
        browser = await login(h, shop.admin)
        page = (await browser.get(f"/panel/apps/{app.client_id}")).text
        assert 'id="fapi2" name="fapi2" value="on" checked disabled' in page
        r = await browser.post(SECURITY.format(app.client_id), {"require_par": "on"})
        assert r.status_code == 303
        saved = await stored(h, app.client_id)
        assert saved.profile is None and saved.require_par is True
        await browser.http.aclose()


@pytest.mark.parametrize("csrf", [False])
async def test_the_form_needs_its_csrf_token(
    harness: Harness, shop: Shop, admin: Browser, csrf: bool
) -> None:
    app = await keyed_app(harness, shop)
    r = await admin.post(SECURITY.format(app.client_id), {"require_par": "on"}, csrf=csrf)
    assert r.status_code in (400, 403)
    assert (await stored(harness, app.client_id)).require_par is False
