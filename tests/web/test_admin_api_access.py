"""Who may call the admin API, and what a bad request gets: the token checks (none,
malformed, expired, revoked, a refresh token, a DPoP-bound token without its proof, a
partner app's token), scopes, a merchant's client kept to its merchant (the cross-merchant
attack), and malformed requests, each a problem+json answer with the right status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dpop import DpopKey
from tests.partner import make_partner
from tests.web.admin_api import ADMIN, Admin, admin_app
from tokensmith.core.clock import FrozenClock

PROBLEM = "application/problem+json"
ISSUER = "https://auth.example.test"


@pytest.fixture
async def admin(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Admin]:
    async with admin_app(tmp_path, clock) as a:
        yield a


def problem_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = dict(r.json())
    assert body["status"] == status and body["code"] == code, body
    assert {"type", "title", "detail"} <= body.keys()
    return body


# -- the token -----------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    #: Makes the request's headers (the app at hand).
    headers: Callable[[Admin], Awaitable[dict[str, str]]]
    status: int
    code: str


async def _none(a: Admin) -> dict[str, str]:
    return {}


async def _basic(a: Admin) -> dict[str, str]:
    return {"authorization": f"Basic {a.token}"}


async def _garbage(a: Admin) -> dict[str, str]:
    return {"authorization": "Bearer not.a.token"}


async def _two_headers(a: Admin) -> dict[str, str]:
    return {"authorization": f"Bearer {a.token}, Bearer {a.token}"}


async def _wrong_scope(a: Admin) -> dict[str, str]:
    _, _, token = await a.client_token("admin:users")
    return {"authorization": f"Bearer {token}"}


async def _no_admin_scope(a: Admin) -> dict[str, str]:
    _, _, token = await a.client_token("read write")
    return {"authorization": f"Bearer {token}"}


async def _expired(a: Admin) -> dict[str, str]:
    _, _, token = await a.client_token("admin:clients", access_token_ttl=60)
    a.h.clock.advance(61)
    return {"authorization": f"Bearer {token}"}


async def _revoked(a: Admin) -> dict[str, str]:
    cid, secret, token = await a.client_token("admin:clients")
    r = await a.http.post("/oauth/revoke", data={"token": token}, auth=(cid, secret))
    assert r.status_code == 200
    return {"authorization": f"Bearer {token}"}


async def _revoked_opaque(a: Admin) -> dict[str, str]:
    cid, secret, token = await a.client_token("admin:clients", token_format="opaque")
    r = await a.http.post("/oauth/revoke", data={"token": token}, auth=(cid, secret))
    assert r.status_code == 200
    return {"authorization": f"Bearer {token}"}


async def _refresh_token(a: Admin) -> dict[str, str]:
    p = await make_partner(a.h, scope="read write admin:clients")
    tokens = await p.tokens(scope="admin:clients")
    return {"authorization": f"Bearer {tokens['refresh_token']}"}


async def _partner_access_token(a: Admin) -> dict[str, str]:
    """A partner app's token acts for the user's merchant, not for the client."""
    p = await make_partner(a.h, scope="read write admin:clients")
    tokens = await p.tokens(scope="admin:clients")
    return {"authorization": f"Bearer {tokens['access_token']}"}


async def _dpop_token(a: Admin, key: DpopKey) -> str:
    client, secret = await a.h.client(scope="admin:clients")
    r = await a.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        headers={"dpop": key.proof()},
    )
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
    return str(r.json()["access_token"])


async def _dpop_as_bearer(a: Admin) -> dict[str, str]:
    token = await _dpop_token(a, DpopKey.generate())
    return {"authorization": f"Bearer {token}"}


async def _dpop_without_proof(a: Admin) -> dict[str, str]:
    token = await _dpop_token(a, DpopKey.generate())
    return {"authorization": f"DPoP {token}"}


async def _dpop_other_key(a: Admin) -> dict[str, str]:
    token = await _dpop_token(a, DpopKey.generate())
    proof = DpopKey.generate().proof(ISSUER + ADMIN + "/clients", "GET", access_token=token)
    return {"authorization": f"DPoP {token}", "dpop": proof}


async def _dpop_without_ath(a: Admin) -> dict[str, str]:
    key = DpopKey.generate()
    token = await _dpop_token(a, key)
    return {"authorization": f"DPoP {token}", "dpop": key.proof(ISSUER + ADMIN + "/clients", "GET")}


async def _dpop_wrong_htu(a: Admin) -> dict[str, str]:
    key = DpopKey.generate()
    token = await _dpop_token(a, key)
    proof = key.proof(ISSUER + ADMIN + "/merchants", "GET", access_token=token)
    return {"authorization": f"DPoP {token}", "dpop": proof}


async def _bearer_under_dpop_scheme(a: Admin) -> dict[str, str]:
    proof = DpopKey.generate().proof(ISSUER + ADMIN + "/clients", "GET", access_token=a.token)
    return {"authorization": f"DPoP {a.token}", "dpop": proof}


CASES = [
    Case("no token", _none, 401, "missing_token"),
    Case("another scheme", _basic, 401, "invalid_token"),
    Case("not a token", _garbage, 401, "invalid_token"),
    Case("two tokens in one header", _two_headers, 401, "invalid_token"),
    Case("another family's scope", _wrong_scope, 403, "insufficient_scope"),
    Case("no admin scope", _no_admin_scope, 403, "insufficient_scope"),
    Case("expired", _expired, 401, "invalid_token"),
    Case("revoked JWT", _revoked, 401, "invalid_token"),
    Case("revoked opaque token", _revoked_opaque, 401, "invalid_token"),
    Case("refresh token as access token", _refresh_token, 401, "invalid_token"),
    Case("partner app token for a merchant", _partner_access_token, 401, "invalid_token"),
    Case("DPoP-bound token as Bearer", _dpop_as_bearer, 401, "invalid_token"),
    Case("DPoP-bound token without proof", _dpop_without_proof, 401, "invalid_dpop_proof"),
    Case("proof of another key", _dpop_other_key, 401, "invalid_dpop_proof"),
    Case("proof without ath", _dpop_without_ath, 401, "invalid_dpop_proof"),
    Case("proof for another URL", _dpop_wrong_htu, 401, "invalid_dpop_proof"),
    Case("Bearer token under the DPoP scheme", _bearer_under_dpop_scheme, 401, "invalid_token"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_request_without_a_good_token_is_refused(admin: Admin, case: Case) -> None:
    headers = await case.headers(admin)
    r = await admin.http.get(ADMIN + "/clients", headers=headers)
    problem_of(r, case.status, case.code)
    challenge = r.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer realm=")
    if case.code == "missing_token":
        assert "error=" not in challenge  # RFC 6750 §3.1
    else:
        assert f'error="{case.code}"' in challenge


async def test_a_dpop_bound_token_with_its_proof_is_accepted(admin: Admin) -> None:
    key = DpopKey.generate()
    token = await _dpop_token(admin, key)
    url = ISSUER + ADMIN + "/clients"
    proof = key.proof(url, "GET", access_token=token)
    headers = {"authorization": f"DPoP {token}", "dpop": proof}
    assert (await admin.http.get(ADMIN + "/clients", headers=headers)).status_code == 200
    replay = await admin.http.get(ADMIN + "/clients", headers=headers)
    problem_of(replay, 401, "invalid_dpop_proof")


async def test_an_opaque_admin_token_is_accepted(admin: Admin) -> None:
    _, _, token = await admin.client_token("admin:clients", token_format="opaque")
    assert (await admin.call("GET", "/clients", token=token)).status_code == 200


async def test_the_admin_all_scope_grants_every_family(admin: Admin) -> None:
    _, _, token = await admin.client_token("admin:all")
    for path in ("/clients", "/merchants", "/api-keys", "/signing-keys"):
        assert (await admin.call("GET", path, token=token)).status_code == 200


async def test_the_merchant_api_admin_scope_grants_nothing_here(admin: Admin) -> None:
    """``admin`` is the scope merchants give their keys in the panel (the demo client has
    it too): it must not open the admin API."""
    _, _, token = await admin.client_token("read write admin")
    for path in ("/clients", "/merchants", "/signing-keys"):
        problem_of(await admin.call("GET", path, token=token), 403, "insufficient_scope")


async def test_a_refused_scope_is_audited(admin: Admin) -> None:
    cid, _, token = await admin.client_token("admin:users")
    await admin.call("GET", "/clients", token=token)
    (event,) = [e for e in await admin.events() if e.outcome == "failure"]
    assert (event.outcome, event.actor, event.details["reason"]) == (
        "failure",
        f"client:{cid}",
        "insufficient_scope",
    )


# -- one merchant's client and another merchant's objects ----------------------------------


@dataclass
class Tenants:
    admin: Admin
    mine: str
    theirs: str
    #: a token of merchant ``mine``'s client holding every admin scope
    token: str
    their_client: str
    their_user: str
    their_key: str


@pytest.fixture
async def tenants(admin: Admin) -> Tenants:
    mine = (await admin.call("POST", "/merchants", json={"name": "Mine"})).json()["merchant_id"]
    theirs = (await admin.call("POST", "/merchants", json={"name": "Theirs"})).json()
    theirs_id = theirs["merchant_id"]
    _, _, token = await admin.client_token(
        "admin:merchants admin:users admin:clients admin:keys admin:tokens admin:consents",
        merchant_id=mine,
    )
    client = await admin.call("POST", "/clients", json={"name": "x", "merchant_id": theirs_id})
    user = await admin.call(
        "POST",
        f"/merchants/{theirs_id}/users",
        json={"email": "bob@theirs.test", "password": "a long enough passphrase 42"},
    )
    key = await admin.call("POST", "/api-keys", json={"name": "k", "merchant_id": theirs_id})
    return Tenants(
        admin,
        mine,
        theirs_id,
        token,
        client.json()["client_id"],
        user.json()["user_id"],
        key.json()["key_id"],
    )


def _attacks(t: Tenants) -> list[tuple[str, str, Any]]:
    m, c, u, k = t.theirs, t.their_client, t.their_user, t.their_key
    return [
        ("GET", f"/merchants/{m}", None),
        ("POST", f"/merchants/{m}/disable", None),
        ("GET", f"/merchants/{m}/users", None),
        ("POST", f"/merchants/{m}/users", {"email": "e@x.test", "password": "p" * 20}),
        ("GET", f"/merchants/{m}/users/{u}", None),
        ("POST", f"/merchants/{m}/users/{u}/disable", None),
        ("GET", f"/clients/{c}", None),
        ("PATCH", f"/clients/{c}", {"name": "mine now"}),
        ("DELETE", f"/clients/{c}", None),
        ("POST", f"/clients/{c}/disable", None),
        ("POST", f"/clients/{c}/secret", {}),
        ("PUT", f"/clients/{c}/keys", {"jwks_uri": "https://evil.example/jwks"}),
        ("POST", f"/clients/{c}/revoke-tokens", None),
        ("POST", f"/merchants/{m}/revoke-tokens", None),
        ("GET", "/clients", None),
        ("POST", "/clients", {"name": "planted", "merchant_id": m}),
        ("POST", "/api-keys", {"name": "planted", "merchant_id": m}),
        ("POST", f"/api-keys/{k}/rotate", None),
        ("DELETE", f"/api-keys/{k}", None),
        ("GET", f"/merchants/{m}/authorized-apps", None),
        ("GET", f"/merchants/{m}/users/{u}/consents", None),
    ]


async def test_another_merchants_objects_are_unknown_to_a_merchants_client(
    tenants: Tenants,
) -> None:
    a = tenants.admin
    for method, path, body in _attacks(tenants):
        params = {"merchant_id": tenants.theirs} if (method, path) == ("GET", "/clients") else None
        r = await a.call(method, path, tenants.token, json=body, params=params)
        expected = (
            403
            if path.endswith("/disable") and "/merchants/" in path and "/users/" not in path
            else 404
        )
        assert r.status_code == expected, f"{method} {path}: {r.status_code} {r.text}"
    # nothing of theirs changed
    theirs = await a.call("GET", f"/clients/{tenants.their_client}")
    assert theirs.json()["name"] == "x" and theirs.json()["status"] == "active"
    assert (await a.call("GET", f"/merchants/{tenants.theirs}")).json()["status"] == "active"
    refused = [e for e in (await a.events()) if e.outcome == "failure"]
    assert len(refused) >= len(_attacks(tenants))


async def test_a_merchants_client_sees_and_makes_only_its_own(tenants: Tenants) -> None:
    a = tenants.admin
    made = await a.call("POST", "/clients", tenants.token, json={"name": "own"})
    assert made.status_code == 201 and made.json()["merchant_id"] == tenants.mine
    listed = await a.call("GET", "/clients", tenants.token)
    assert {c["merchant_id"] for c in listed.json()["items"]} == {tenants.mine}
    merchants = await a.call("GET", "/merchants", tenants.token)
    assert [m["merchant_id"] for m in merchants.json()["items"]] == [tenants.mine]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/merchants", {"name": "New"}),
        ("GET", "/signing-keys", None),
        ("POST", "/signing-keys/rotate", {}),
    ],
)
async def test_platform_operations_are_refused_to_a_merchants_client(
    tenants: Tenants, method: str, path: str, body: Any
) -> None:
    r = await tenants.admin.call(method, path, tenants.token, json=body)
    problem_of(r, 403, "platform_only")


async def test_a_client_cannot_grant_admin_scopes_it_lacks(tenants: Tenants) -> None:
    a = tenants.admin
    _, _, token = await a.client_token("admin:clients", merchant_id=tenants.mine)
    r = await a.call("POST", "/clients", token, json={"name": "up", "scope": "admin:keys"})
    problem_of(r, 403, "scope_escalation")
    r = await a.call("POST", "/clients", token, json={"name": "up", "scope": "admin:all"})
    problem_of(r, 403, "scope_escalation")
    own = await a.call("POST", "/clients", token, json={"name": "ok", "scope": "admin:clients"})
    assert own.status_code == 201
    patched = await a.call(
        "PATCH", f"/clients/{own.json()['client_id']}", token, json={"scope": "admin:tokens"}
    )
    problem_of(patched, 403, "scope_escalation")


# -- malformed requests --------------------------------------------------------------------


async def test_a_body_that_is_not_json_is_400(admin: Admin) -> None:
    r = await admin.call(
        "POST", "/merchants", content=b"{name:", headers={"content-type": "application/json"}
    )
    problem_of(r, 400, "malformed_json")


async def test_unknown_fields_are_422_naming_them(admin: Admin) -> None:
    r = await admin.call("POST", "/merchants", json={"name": "A", "owner": "me"})
    body = problem_of(r, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["owner"]


@pytest.mark.parametrize("limit", ["0", "201", "1000000", "many"])
async def test_a_page_size_out_of_range_is_422(admin: Admin, limit: str) -> None:
    r = await admin.call("GET", "/clients", params={"limit": limit})
    problem_of(r, 422, "validation_failed")


async def test_an_unknown_query_parameter_is_422(admin: Admin) -> None:
    r = await admin.call("GET", "/clients", params={"page_size": "5"})
    problem_of(r, 422, "validation_failed")


@pytest.mark.parametrize(
    ("content", "media", "status", "code"),
    [
        (b'{"name": "A"}', "text/plain", 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 422, "validation_failed"),
        (b'{"name": "' + b"a" * 70_000 + b'"}', "application/json", 413, "body_too_large"),
        (b'{"name": 5}', "application/json", 422, "validation_failed"),
        (b'{"name": ""}', "application/json", 422, "validation_failed"),
    ],
)
async def test_a_bad_body_is_refused_in_the_problem_dialect(
    admin: Admin, content: bytes, media: str, status: int, code: str
) -> None:
    r = await admin.call("POST", "/merchants", content=content, headers={"content-type": media})
    problem_of(r, status, code)


async def test_an_unknown_path_and_an_unknown_method_are_problems(admin: Admin) -> None:
    problem_of(await admin.call("GET", "/nothing/here"), 404, "not_found")
    r = await admin.call("PUT", "/merchants")
    problem_of(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"


async def test_a_revoked_admin_client_token_stops_working_at_once(admin: Admin) -> None:
    cid, secret, token = await admin.client_token("admin:clients")
    assert (await admin.call("GET", "/clients", token=token)).status_code == 200
    assert (await admin.call("POST", f"/clients/{cid}/disable")).status_code == 200
    problem_of(await admin.call("GET", "/clients", token=token), 401, "invalid_token")
    assert (await admin.h.token(cid, secret)).status_code == 401


async def test_a_scope_the_core_refuses_is_422_not_a_server_error(admin: Admin) -> None:
    r = await admin.call("POST", "/clients", json={"name": "x", "scope": "read\u0003write"})
    problem_of(r, 422, "validation_failed")


@pytest.mark.parametrize("path", ["/admin/v1/a%0Ab", "/admin/v1/clients/a%0A", "/admin/v1/%0A"])
async def test_a_newline_in_the_path_stays_in_the_api_and_its_error_dialect(
    admin: Admin, path: str
) -> None:
    r = await admin.h.http.get(path, headers={"authorization": f"Bearer {admin.token}"})
    assert r.status_code in (404, 405), r.text
    assert r.headers["content-type"] == "application/problem+json"
