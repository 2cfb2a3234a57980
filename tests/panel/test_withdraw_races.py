"""Withdrawing an app's access while other requests run: parallel withdrawals (the
merchant's panel and the user's consent page at once) and a withdrawal racing a refresh
leave no live token of the app, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login, make_shop
from tests.partner import REDIRECT, Partner, continued_to, csrf_of, query_of

GRANTS = ("authorization_code", "refresh_token")


@pytest.fixture
async def shop(harness_any: Harness) -> Shop:
    return await make_shop(harness_any, "Acme Shop")


@pytest.fixture
async def admin(harness_any: Harness, shop: Shop) -> AsyncIterator[Browser]:
    b = await login(harness_any, shop.admin)
    yield b
    await b.http.aclose()


@pytest.fixture
async def partner(harness_any: Harness, shop: Shop) -> Partner:
    """The shop's admin, in a browser of their own, and a partner app."""
    app, secret = await harness_any.client(
        name="Ledger Sync", grant_types=GRANTS, redirect_uris=(REDIRECT,)
    )
    p = Partner(harness_any, shop.merchant, shop.admin, app, secret)
    await p.login()
    return p


async def _connect(p: Partner) -> dict[str, Any]:
    """The user approves the app (remembered); the app gets tokens."""
    page = await p.authorize(scope="read")
    if page.status_code == 200:  # the consent page; later rounds are approved at once
        code = query_of(continued_to(await p.decide(page, remember="yes")))["code"]
    else:
        code = query_of(page.headers["location"])["code"]
    r = await p.exchange(code)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _dead(p: Partner, tokens: dict[str, Any]) -> None:
    for kind in ("access_token", "refresh_token"):
        assert (await p.introspect(tokens[kind]))["active"] is False, kind
    refreshed = await p.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def _user_withdraws(p: Partner) -> httpx.Response:
    csrf = csrf_of((await p.http.get("/account/apps")).text)
    return await p.http.post(
        f"/oauth/consents/{p.app.client_id}/withdraw",
        data={"csrf_token": csrf, "next": "/account/apps"},
    )


async def test_parallel_withdrawals_leave_no_live_token(
    partner: Partner, admin: Browser, harness_any: Harness
) -> None:
    tokens = [await _connect(partner) for _ in range(3)]
    path = f"/panel/authorized/{partner.app.client_id}/revoke"
    csrf = await admin.csrf()
    answers = await asyncio.gather(
        *(admin.post(path, {"csrf_token": csrf}) for _ in range(4)),
        *(_user_withdraws(partner) for _ in range(2)),
    )
    codes = [r.status_code for r in answers]
    # the panel's: done, or nothing left to withdraw; the consent page's: back to the list
    assert set(codes[:4]) <= {303, 404} and codes[4:] == [303, 303], codes
    for t in tokens:
        await _dead(partner, t)
    assert (
        await partner.h.ctx.store.get_consent(partner.user.user_id, partner.app.client_id) is None
    )
    assert "No apps authorized" in (await admin.get("/panel/authorized")).text


@pytest.mark.parametrize("by", ["panel", "user"])
async def test_a_withdrawal_racing_a_refresh_leaves_no_live_token(
    partner: Partner, admin: Browser, by: str
) -> None:
    path = f"/panel/authorized/{partner.app.client_id}/revoke"
    for round_ in range(4):
        tokens = await _connect(partner)
        csrf = await admin.csrf()
        racing = {
            "refresh": partner.refresh(tokens["refresh_token"]),
            "withdraw": admin.post(path, {"csrf_token": csrf})
            if by == "panel"
            else _user_withdraws(partner),
        }
        order = sorted(racing, reverse=bool(round_ % 2))  # each starts first in turn
        done = dict(zip(order, await asyncio.gather(*(racing[k] for k in order)), strict=True))
        refreshed, withdrawn = done["refresh"], done["withdraw"]
        assert withdrawn.status_code == 303, withdrawn.text[:300]
        assert refreshed.status_code in (200, 400), refreshed.text
        await _dead(partner, tokens)
        if refreshed.status_code == 200:  # the refresh won: its new tokens died with the rest
            await _dead(partner, dict(refreshed.json()))
