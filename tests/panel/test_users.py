"""Team > Users: admins add and disable users; members only look."""

from __future__ import annotations

import html

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login
from tests.partner import PASSWORD


async def test_an_admin_adds_a_member_who_can_then_sign_in(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    r = await admin.post(
        "/panel/users", {"email": "Carol@Acme.test ", "password": PASSWORD, "role": "member"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/panel/users?done=user-created"
    carol = await harness.ctx.store.find_user_by_email("carol@acme.test")
    assert carol is not None and carol.role == "member"
    assert carol.merchant_id == shop.merchant.merchant_id and PASSWORD not in carol.password_hash
    assert "carol@acme.test" in (await admin.get("/panel/users")).text
    browser = await login(harness, carol)
    assert "view only" in (await browser.get("/panel/keys")).text
    await browser.http.aclose()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-address", "password": PASSWORD, "role": "member"}, "not an e-mail"),
        ({"email": "d@acme.test", "password": "short", "role": "member"}, "at least 10"),
        ({"email": "d@acme.test", "password": PASSWORD, "role": "operator"}, "Choose a role"),
        ({"email": "d@acme.test", "password": PASSWORD}, "Choose a role"),
        ({"email": "member@acmeshop.test", "password": PASSWORD, "role": "admin"}, "exists"),
    ],
    ids=["bad-email", "short-password", "operator", "no-role", "taken"],
)
async def test_a_bad_user_form_is_shown_again_with_the_problem(
    harness: Harness, shop: Shop, admin: Browser, form: dict[str, str], message: str
) -> None:
    r = await admin.post("/panel/users", form)
    assert r.status_code == 400 and message in html.unescape(r.text)
    assert PASSWORD not in r.text
    assert len(await harness.ctx.store.list_users(shop.merchant.merchant_id)) == 2


async def test_disabling_a_user_signs_them_out_everywhere(
    harness: Harness, shop: Shop, admin: Browser, member: Browser
) -> None:
    assert (await member.get("/panel/keys")).status_code == 200
    confirm = await admin.get(f"/panel/users/{shop.member.user_id}/disable")
    assert confirm.status_code == 200 and shop.member.email in confirm.text
    done = await admin.post(f"/panel/users/{shop.member.user_id}/disable")
    assert done.headers["location"] == "/panel/users?done=user-disabled"
    kicked = await member.get("/panel/keys")
    assert kicked.status_code == 303 and kicked.headers["location"].startswith("/login")
    assert "Disabled" in (await admin.get("/panel/users")).text


async def test_an_admin_cannot_disable_themselves(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    assert (await admin.get(f"/panel/users/{shop.admin.user_id}/disable")).status_code == 404
    assert (await admin.post(f"/panel/users/{shop.admin.user_id}/disable")).status_code == 404
    assert (await admin.get("/panel/keys")).status_code == 200
