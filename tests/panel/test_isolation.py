"""No id in a panel URL reaches another merchant's data: every route with an id answers
404 for another merchant's object (exactly as for one that does not exist), and changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login
from tests.partner import REDIRECT, Partner

#: (method, route, which of the other merchant's objects fills the id, form)
ROUTES = [
    ("GET", "/panel/keys/{client_id}", "key", {}),
    ("POST", "/panel/keys/{client_id}/rotate", "key", {"overlap": "0"}),
    ("GET", "/panel/keys/{client_id}/revoke", "key", {}),
    ("POST", "/panel/keys/{client_id}/revoke", "key", {}),
    ("GET", "/panel/apps/{client_id}", "app", {}),
    ("POST", "/panel/apps/{client_id}", "app", {"name": "Mine", "redirect_uris": REDIRECT}),
    ("POST", "/panel/apps/{client_id}/security", "app", {"require_par": "on"}),
    ("POST", "/panel/apps/{client_id}/rotate", "app", {"overlap": "0"}),
    ("POST", "/panel/apps/{client_id}/keys", "app", {"clear": "1"}),
    ("GET", "/panel/apps/{client_id}/revoke", "app", {}),
    ("POST", "/panel/apps/{client_id}/revoke", "app", {}),
    ("GET", "/panel/authorized/{client_id}/revoke", "authorized", {}),
    ("POST", "/panel/authorized/{client_id}/revoke", "authorized", {}),
    ("GET", "/panel/consents/{consent_id}/revoke", "consent", {}),
    ("POST", "/panel/consents/{consent_id}/revoke", "consent", {}),
    ("GET", "/panel/devkeys/{key_id}/revoke", "devkey", {}),
    ("POST", "/panel/devkeys/{key_id}/revoke", "devkey", {}),
    ("GET", "/panel/users/{user_id}/disable", "user", {}),
    ("POST", "/panel/users/{user_id}/disable", "user", {}),
    ("GET", "/panel/activity?client_id={client_id}", "key", {}),
    # operators' only: a merchant admin gets 404 for any event id
    ("POST", "/panel/audit/deliveries/{event_id}/retry", "key", {}),
]
#: Ids that name nothing and must not upset the database either.
ODD_IDS = ["%00", "a%00b", "x" * 300, "..%2F..%2Fetc", "%E2%80%AE", "'%20OR%201=1--"]


@dataclass
class Theirs:
    key: str
    key_secret: str
    app: str
    app_secret: str
    authorized: str
    devkey: str
    apikey: str
    user: str
    partner: Partner
    tokens: dict[str, str]
    consent: str


@pytest.fixture
async def theirs(harness: Harness, other: Shop) -> Theirs:
    """Globex's key, app, developer key, user, and an app a Globex user approved."""
    gina = await login(harness, other.admin)
    key, key_secret = await gina.create_key("Globex ERP")
    app, app_secret, _ = await gina.reveal(
        await gina.post(
            "/panel/apps", {"name": "Globex Books", "redirect_uris": REDIRECT, "scope_read": "on"}
        )
    )
    devkey, apikey, _ = await gina.reveal(await gina.post("/panel/devkeys", {"name": "Mobile"}))
    approved, approved_secret = await harness.client(
        name="Ledger Sync", grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(REDIRECT,),
    )  # fmt: skip
    partner = Partner(harness, other.merchant, other.admin, approved, approved_secret)
    tokens = await partner.tokens()
    details = [{"type": "account_information", "actions": ["read_balances"]}]
    consent = await harness.ctx.consents.lodge(approved, details)
    await harness.ctx.consents.authorize(consent.consent_id, approved.client_id, other.admin, "f_x")
    await gina.http.aclose()
    return Theirs(
        key, key_secret, app, app_secret, approved.client_id, devkey, apikey,
        other.member.user_id, partner, {k: str(v) for k, v in tokens.items()},
        consent.consent_id,
    )  # fmt: skip


def _url(route: str, value: str) -> str:
    for name in ("{client_id}", "{key_id}", "{user_id}", "{event_id}", "{consent_id}"):
        route = route.replace(name, value)
    return route


def test_the_table_covers_every_panel_route_with_an_id(harness: Harness) -> None:
    covered = {(m, r.split("?")[0]) for m, r, _, _ in ROUTES}
    for route in harness.app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/panel") or "{" not in path or path == "/panel/reveal/{rid}":
            continue
        for method in getattr(route, "methods", ()):
            if method != "HEAD":
                assert (method, path) in covered, f"{method} {path} needs an isolation case"


@pytest.mark.parametrize(("method", "route", "kind", "form"), ROUTES)
async def test_another_merchants_id_is_not_found(
    harness: Harness,
    shop: Shop,
    admin: Browser,
    theirs: Theirs,
    method: str,
    route: str,
    kind: str,
    form: dict[str, str],
) -> None:
    url = _url(route, getattr(theirs, kind))
    r = await (admin.get(url) if method == "GET" else admin.post(url, form))
    assert r.status_code == 404, (method, url, r.status_code)
    assert "Not found" in r.text
    await _unchanged(harness, theirs)


async def _unchanged(h: Harness, theirs: Theirs) -> None:
    assert (await h.token(theirs.key, theirs.key_secret)).status_code == 200
    app = await h.ctx.store.get_client(theirs.app)
    assert app is not None and app.active and app.name == "Globex Books" and len(app.secrets) == 1
    user = await h.ctx.store.get_user(theirs.user)
    assert user is not None and user.active
    keys = await h.ctx.store.list_api_keys()
    assert all(k.revoked_at is None for k in keys if k.key_id == theirs.devkey)
    assert (await theirs.partner.introspect(theirs.tokens["access_token"]))["active"] is True
    consent = await h.ctx.consents.get(theirs.consent)
    assert consent is not None and consent.status == "authorized"


@pytest.mark.parametrize(("method", "route", "kind", "form"), ROUTES)
@pytest.mark.parametrize("odd", ODD_IDS)
async def test_an_id_that_names_nothing_is_not_found_never_an_error(
    admin: Browser, method: str, route: str, kind: str, form: dict[str, str], odd: str
) -> None:
    url = _url(route, odd)
    r = await (admin.get(url) if method == "GET" else admin.post(url, form))
    assert r.status_code == 404, (method, url, r.status_code)


@pytest.mark.parametrize("odd", ["%00", "x" * 300, "nope"])
async def test_a_reveal_id_that_names_nothing_is_gone(admin: Browser, odd: str) -> None:
    r = await admin.get(f"/panel/reveal/{odd}")
    assert r.status_code == 410 and 'id="reveal-secret"' not in r.text


async def test_another_merchants_objects_are_in_no_list(
    harness: Harness, admin: Browser, theirs: Theirs
) -> None:
    pages = ("keys", "apps", "authorized", "consents", "devkeys", "activity", "users", "audit")
    for page in pages:
        text = (await admin.get(f"/panel/{page}")).text
        values = (theirs.key, theirs.app, theirs.authorized, theirs.devkey, theirs.consent)
        for value in (*values, "globex"):
            assert value not in text.lower(), (page, value)
