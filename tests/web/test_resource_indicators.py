"""Resource indicators (RFC 8707) at the endpoints, in process: ``resource`` at the
authorization endpoint, the PAR endpoint, the consent page and the token endpoint (each
grant), audience-restricted tokens, and introspection's ``aud``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from tests.conftest import Harness
from tests.partner import (
    REDIRECT,
    Partner,
    hidden_fields,
    make_partner,
    pkce_pair,
    query_of,
    sent_to,
)
from tokensmith.core.models import Resource

PAYMENTS = Resource("https://payments.example/api", "Payments API", ("read", "payments:refund"))
LEDGER = Resource("https://ledger.example/", "Ledger", ("write",), access_token_ttl=300)
REPORTS = Resource("urn:example:reports", "Reports", ("read",), token_format="opaque")
DEFAULT_AUDIENCE = "https://auth.example.test"


async def post_form(
    http: httpx.AsyncClient, url: str, pairs: list[tuple[str, str]], auth: tuple[str, str]
) -> httpx.Response:
    """A form with repeated parameters (httpx's ``data`` takes a mapping)."""
    return await http.post(
        url,
        content=urlencode(pairs),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    for r in (PAYMENTS, LEDGER, REPORTS):
        await harness.ctx.store.add_resource(r)
    return await make_partner(harness)


async def _authorize(p: Partner, resources: list[str], **extra: str) -> httpx.Response:
    """``GET /oauth/authorize`` with ``resource`` repeated, after a login."""
    params = list(p.params(**extra).items()) + [("resource", r) for r in resources]
    r = await p.http.get("/oauth/authorize", params=params)
    if r.status_code == 200 and 'action="/login"' in r.text:
        await p.login()
        r = await p.http.get("/oauth/authorize", params=params)
    return r


async def _code(p: Partner, page: httpx.Response) -> str:
    assert page.status_code == 200, page.text[:300]
    r = await p.decide(page)
    destination = sent_to(r)
    assert destination is not None
    return query_of(destination)["code"]


async def _tokens(p: Partner, resources: list[str], **form: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    page = await _authorize(p, resources, code_challenge=challenge, code_challenge_method="S256")
    r = await p.exchange(await _code(p, page), code_verifier=verifier, **form)
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- the authorization endpoint and the consent page ---------------------------------------


async def test_the_consent_page_names_the_resources_and_carries_them(partner: Partner) -> None:
    page = await _authorize(partner, [PAYMENTS.identifier, LEDGER.identifier])
    assert page.status_code == 200
    assert "Payments API" in page.text and "Ledger" in page.text
    assert hidden_fields(page.text)["resource"] == f"{PAYMENTS.identifier} {LEDGER.identifier}"


async def test_a_code_for_resources_gives_a_token_for_them(partner: Partner) -> None:
    tokens = await _tokens(partner, [PAYMENTS.identifier, LEDGER.identifier])
    claims = claims_of(tokens["access_token"])
    assert claims["aud"] == [PAYMENTS.identifier, LEDGER.identifier]
    assert claims["scope"] == "read write"
    assert tokens["expires_in"] == 300  # the ledger's lifetime, the shorter
    body = await partner.introspect(tokens["access_token"])
    assert body["aud"] == [PAYMENTS.identifier, LEDGER.identifier]


async def test_a_code_exchange_may_name_one_of_the_resources(partner: Partner) -> None:
    tokens = await _tokens(
        partner, [PAYMENTS.identifier, LEDGER.identifier], resource=PAYMENTS.identifier
    )
    claims = claims_of(tokens["access_token"])
    assert claims["aud"] == PAYMENTS.identifier and claims["scope"] == "read"


async def test_a_refresh_downscopes_to_one_granted_resource(partner: Partner) -> None:
    tokens = await _tokens(partner, [PAYMENTS.identifier, LEDGER.identifier])
    r = await partner.refresh(tokens["refresh_token"], resource=LEDGER.identifier)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["aud"] == LEDGER.identifier and claims["scope"] == "write"
    assert r.json()["expires_in"] == 300
    r = await partner.refresh(r.json()["refresh_token"])  # without resource: all granted
    assert claims_of(r.json()["access_token"])["aud"] == [PAYMENTS.identifier, LEDGER.identifier]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"resource": REPORTS.identifier}, "invalid_target"),
        ({"resource": "https://unknown.example/"}, "invalid_target"),
        ({"resource": "payments"}, "invalid_target"),
        ({"resource": PAYMENTS.identifier + "#x"}, "invalid_target"),
        ({"resource": PAYMENTS.identifier, "scope": "write"}, "invalid_scope"),
    ],
    ids=["not-granted", "unknown", "relative", "fragment", "scope-not-of-the-resource"],
)
async def test_a_refresh_outside_the_grant_is_refused_and_spends_nothing(
    partner: Partner, form: dict[str, str], error: str
) -> None:
    tokens = await _tokens(partner, [PAYMENTS.identifier, LEDGER.identifier])
    r = await partner.refresh(tokens["refresh_token"], **form)
    assert (r.status_code, r.json()["error"]) == (400, error), r.text
    assert (await partner.refresh(tokens["refresh_token"])).status_code == 200


async def test_without_resource_the_flow_is_unchanged(partner: Partner) -> None:
    tokens = await partner.tokens()
    assert claims_of(tokens["access_token"])["aud"] == DEFAULT_AUDIENCE
    r = await partner.refresh(tokens["refresh_token"], resource=REPORTS.identifier)
    # a grant that named no resource may be narrowed to a registered one
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer" and r.json()["access_token"].count(".") == 0
    body = await partner.introspect(r.json()["access_token"])
    assert body["aud"] == REPORTS.identifier and body["scope"] == "read"


@pytest.mark.parametrize(
    ("resources", "extra", "error"),
    [
        (["https://unknown.example/"], {}, "invalid_target"),
        (["/api"], {}, "invalid_target"),
        (["payments.example/api"], {}, "invalid_target"),
        ([PAYMENTS.identifier + "#frag"], {}, "invalid_target"),
        ([PAYMENTS.identifier], {"scope": "read write"}, "invalid_scope"),
        ([LEDGER.identifier], {"scope": "read"}, "invalid_scope"),
    ],
    ids=["unknown", "relative", "no-scheme", "fragment", "scope-of-no-resource", "other-scope"],
)
async def test_a_bad_resource_is_redirected_as_the_rfc_says(
    partner: Partner, resources: list[str], extra: dict[str, str], error: str
) -> None:
    r = await _authorize(partner, resources, **extra)
    assert r.status_code == 303, r.text[:300]
    q = query_of(r.headers["location"])
    assert q["error"] == error and q["state"] == "st-123"


async def test_a_client_without_a_scope_of_the_resource_is_invalid_target(
    harness: Harness,
) -> None:
    await harness.ctx.store.add_resource(LEDGER)
    p = await make_partner(harness, scope="read")
    r = await _authorize(p, [LEDGER.identifier], scope="")
    q = query_of(r.headers["location"])
    assert q["error"] == "invalid_target"


# -- PAR --------------------------------------------------------------------------------------


async def test_a_pushed_request_keeps_its_resources(partner: Partner) -> None:
    verifier, challenge = pkce_pair()
    form = partner.params(code_challenge=challenge, code_challenge_method="S256")
    data = [*form.items(), ("resource", PAYMENTS.identifier), ("resource", LEDGER.identifier)]
    auth = (partner.app.client_id, partner.secret)
    r = await post_form(partner.http, "/oauth/par", data, auth)
    assert r.status_code == 201, r.text
    await partner.login()
    page = await partner.http.get(
        "/oauth/authorize",
        params={"client_id": partner.app.client_id, "request_uri": r.json()["request_uri"]},
    )
    assert "Payments API" in page.text and "Ledger" in page.text
    assert "resource" not in hidden_fields(page.text)  # it was pushed
    token = await partner.exchange(await _code(partner, page), code_verifier=verifier)
    aud = claims_of(token.json()["access_token"])["aud"]
    assert aud == [PAYMENTS.identifier, LEDGER.identifier]


@pytest.mark.parametrize(
    "resource",
    ["https://unknown.example/", "relative", PAYMENTS.identifier + "#f"],
    ids=["unknown", "relative", "fragment"],
)
async def test_a_push_with_a_bad_resource_is_invalid_target(
    partner: Partner, resource: str
) -> None:
    r = await partner.http.post(
        "/oauth/par",
        data=partner.params(resource=resource),
        auth=(partner.app.client_id, partner.secret),
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_target")


# -- client credentials -----------------------------------------------------------------------


async def test_client_credentials_for_resources(partner: Partner) -> None:
    h = partner.h
    client, secret = await h.client(scope="read write")
    pairs = [
        ("grant_type", "client_credentials"),
        ("resource", PAYMENTS.identifier),
        ("resource", LEDGER.identifier),
    ]
    r = await post_form(h.http, "/oauth/token", pairs, (client.client_id, secret))
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["aud"] == [PAYMENTS.identifier, LEDGER.identifier]
    r = await h.token(client.client_id, secret, resource=PAYMENTS.identifier)
    assert claims_of(r.json()["access_token"])["aud"] == PAYMENTS.identifier
    assert r.json()["scope"] == "read"
    r = await h.token(client.client_id, secret)
    assert claims_of(r.json()["access_token"])["aud"] == DEFAULT_AUDIENCE


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"resource": "https://unknown.example/"}, "invalid_target"),
        ({"resource": "api"}, "invalid_target"),
        ({"resource": PAYMENTS.identifier + "#x"}, "invalid_target"),
        ({"resource": PAYMENTS.identifier, "scope": "write"}, "invalid_scope"),
        ({"resource": f"{PAYMENTS.identifier} relative"}, "invalid_target"),
    ],
    ids=["unknown", "relative", "fragment", "scope-not-of-the-resource", "one-bad-of-two"],
)
async def test_client_credentials_refuses_a_bad_resource(
    partner: Partner, form: dict[str, str], error: str
) -> None:
    client, secret = await partner.h.client(scope="read write")
    r = await partner.h.token(client.client_id, secret, **form)
    assert (r.status_code, r.json()["error"]) == (400, error), r.text


async def test_only_resource_may_repeat_in_a_form(partner: Partner) -> None:
    client, secret = await partner.h.client()
    pairs = [("grant_type", "client_credentials"), ("scope", "read"), ("scope", "write")]
    r = await post_form(partner.h.http, "/oauth/token", pairs, (client.client_id, secret))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


async def test_a_client_without_a_scope_of_the_resource_gets_no_token(partner: Partner) -> None:
    client, secret = await partner.h.client(scope="read")
    r = await partner.h.token(client.client_id, secret, resource=LEDGER.identifier)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_target")


async def test_introspection_of_an_opaque_resource_token_returns_its_aud(
    partner: Partner,
) -> None:
    client, secret = await partner.h.client(scope="read")
    r = await partner.h.token(client.client_id, secret, resource=REPORTS.identifier)
    token = r.json()["access_token"]
    assert token.count(".") == 0
    r = await partner.h.http.post(
        "/oauth/introspect", data={"token": token}, auth=(client.client_id, secret)
    )
    assert r.json()["active"] is True and r.json()["aud"] == REPORTS.identifier


async def test_the_redirect_uri_of_the_flow_is_the_partners(partner: Partner) -> None:
    assert partner.params()["redirect_uri"] == REDIRECT
