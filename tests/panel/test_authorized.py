"""Integration > API > Authorized apps: the partner apps a merchant approved, and
withdrawing them (their refresh and access tokens die)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login
from tests.partner import REDIRECT, Partner, continued_to, query_of

GRANTS = ("authorization_code", "refresh_token")


async def _partner(h: Harness, shop: Shop, name: str = "Ledger Sync") -> Partner:
    app, secret = await h.client(name=name, grant_types=GRANTS, redirect_uris=(REDIRECT,))
    return Partner(h, shop.merchant, shop.admin, app, secret)


async def _connect(p: Partner, remember: bool) -> dict[str, Any]:
    """The merchant's admin approves the app in their browser; the app gets tokens."""
    await p.login()
    page = await p.authorize(scope="read")
    extra = {"remember": "yes"} if remember else {}
    decided = await p.decide(page, **extra)
    code = query_of(continued_to(decided))["code"]
    r = await p.exchange(code)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize("remember", [True, False], ids=["remembered", "one-time"])
async def test_an_approved_app_is_listed_with_its_scopes_and_who_approved_it(
    harness: Harness, shop: Shop, admin: Browser, remember: bool
) -> None:
    assert "No apps authorized" in (await admin.get("/panel/authorized")).text
    p = await _partner(harness, shop)
    await _connect(p, remember)
    page = await admin.get("/panel/authorized")
    assert "Ledger Sync" in page.text and p.app.client_id in page.text
    assert shop.admin.email in page.text and "See your orders" in page.text
    assert f'href="/panel/authorized/{p.app.client_id}/revoke"' in page.text


@pytest.mark.parametrize("remember", [True, False], ids=["remembered", "one-time"])
async def test_withdrawing_access_kills_the_apps_refresh_and_access_tokens(
    harness: Harness, shop: Shop, admin: Browser, remember: bool
) -> None:
    p = await _partner(harness, shop)
    tokens = await _connect(p, remember)
    assert (await p.introspect(tokens["access_token"]))["active"] is True

    confirm = await admin.get(f"/panel/authorized/{p.app.client_id}/revoke")
    assert confirm.status_code == 200 and "Withdraw access" in confirm.text
    done = await admin.post(f"/panel/authorized/{p.app.client_id}/revoke")
    assert done.headers["location"] == "/panel/authorized?done=access-revoked"

    assert (await p.introspect(tokens["access_token"]))["active"] is False
    assert (await p.introspect(tokens["refresh_token"]))["active"] is False
    refreshed = await p.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert await harness.ctx.store.get_consent(shop.admin.user_id, p.app.client_id) is None
    assert "No apps authorized" in (await admin.get("/panel/authorized")).text


async def test_withdrawing_one_merchants_access_leaves_another_merchants(
    harness: Harness, shop: Shop, other: Shop, admin: Browser
) -> None:
    ours = await _partner(harness, shop)
    ours_tokens = await _connect(ours, remember=True)
    theirs = Partner(harness, other.merchant, other.admin, ours.app, ours.secret)
    harness.http.cookies.clear()
    their_tokens = await _connect(theirs, remember=True)

    await admin.post(f"/panel/authorized/{ours.app.client_id}/revoke")
    assert (await ours.introspect(ours_tokens["access_token"]))["active"] is False
    assert (await theirs.introspect(their_tokens["access_token"]))["active"] is True
    assert (await theirs.refresh(their_tokens["refresh_token"])).status_code == 200


async def test_an_app_this_merchant_never_approved_cannot_be_withdrawn(
    harness: Harness, shop: Shop, other: Shop, admin: Browser
) -> None:
    p = await _partner(harness, other)
    tokens = await _connect(p, remember=True)
    for r in (
        await admin.get(f"/panel/authorized/{p.app.client_id}/revoke"),
        await admin.post(f"/panel/authorized/{p.app.client_id}/revoke"),
    ):
        assert r.status_code == 404
    assert (await p.introspect(tokens["access_token"]))["active"] is True


async def test_a_member_sees_the_list_without_withdraw_buttons(
    harness: Harness, shop: Shop
) -> None:
    p = await _partner(harness, shop)
    await _connect(p, remember=True)
    member = await login(harness, shop.member)
    page = await member.get("/panel/authorized")
    assert "Ledger Sync" in page.text and "/revoke" not in page.text
    refused = await member.post(f"/panel/authorized/{p.app.client_id}/revoke")
    assert refused.status_code == 403
    await member.http.aclose()
