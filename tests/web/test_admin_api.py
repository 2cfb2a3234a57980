"""The admin REST API (/admin/v1) per resource, through the app in process: merchants,
users, clients, developer API keys, signing keys, authorized apps and consents, token
revocation; no secret or hash in any answer but the one-time values; every change
audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.admin_api import Admin, admin_app, token_of
from tokensmith.core.clock import FrozenClock


@pytest.fixture
async def admin(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Admin]:
    async with admin_app(tmp_path, clock) as a:
        yield a


async def merchant(a: Admin, name: str = "Acme Shop") -> str:
    r = await a.call("POST", "/merchants", json={"name": name})
    assert r.status_code == 201, r.text
    a.h.clock.advance(1)  # listings are in creation order
    return str(r.json()["merchant_id"])


async def new_client(a: Admin, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "billing sync")
    r = await a.call("POST", "/clients", json=body)
    assert r.status_code == 201, r.text
    a.h.clock.advance(1)
    return dict(r.json())


def no_secret_in(body: Any, *secrets: str) -> None:
    text = json.dumps(body)
    assert "hash" not in text
    for secret in secrets:
        assert secret not in text


# -- merchants -----------------------------------------------------------------------------


async def test_merchants_are_created_found_listed_by_page_and_disabled(admin: Admin) -> None:
    ids = [await merchant(admin, f"Shop {n}") for n in range(3)]
    got = await admin.call("GET", f"/merchants/{ids[0]}")
    assert got.json()["name"] == "Shop 0" and got.json()["status"] == "active"
    first = (await admin.call("GET", "/merchants", params={"limit": 2})).json()
    assert [m["merchant_id"] for m in first["items"]] == ids[:2]
    rest = await admin.call(
        "GET", "/merchants", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [m["merchant_id"] for m in rest.json()["items"]] == ids[2:]
    assert rest.json()["next_cursor"] is None
    found = await admin.call("GET", "/merchants", params={"q": "shop 1"})
    assert [m["merchant_id"] for m in found.json()["items"]] == [ids[1]]
    off = await admin.call("POST", f"/merchants/{ids[1]}/disable")
    assert off.status_code == 200 and off.json()["status"] == "disabled"
    assert "admin.merchants.disable" in [e.type for e in await admin.events()]


async def test_a_second_merchant_of_one_name_is_a_conflict(admin: Admin) -> None:
    await merchant(admin, "Twin")
    r = await admin.call("POST", "/merchants", json={"name": "Twin"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "conflict"


# -- users ---------------------------------------------------------------------------------


async def test_a_merchants_users_are_created_listed_and_disabled_without_their_password(
    admin: Admin,
) -> None:
    m = await merchant(admin)
    password = "a long enough passphrase 42"
    r = await admin.call(
        "POST", f"/merchants/{m}/users", json={"email": "ann@shop.test", "password": password}
    )
    assert r.status_code == 201, r.text
    no_secret_in(r.json(), password)
    user_id = r.json()["user_id"]
    listed = await admin.call("GET", f"/merchants/{m}/users")
    assert [u["email"] for u in listed.json()["items"]] == ["ann@shop.test"]
    again = await admin.call(
        "POST", f"/merchants/{m}/users", json={"email": "ann@shop.test", "password": password}
    )
    assert again.status_code == 409
    off = await admin.call("POST", f"/merchants/{m}/users/{user_id}/disable")
    assert off.json()["status"] == "disabled"
    other = await merchant(admin, "Other")
    assert (await admin.call("GET", f"/merchants/{other}/users/{user_id}")).status_code == 404


# -- clients -------------------------------------------------------------------------------


async def test_a_created_clients_secret_is_shown_once_and_works(admin: Admin) -> None:
    m = await merchant(admin)
    body = await new_client(admin, merchant_id=m, scope="payments:read")
    secret = body["client_secret"]
    assert secret and body["live_secrets"] == 1 and body["merchant_id"] == m
    got = await admin.call("GET", f"/clients/{body['client_id']}")
    assert "client_secret" not in got.json()
    no_secret_in(got.json(), secret)
    listed = await admin.call("GET", "/clients", params={"merchant_id": m})
    no_secret_in(listed.json(), secret)
    await token_of(admin.h, body["client_id"], secret)
    (event,) = [e for e in await admin.events() if e.type == "admin.clients.create"]
    assert secret not in repr(event)


async def test_clients_are_listed_by_page_and_searched(admin: Admin) -> None:
    made = [(await new_client(admin, name=f"app {n}"))["client_id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "q": "app"}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.call("GET", "/clients", params=params)).json()
        seen += [c["client_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    bad = await admin.call("GET", "/clients", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


async def test_a_client_is_changed_with_patch_and_checked_like_a_new_one(admin: Admin) -> None:
    c = await new_client(admin)
    r = await admin.call("PATCH", f"/clients/{c['client_id']}", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    bad = await admin.call(
        "PATCH", f"/clients/{c['client_id']}", json={"grant_types": ["authorization_code"]}
    )
    assert bad.status_code == 422 and "redirect URI" in bad.json()["detail"]
    nothing = await admin.call("PATCH", f"/clients/{c['client_id']}", json={})
    assert nothing.status_code == 422


async def test_a_disabled_client_gets_no_token_until_enabled(admin: Admin) -> None:
    c = await new_client(admin)
    cid, secret = c["client_id"], c["client_secret"]
    token = await token_of(admin.h, cid, secret)
    off = await admin.call("POST", f"/clients/{cid}/disable")
    assert off.json()["status"] == "disabled"
    assert (await admin.h.token(cid, secret)).status_code == 401
    assert (await admin.call("GET", "/merchants", token=token)).status_code == 401
    on = await admin.call("POST", f"/clients/{cid}/enable")
    assert on.json()["status"] == "active"
    assert (await admin.h.token(cid, secret)).status_code == 200


async def test_a_rotated_secret_is_shown_once_and_the_old_one_ends(admin: Admin) -> None:
    c = await new_client(admin)
    cid, old = c["client_id"], c["client_secret"]
    r = await admin.call("POST", f"/clients/{cid}/secret", json={"keep_old_for": 60})
    assert r.status_code == 200, r.text
    new = r.json()["client_secret"]
    assert new != old
    no_secret_in((await admin.call("GET", f"/clients/{cid}")).json(), new, old)
    assert (await admin.h.token(cid, new)).status_code == 200
    assert (await admin.h.token(cid, old)).status_code == 200
    admin.h.clock.advance(61)
    admin.h.ctx.clients.invalidate(cid)
    assert (await admin.h.token(cid, old)).status_code == 401


async def test_registered_public_keys_replace_the_secret(admin: Admin) -> None:
    from tests.dpop import DpopKey

    c = await new_client(admin)
    jwk = DpopKey.generate().jwk | {"kid": "k1", "use": "sig"}
    r = await admin.call("PUT", f"/clients/{c['client_id']}/keys", json={"jwks": {"keys": [jwk]}})
    assert r.status_code == 200, r.text
    assert r.json()["token_endpoint_auth_methods"] == ["private_key_jwt"]
    assert r.json()["jwks"]["keys"][0]["kid"] == "k1"
    assert (await admin.h.token(c["client_id"], c["client_secret"])).status_code == 401
    both = await admin.call(
        "PUT",
        f"/clients/{c['client_id']}/keys",
        json={"jwks": {"keys": [jwk]}, "jwks_uri": "https://partner.example/jwks"},
    )
    assert both.status_code == 422
    private = await admin.call(
        "PUT",
        f"/clients/{c['client_id']}/keys",
        json={"jwks": {"keys": [DpopKey.generate().private_jwk()]}},
    )
    assert private.status_code == 422


async def test_a_deleted_client_is_gone_with_its_tokens(admin: Admin) -> None:
    c = await new_client(admin)
    token = await token_of(admin.h, c["client_id"], c["client_secret"])
    assert (await admin.call("DELETE", f"/clients/{c['client_id']}")).status_code == 204
    assert (await admin.call("GET", f"/clients/{c['client_id']}")).status_code == 404
    assert (await admin.call("DELETE", f"/clients/{c['client_id']}")).status_code == 404
    intro = await admin.http.post(
        "/oauth/introspect", data={"token": token}, auth=(c["client_id"], c["client_secret"])
    )
    assert intro.status_code == 401 or intro.json() == {"active": False}


# -- tokens --------------------------------------------------------------------------------


async def test_revoking_a_clients_tokens_ends_them_and_the_client_gets_new_ones(
    admin: Admin,
) -> None:
    c = await new_client(admin, scope="admin:merchants")
    cid, secret = c["client_id"], c["client_secret"]
    token = await token_of(admin.h, cid, secret)
    assert (await admin.call("GET", "/merchants", token=token)).status_code == 200
    r = await admin.call("POST", f"/clients/{cid}/revoke-tokens")
    assert r.status_code == 200 and r.json()["clients"] == 1
    assert (await admin.call("GET", "/merchants", token=token)).status_code == 401
    admin.h.clock.advance(1)
    fresh = await token_of(admin.h, cid, secret)
    assert (await admin.call("GET", "/merchants", token=fresh)).status_code == 200


async def test_revoking_a_merchants_tokens_ends_its_clients_and_its_partner_grants(
    admin: Admin,
) -> None:
    from tests.partner import make_partner

    p = await make_partner(admin.h)
    tokens = await p.tokens()
    own = await new_client(admin, merchant_id=p.merchant.merchant_id)
    own_token = await token_of(admin.h, own["client_id"], own["client_secret"])
    r = await admin.call("POST", f"/merchants/{p.merchant.merchant_id}/revoke-tokens")
    assert r.status_code == 200, r.text
    assert r.json()["families"] == 1 and r.json()["clients"] == 1
    assert (await p.introspect(tokens["access_token"]))["active"] is False
    assert (await p.refresh(tokens["refresh_token"])).status_code == 400
    intro = await admin.http.post(
        "/oauth/introspect",
        data={"token": own_token},
        auth=(own["client_id"], own["client_secret"]),
    )
    assert intro.json() == {"active": False}


# -- developer API keys --------------------------------------------------------------------


async def test_api_keys_are_created_rotated_and_revoked(admin: Admin) -> None:
    m = await merchant(admin)
    r = await admin.call("POST", "/api-keys", json={"name": "dev app", "merchant_id": m})
    assert r.status_code == 201, r.text
    key_id, first = r.json()["key_id"], r.json()["key"]
    listed = await admin.call("GET", "/api-keys")
    assert [k["key_id"] for k in listed.json()["items"]] == [key_id]
    no_secret_in(listed.json(), first)
    rotated = await admin.call("POST", f"/api-keys/{key_id}/rotate")
    assert rotated.status_code == 200 and rotated.json()["key"] != first
    assert (await admin.call("DELETE", f"/api-keys/{key_id}")).status_code == 204
    assert (await admin.call("POST", f"/api-keys/{key_id}/rotate")).status_code == 409
    assert (await admin.call("POST", "/api-keys/ak_nothing/rotate")).status_code == 404


# -- signing keys --------------------------------------------------------------------------


async def test_signing_keys_are_listed_rotated_and_the_old_one_retired(admin: Admin) -> None:
    before_token = admin.token
    before = (await admin.call("GET", "/signing-keys")).json()["items"]
    assert [k["status"] for k in before] == ["signing"]
    assert "d" not in before[0]["public_jwk"]
    old = before[0]["kid"]
    refused = await admin.call("POST", f"/signing-keys/{old}/retire")
    assert refused.status_code == 409
    r = await admin.call("POST", "/signing-keys/rotate", json={})
    assert r.status_code == 201, r.text
    after = {
        k["kid"]: k["status"] for k in (await admin.call("GET", "/signing-keys")).json()["items"]
    }
    assert after == {old: "published", r.json()["kid"]: "signing"}
    # the admin token was signed by the old key: retiring it ends the token too
    admin.token = await token_of(admin.h, admin.client_id, admin.secret)
    retired = await admin.call("POST", f"/signing-keys/{old}/retire")
    assert retired.status_code == 200 and retired.json()["status"] == "expired"
    assert (await admin.call("GET", "/signing-keys", token=before_token)).status_code == 401
    jwks = (await admin.http.get("/.well-known/jwks.json")).json()
    assert old not in [k["kid"] for k in jwks["keys"]]
    assert (await admin.call("POST", "/signing-keys/nokey/retire")).status_code == 404


# -- authorized apps and consents ----------------------------------------------------------


async def test_authorized_apps_and_consents_are_listed_and_withdrawn(admin: Admin) -> None:
    from tests.partner import make_partner

    p = await make_partner(admin.h)
    tokens = await p.tokens()
    m, u, app = p.merchant.merchant_id, p.user.user_id, p.app.client_id
    apps = (await admin.call("GET", f"/merchants/{m}/authorized-apps")).json()["items"]
    assert [(a["client_id"], a["live_grants"]) for a in apps] == [(app, 1)]
    consents = await admin.call("GET", f"/merchants/{m}/users/{u}/consents")
    assert consents.status_code == 200 and isinstance(consents.json()["items"], list)
    r = await admin.call("DELETE", f"/merchants/{m}/users/{u}/consents/{app}")
    assert r.status_code == 200 and r.json()["families"] == 1
    assert (await p.introspect(tokens["access_token"]))["active"] is False
    gone = await admin.call("DELETE", f"/merchants/{m}/authorized-apps/{app}")
    assert gone.status_code == 404


# -- the document and the docs page --------------------------------------------------------


async def test_the_openapi_document_names_every_route_of_the_api(admin: Admin) -> None:
    from tokensmith.web.admin.resources import OPERATIONS

    doc = (await admin.http.get("/admin/v1/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    declared = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert declared == {(op.method, "/admin/v1" + op.path) for op in OPERATIONS}
    for item in doc["paths"].values():
        for op in item.values():
            assert "401" in op["responses"] and "403" in op["responses"]


async def test_the_docs_page_loads_only_its_own_script(admin: Admin) -> None:
    r = await admin.http.get("/admin/v1/docs")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'src="/static/admin-docs.js"' in r.text and "http" not in r.text.split("<body>")[0]
    assert (await admin.http.get("/static/admin-docs.js")).status_code == 200


async def test_audit_events_are_listed_newest_first_and_filtered(admin: Admin) -> None:
    first = await merchant(admin, "Audited Roasters")
    second = await merchant(admin, "Audited Bakers")
    r = await admin.call("GET", "/audit-events", params={"type": "admin.merchants"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert sorted((e["type"], e["subject"]) for e in items) == sorted(
        [("admin.merchants.create", second), ("admin.merchants.create", first)]
    )
    assert items[0]["actor"] == f"client:{admin.client_id}" and items[0]["outcome"] == "success"
    one = await admin.call("GET", "/audit-events", params={"type": "admin", "limit": 1})
    (shown,) = [e["subject"] for e in one.json()["items"]]
    rest = await admin.call(
        "GET", "/audit-events", params={"type": "admin", "cursor": one.json()["next_cursor"]}
    )
    assert {shown, *(e["subject"] for e in rest.json()["items"])} >= {first, second}
    bad = await admin.call("GET", "/audit-events", params={"cursor": "nope"})
    assert bad.status_code == 422


async def test_changes_made_through_the_api_name_the_admin_client_not_the_system(
    admin: Admin,
) -> None:
    from tests.dpop import DpopKey

    c = await new_client(admin)
    cid = c["client_id"]
    assert (await admin.call("PATCH", f"/clients/{cid}", json={"name": "renamed"})).is_success
    jwk = DpopKey.generate().jwk | {"kid": "k1", "use": "sig"}
    assert (
        await admin.call("PUT", f"/clients/{cid}/keys", json={"jwks": {"keys": [jwk]}})
    ).is_success
    assert (await admin.call("DELETE", f"/clients/{cid}")).status_code == 204
    core = [e for e in await admin.events() if e.subject == cid and e.type.startswith("client.")]
    assert {e.type for e in core} == {
        "client.created",
        "client.updated",
        "client.keys_changed",
        "client.deleted",
    }
    assert {e.actor for e in core} == {f"client:{admin.client_id}"}


# -- consent resources ---------------------------------------------------------------------


async def test_consent_resources_are_listed_filtered_read_and_revoked(admin: Admin) -> None:
    from tests.web.test_consent_resources import (
        ACCOUNTS,
        PAYMENT,
        authorized_tokens,
        consent_partner,
        lodged,
    )

    p = await consent_partner(admin.h)
    waiting = await lodged(p, [PAYMENT])
    admin.h.clock.advance(1)
    granted = await lodged(p, [ACCOUNTS])
    tokens = await authorized_tokens(p, granted)
    app, m = p.app.client_id, p.merchant.merchant_id
    listed = (await admin.call("GET", "/consents", params={"client_id": app})).json()
    assert [c["consent_id"] for c in listed["items"]] == [waiting, granted]
    by_status = await admin.call("GET", "/consents", params={"status": "authorized"})
    assert [c["consent_id"] for c in by_status.json()["items"]] == [granted]
    mine = await admin.call("GET", "/consents", params={"merchant_id": m, "limit": 1})
    assert [c["consent_id"] for c in mine.json()["items"]] == [granted]
    one = (await admin.call("GET", f"/consents/{granted}")).json()
    assert one["status"] == "authorized" and one["authorization_details"] == [ACCOUNTS]
    assert (one["user_id"], one["merchant_id"]) == (p.user.user_id, m)
    r = await admin.call("POST", f"/consents/{granted}/revoke")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert (await p.introspect(tokens["access_token"]))["active"] is False
    assert (await admin.call("GET", "/consents/cns_nothing")).status_code == 404
    assert (await admin.call("GET", "/consents", params={"status": "odd"})).status_code == 422
    # a merchant's client sees the consents its users decided, and no other
    _, _, other = await admin.client_token("admin:consents", merchant_id=m)
    assert (await admin.call("GET", f"/consents/{granted}", other)).status_code == 200
    assert (await admin.call("GET", f"/consents/{waiting}", other)).status_code == 404
    events = [e.type for e in await admin.events()]
    assert "admin.consents.revoke" in events and "consent.revoked" in events


async def test_a_consumed_consent_cannot_be_revoked(admin: Admin) -> None:
    from tests.web.test_consent_resources import (
        PAYMENT,
        authorized_tokens,
        consent_partner,
        consume,
        lodged,
    )

    p = await consent_partner(admin.h)
    consent_id = await lodged(p, [PAYMENT])
    tokens = await authorized_tokens(p, consent_id)
    assert (await consume(p, tokens["access_token"])).status_code == 200
    r = await admin.call("POST", f"/consents/{consent_id}/revoke")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
