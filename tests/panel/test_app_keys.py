"""Partner app page: register, replace and remove the app's public keys (a pasted JWK Set
or a jwks_uri) for private_key_jwt (RFC 7523); checked as the CLI checks them, the problem
shown on the form, and applied at once."""

from __future__ import annotations

import html
import json

import pytest

from tests.assertions import ISSUER, ClientKey, assertion_form
from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login, make_shop

KEY = ClientKey.generate("ES256", kid="app-k1")
NEW = ClientKey.generate("EdDSA", kid="app-k2")
FORM = {"name": "Ledger Sync", "redirect_uris": "https://ledger.example/cb", "scope_read": "on"}


async def _register(admin: Browser) -> tuple[str, str]:
    client_id, secret, _ = await admin.reveal(await admin.post("/panel/apps", FORM))
    return client_id, secret


async def _with_key(h: Harness, client_id: str, key: ClientKey) -> int:
    """Whether an assertion signed by ``key`` authenticates the app (200) or not (401)."""
    assertion = key.assertion(client_id, h.clock.now(), aud=ISSUER)
    r = await h.http.post("/oauth/introspect", data=assertion_form(assertion, token="x"))
    return r.status_code


async def _with_secret(h: Harness, client_id: str, secret: str) -> int:
    r = await h.http.post("/oauth/introspect", data={"token": "x"}, auth=(client_id, secret))
    return r.status_code


async def test_pasted_keys_apply_at_once_and_the_secret_keeps_working(
    harness: Harness, admin: Browser
) -> None:
    client_id, secret = await _register(admin)
    assert await _with_secret(harness, client_id, secret) == 200  # the client is cached
    assert await _with_key(harness, client_id, KEY) == 401
    r = await admin.post(f"/panel/apps/{client_id}/keys", {"jwks": KEY.jwks()})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=app-keys-saved")
    assert await _with_key(harness, client_id, KEY) == 200
    assert await _with_secret(harness, client_id, secret) == 200
    page = (await admin.get(f"/panel/apps/{client_id}")).text
    assert "app-k1" in page and "private_key_jwt" in page and "Replace keys" in page


async def test_replaced_keys_refuse_the_old_key_at_once(harness: Harness, admin: Browser) -> None:
    client_id, _ = await _register(admin)
    await admin.post(f"/panel/apps/{client_id}/keys", {"jwks": KEY.jwks()})
    assert await _with_key(harness, client_id, KEY) == 200
    await admin.post(f"/panel/apps/{client_id}/keys", {"jwks": NEW.jwks()})
    assert await _with_key(harness, client_id, KEY) == 401
    assert await _with_key(harness, client_id, NEW) == 200


async def test_a_jwks_uri_is_registered(harness: Harness, admin: Browser) -> None:
    client_id, _ = await _register(admin)
    uri = "https://ledger.example/.well-known/jwks.json"
    r = await admin.post(f"/panel/apps/{client_id}/keys", {"jwks_uri": uri})
    assert r.status_code == 303
    stored = await harness.ctx.store.get_client(client_id)
    assert stored is not None and stored.jwks_uri == uri and stored.jwks is None
    assert uri in (await admin.get(f"/panel/apps/{client_id}")).text


async def test_removed_keys_no_longer_authenticate(harness: Harness, admin: Browser) -> None:
    client_id, secret = await _register(admin)
    await admin.post(f"/panel/apps/{client_id}/keys", {"jwks": KEY.jwks()})
    assert "Remove keys" in (await admin.get(f"/panel/apps/{client_id}")).text
    r = await admin.post(f"/panel/apps/{client_id}/keys", {"clear": "1"})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=app-keys-cleared")
    assert await _with_key(harness, client_id, KEY) == 401
    assert await _with_secret(harness, client_id, secret) == 200


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "Paste the app's JWK Set"),
        ({"jwks": "{nope"}, "not JSON"),
        ({"jwks": json.dumps({"keys": [KEY.key.private_jwk()]})}, "private key material"),
        ({"jwks": '{"keys": []}'}, "non-empty"),
        ({"jwks_uri": "http://ledger.example/jwks"}, "must use https"),
        ({"jwks_uri": "https://10.0.0.3/jwks"}, "not a public address"),
        ({"jwks_uri": "https://169.254.169.254/latest"}, "metadata"),
        ({"jwks": KEY.jwks(), "jwks_uri": "https://ledger.example/j"}, "not both"),
        ({"jwks": KEY.jwks(), "clear": "1"}, "not both at once"),
        ({"clear": "1"}, "no keys to clear"),
    ],
    ids=[
        "empty",
        "not json",
        "private key",
        "no keys",
        "http",
        "private address",
        "metadata",
        "both",
        "clear and set",
        "nothing to clear",
    ],
)
async def test_bad_keys_are_shown_on_the_form(
    harness: Harness, admin: Browser, form: dict[str, str], message: str
) -> None:
    client_id, _ = await _register(admin)
    r = await admin.post(f"/panel/apps/{client_id}/keys", form)
    assert r.status_code == 400 and message in html.unescape(r.text), r.text
    assert 'aria-invalid="true"' in r.text
    stored = await harness.ctx.store.get_client(client_id)
    assert stored is not None and stored.jwks is None and stored.jwks_uri is None


async def test_only_editors_of_the_merchant_change_keys(
    harness: Harness, admin: Browser, member: Browser, shop: Shop
) -> None:
    client_id, _ = await _register(admin)
    r = await member.post(f"/panel/apps/{client_id}/keys", {"jwks": KEY.jwks()})
    assert r.status_code == 403
    other = await make_shop(harness, "Globex")
    stranger = await login(harness, other.admin)
    r = await stranger.post(f"/panel/apps/{client_id}/keys", {"jwks": KEY.jwks()})
    assert r.status_code == 404
    await stranger.http.aclose()
    stored = await harness.ctx.store.get_client(client_id)
    assert stored is not None and stored.jwks is None
