"""Who may do what in the panel: login, roles, CSRF, the operator's merchant switcher,
sessions and the security headers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, login, make_shop
from tokensmith.core.clock import FrozenClock

PAGES = [
    "/panel/keys",
    "/panel/keys/new",
    "/panel/apps",
    "/panel/apps/new",
    "/panel/authorized",
    "/panel/devkeys",
    "/panel/devkeys/new",
    "/panel/activity",
    "/panel/users",
    "/panel/users/new",
]
EDIT_PAGES = [p for p in PAGES if p.endswith("/new")]


def _panel_routes(h: Harness) -> list[tuple[str, str]]:
    found = []
    for route in h.app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/panel"):
            found.extend((m, path) for m in sorted(getattr(route, "methods", ())) if m != "HEAD")
    return found


async def test_anonymous_visitors_are_sent_to_the_login_page(harness: Harness) -> None:
    anonymous = httpx.AsyncClient(
        transport=httpx.ASGITransport(harness.asgi), base_url="https://auth.example.test"
    )
    for method, path in _panel_routes(harness):
        url = path.replace("{client_id}", "x").replace("{key_id}", "x")
        url = url.replace("{user_id}", "x").replace("{rid}", "x")
        r = await anonymous.request(method, url)
        assert r.status_code == 303, (method, url)
        if url != "/panel":  # that one only points at /panel/keys
            assert r.headers["location"].startswith("/login?next=%2Fpanel")
    await anonymous.aclose()


async def test_the_panel_home_goes_to_the_api_keys(admin: Browser) -> None:
    r = await admin.get("/panel")
    assert r.status_code == 303 and r.headers["location"] == "/panel/keys"


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_the_security_headers_and_no_inline_script(
    admin: Browser, path: str
) -> None:
    r = await admin.get(path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert re.findall(r"<script[^>]*>", r.text) == ['<script src="/static/panel.js" defer>']
    assert " style=" not in r.text


async def test_the_script_and_stylesheet_are_served(harness: Harness) -> None:
    js = await harness.http.get("/static/panel.js")
    css = await harness.http.get("/static/panel.css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


@pytest.mark.parametrize("path", EDIT_PAGES)
async def test_a_member_may_not_open_forms(member: Browser, path: str) -> None:
    r = await member.get(path)
    assert r.status_code == 403 and "view" in r.text


@pytest.mark.parametrize("path", [p for p in PAGES if p not in EDIT_PAGES])
async def test_a_member_sees_pages_without_any_form(member: Browser, path: str) -> None:
    r = await member.get(path)
    assert r.status_code == 200
    forms = re.findall(r'<form[^>]* method="post" action="([^"]+)"', r.text)
    assert forms == ["/logout"], forms
    assert 'href="/panel/keys/new"' not in r.text


async def _targets(harness: Harness, shop: Shop, admin: Browser) -> dict[str, str]:
    """An object of each kind, of the member's own merchant."""
    key, _ = await admin.create_key()
    app, _, _ = await admin.reveal(
        await admin.post(
            "/panel/apps",
            {"name": "A", "redirect_uris": "https://a.example/cb", "scope_read": "on"},
        )
    )
    devkey, _, _ = await admin.reveal(await admin.post("/panel/devkeys", {"name": "D"}))
    return {
        "{client_id}": key,
        "{key_id}": devkey,
        "{user_id}": shop.admin.user_id,
        "{rid}": "x",
        "/panel/apps/{app}": app,
    }


async def test_a_member_is_refused_every_change_with_403(
    harness: Harness, shop: Shop, admin: Browser, member: Browser
) -> None:
    ids = await _targets(harness, shop, admin)
    posts = [path for method, path in _panel_routes(harness) if method == "POST"]
    assert len(posts) >= 13
    for path in posts:
        url = path
        if path.startswith("/panel/apps/"):
            url = url.replace("{client_id}", ids["/panel/apps/{app}"])
        for name, value in ids.items():
            url = url.replace(name, value)
        r = await member.post(url, {"name": "x", "overlap": "0", "merchant_id": "x"})
        assert r.status_code == 403, (path, r.status_code)
    key = await harness.ctx.store.get_client(ids["{client_id}"])
    assert key is not None and key.active and len(key.secrets) == 1


@pytest.mark.parametrize(
    ("csrf", "origin"),
    [(None, None), ("forged", None), ("valid", "https://evil.example")],
    ids=["missing", "wrong", "foreign-origin"],
)
async def test_a_change_without_a_valid_csrf_token_is_refused(
    harness: Harness, shop: Shop, admin: Browser, csrf: str | None, origin: str | None
) -> None:
    form = {"name": "Shop", "scope_read": "on"}
    if csrf is not None:
        form["csrf_token"] = await admin.csrf() if csrf == "valid" else csrf
    headers = {"origin": origin} if origin else {}
    r = await admin.http.post("/panel/keys", data=form, headers=headers)
    assert r.status_code == 403 and "expired" in r.text
    assert await harness.ctx.store.list_clients(shop.merchant.merchant_id) == []


@pytest.mark.parametrize(
    "body",
    [b"name=%FF%FE&scope_read=on", b"name=a&name=b", b"x" * 20000],
    ids=["bad-encoding", "repeated", "too-large"],
)
async def test_a_malformed_form_is_a_clear_4xx(admin: Browser, body: bytes) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    r = await admin.http.post("/panel/keys", content=body, headers=headers)
    assert 400 <= r.status_code < 500 and "Bad request" in r.text


async def test_an_operator_switches_between_merchants(
    harness: Harness, shop: Shop, other: Shop, operator: Browser
) -> None:
    globex_key, _ = await harness.client(name="Globex ERP", merchant_id=other.merchant.merchant_id)
    page = await operator.get("/panel/keys")
    assert (
        "Acme Shop" in page.text and "Globex" in page.text and 'id="merchant-switch"' in page.text
    )
    assert "New ones go to Acme Shop" in page.text  # every merchant's keys are listed
    switched = await operator.post("/panel/merchant", {"merchant_id": other.merchant.merchant_id})
    assert switched.status_code == 303
    cookie = switched.headers["set-cookie"]
    assert "__Host-tokensmith_merchant=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    page = await operator.get("/panel/keys")
    assert "New ones go to Globex" in page.text and "Switched merchant" not in page.text
    assert (await operator.get(f"/panel/keys/{globex_key.client_id}")).status_code == 200
    unknown = await operator.post("/panel/merchant", {"merchant_id": "m_nope"})
    assert unknown.status_code == 404


async def test_a_merchant_user_cannot_switch_merchant(
    harness: Harness, other: Shop, admin: Browser
) -> None:
    r = await admin.post("/panel/merchant", {"merchant_id": other.merchant.merchant_id})
    assert r.status_code == 403
    admin.http.cookies.set("__Host-tokensmith_merchant", other.merchant.merchant_id)
    page = await admin.get("/panel/users")
    assert "Globex" not in page.text and "admin@acmeshop.test" in page.text


async def test_the_session_cookie_is_httponly_samesite_and_secure_under_https(
    harness: Harness, shop: Shop
) -> None:
    page = await harness.http.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-tokensmith=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


async def test_the_session_cookie_is_not_secure_under_plain_http(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'h.db'}", issuer="http://127.0.0.1:8000"
    )
    async with running_app(settings, FrozenClock()) as h:
        cookie = (await h.http.get("/login")).headers["set-cookie"]
        assert cookie.startswith("tokensmith_session=") and "Secure" not in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie


@pytest.mark.parametrize(
    ("advance", "alive"),
    [(1700, True), (1801, False)],
    ids=["within-idle", "idle-expired"],
)
async def test_panel_sessions_expire_when_idle(
    harness: Harness, admin: Browser, advance: int, alive: bool
) -> None:
    harness.clock.advance(advance)
    r = await admin.get("/panel/keys")
    assert (r.status_code == 200) is alive
    if not alive:
        assert r.headers["location"].startswith("/login")


async def test_panel_sessions_end_after_their_absolute_lifetime(
    harness: Harness, admin: Browser
) -> None:
    for _ in range(30):  # active every half hour, past the twelve hours a session lasts
        harness.clock.advance(1790)
        r = await admin.get("/panel/keys")
        if r.status_code != 200:
            break
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_another_user_of_a_disabled_merchant_is_logged_out(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    await harness.ctx.store.disable_merchant(shop.merchant.merchant_id, harness.clock.now())
    r = await admin.get("/panel/keys")
    assert r.status_code == 303


async def test_an_operator_without_merchants_sees_how_to_make_one(tmp_path: Path) -> None:
    from tests.partner import make_user

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'o.db'}")
    async with running_app(settings, FrozenClock()) as h:
        ops = await login(h, await make_user(h, None, "ops@platform.test", "operator"))
        page = await ops.get("/panel/keys")
        assert page.status_code == 200 and "No merchants yet" in page.text
        await make_shop(h, "First Shop")
        assert "First Shop" in (await ops.get("/panel/keys")).text
        await ops.http.aclose()
