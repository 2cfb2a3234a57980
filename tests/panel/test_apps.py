"""Integration > API > Partner apps: register, edit redirect URIs and form URI, rotate, delete."""

from __future__ import annotations

import html

import httpx
import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop

REDIRECT = "https://ledger.example/callback"
FORM = {"name": "Ledger Sync", "redirect_uris": REDIRECT, "scope_read": "on"}


async def _introspect(h: Harness, client_id: str, secret: str) -> int:
    """Whether the app's credentials authenticate (200) or not (401)."""
    r = await h.http.post("/oauth/introspect", data={"token": "x"}, auth=(client_id, secret))
    return r.status_code


async def _register(admin: Browser, **extra: str) -> tuple[str, str]:
    client_id, secret, _ = await admin.reveal(await admin.post("/panel/apps", FORM | extra))
    return client_id, secret


async def test_a_registered_app_is_an_authorization_code_client_of_the_merchant(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    client_id, secret = await _register(
        admin,
        redirect_uris=f"{REDIRECT}\n\n http://127.0.0.1:8765/cb \n{REDIRECT}",
        form_uri="https://ledger.example/connect",
        scope_write="on",
    )
    app = await harness.ctx.store.get_client(client_id)
    assert app is not None and app.merchant_id == shop.merchant.merchant_id
    assert app.grant_types == ("authorization_code", "refresh_token")
    assert app.redirect_uris == (REDIRECT, "http://127.0.0.1:8765/cb")
    assert app.form_uri == "https://ledger.example/connect" and app.scopes == ("read", "write")
    assert await _introspect(harness, client_id, secret) == 200
    page = await admin.get(f"/panel/apps/{client_id}")
    assert client_id in page.text and "/oauth/authorize?response_type=code" in page.text
    assert "Ledger Sync" in (await admin.get("/panel/apps")).text
    assert "Ledger Sync" not in (await admin.get("/panel/keys")).text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": ""}, "Give the app a name"),
        ({"redirect_uris": ""}, "Add at least one redirect URI"),
        ({"redirect_uris": "http://ledger.example/cb"}, "must use https"),
        ({"redirect_uris": "https://ledger.example/cb#frag"}, "no fragment"),
        ({"redirect_uris": "/callback"}, "must be absolute"),
        ({"redirect_uris": "\n".join(f"https://a.example/{n}" for n in range(11))}, "At most 10"),
        ({"redirect_uris": "https://a.example/" + "x" * 2000}, "At most 10"),
        ({"form_uri": "http://ledger.example/form"}, "form URI must use https"),
        ({"form_uri": "ledger.example"}, "absolute URL"),
        ({"form_uri": "https://ledger.example/#x"}, "absolute URL"),
        ({"redirect_uris": "http://[::1/cb"}, "not a well-formed URI"),
        ({"redirect_uris": "https://ledger.example:99999/cb"}, "not a well-formed URI"),
        ({"redirect_uris": "javascript://ledger.example/%0aalert(1)"}, "javascript: scheme"),
        ({"form_uri": "https://[::1/form"}, "absolute URL"),
        ({"scope_read": ""}, "Choose at least one scope"),
    ],
)
async def test_a_bad_app_form_is_shown_again_with_the_problem(
    harness: Harness, shop: Shop, admin: Browser, extra: dict[str, str], message: str
) -> None:
    r = await admin.post("/panel/apps", FORM | extra)
    assert r.status_code == 400 and message in html.unescape(r.text)
    assert await harness.ctx.store.list_clients(shop.merchant.merchant_id) == []


async def test_editing_redirect_uris_takes_effect_on_the_authorization_endpoint_at_once(
    harness: Harness, admin: Browser
) -> None:
    client_id, _ = await _register(admin)
    query = {"response_type": "code", "client_id": client_id, "scope": "read"}
    new = "https://ledger.example/v2/callback"
    before = await harness.http.get("/oauth/authorize", params=query | {"redirect_uri": new})
    assert before.status_code == 400

    saved = await admin.post(
        f"/panel/apps/{client_id}",
        {"name": "Ledger Sync 2", "redirect_uris": new, "form_uri": "https://ledger.example/f"},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("done=app-saved")
    app = await harness.ctx.store.get_client(client_id)
    assert app is not None and app.redirect_uris == (new,) and app.name == "Ledger Sync 2"
    assert app.form_uri == "https://ledger.example/f" and app.scopes == ("read",)
    after = await harness.http.get("/oauth/authorize", params=query | {"redirect_uri": new})
    assert after.status_code == 200 and "Sign in" in after.text
    old = await harness.http.get("/oauth/authorize", params=query | {"redirect_uri": REDIRECT})
    assert old.status_code == 400


async def test_a_bad_edit_changes_nothing(harness: Harness, admin: Browser) -> None:
    client_id, _ = await _register(admin)
    r = await admin.post(f"/panel/apps/{client_id}", {"name": "X", "redirect_uris": "ftp:/x"})
    assert r.status_code == 400 and "ftp:/x" in html.unescape(r.text)
    app = await harness.ctx.store.get_client(client_id)
    assert app is not None and app.redirect_uris == (REDIRECT,) and app.name == "Ledger Sync"


async def test_rotating_and_deleting_an_app(harness: Harness, admin: Browser) -> None:
    client_id, old = await _register(admin)
    _, new, _ = await admin.reveal(
        await admin.post(f"/panel/apps/{client_id}/rotate", {"overlap": "0"})
    )
    assert await _introspect(harness, client_id, old) == 401
    assert await _introspect(harness, client_id, new) == 200
    assert (await admin.get(f"/panel/apps/{client_id}/revoke")).status_code == 200
    done = await admin.post(f"/panel/apps/{client_id}/revoke")
    assert done.headers["location"] == "/panel/apps?done=app-revoked"
    assert await _introspect(harness, client_id, new) == 401
    authorize = await harness.http.get(
        "/oauth/authorize", params={"response_type": "code", "client_id": client_id}
    )
    assert authorize.status_code == 400
    edit = await admin.post(f"/panel/apps/{client_id}", FORM)
    assert edit.status_code == 404


async def test_keys_and_apps_are_not_reachable_through_each_others_pages(
    harness: Harness, admin: Browser
) -> None:
    app_id, _ = await _register(admin)
    key_id, _ = await admin.create_key()
    for path in (f"/panel/keys/{app_id}", f"/panel/apps/{key_id}"):
        r = await admin.get(path)
        assert r.status_code == 404, path
    r: httpx.Response = await admin.post(f"/panel/keys/{app_id}/revoke")
    assert r.status_code == 404
