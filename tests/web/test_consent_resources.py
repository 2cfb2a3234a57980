"""The consent resource over HTTP: lodging at ``/oauth/consents`` with the partner's own
token, authorizing by ``consent_id`` (query and PAR), the tokens it gives, consumption by
the resource server, revocation, expiry, and the races of parallel calls."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from tests.conftest import Harness
from tests.dpop import DpopKey
from tests.partner import ISSUER, Partner, make_partner, pkce_pair, query_of, sent_to
from tests.web.test_rich_authorization_requests import ACCOUNTS, PAYMENT, approve, claims_of

CONSENTS = "/oauth/consents"
GRANTS = ("authorization_code", "refresh_token", "client_credentials")


async def consent_partner(h: Harness, **spec: Any) -> Partner:
    """A partner app that may lodge consents (scope ``consents``, client credentials)."""
    spec.setdefault("scope", "read write consents")
    spec.setdefault("grant_types", GRANTS)
    return await make_partner(h, **spec)


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await consent_partner(harness)


async def own_token(p: Partner, scope: str = "consents") -> str:
    r = await p.h.token(p.app.client_id, p.secret, scope=scope)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def lodge(p: Partner, details: Any, token: str | None = None, **extra: Any) -> httpx.Response:
    bearer = token or await own_token(p)
    body = {"authorization_details": details} | extra
    return await p.http.post(CONSENTS, json=body, headers={"authorization": f"Bearer {bearer}"})


async def other_app(h: Harness) -> tuple[str, str]:
    """Another app that may lodge consents: its id and its own token."""
    client, secret = await h.client(scope="consents", name="another app")
    r = await h.token(client.client_id, secret)
    assert r.status_code == 200, r.text
    return client.client_id, str(r.json()["access_token"])


async def lodged(p: Partner, details: list[dict[str, Any]]) -> str:
    r = await lodge(p, details)
    assert r.status_code == 201, r.text
    return str(r.json()["consent_id"])


async def read(p: Partner, consent_id: str) -> dict[str, Any]:
    token = await own_token(p)
    r = await p.http.get(f"{CONSENTS}/{consent_id}", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def authorized_tokens(p: Partner, consent_id: str) -> dict[str, Any]:
    """Log in, approve the consent on the consent page, exchange the code."""
    verifier, challenge = pkce_pair()
    await p.login()
    page = await p.authorize(
        consent_id=consent_id, code_challenge=challenge, code_challenge_method="S256"
    )
    assert page.status_code == 200, page.text
    code = await approve(p, page)
    r = await p.exchange(code, code_verifier=verifier)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def consume(p: Partner, token: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    return await p.http.post(
        CONSENTS + "/consume", data={"token": token}, auth=auth or (p.app.client_id, p.secret)
    )


# -- lodging ------------------------------------------------------------------------------


async def test_a_lodged_consent_awaits_authorization_at_its_location(
    partner: Partner, harness: Harness
) -> None:
    r = await lodge(partner, [PAYMENT])
    assert r.status_code == 201, r.text
    body = r.json()
    now = int(harness.clock.now())
    assert re.fullmatch(r"[A-Za-z0-9_-]{26,}", body["consent_id"])
    assert r.headers["location"] == f"{CONSENTS}/{body['consent_id']}"
    assert body == {
        "consent_id": body["consent_id"],
        "status": "awaiting_authorization",
        "client_id": partner.app.client_id,
        "authorization_details": [PAYMENT],
        "created_at": now,
        "expires_at": now + 600,
        "status_updated_at": now,
    }
    assert await read(partner, body["consent_id"]) == body


async def test_expires_in_shortens_the_lifetime_but_never_lengthens_it(
    partner: Partner, harness: Harness
) -> None:
    now = int(harness.clock.now())
    assert (await lodge(partner, [PAYMENT], expires_in=60)).json()["expires_at"] == now + 60
    assert (await lodge(partner, [PAYMENT], expires_in=9999)).json()["expires_at"] == now + 600


async def test_a_consent_past_its_expiry_reads_expired(partner: Partner, harness: Harness) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    harness.clock.advance(601)
    assert (await read(partner, consent_id))["status"] == "expired"


async def test_a_partner_lodges_with_a_dpop_bound_token_and_its_proof(partner: Partner) -> None:
    key = DpopKey.generate()
    r = await partner.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "consents"},
        auth=(partner.app.client_id, partner.secret),
        headers={"dpop": key.proof()},
    )
    token = r.json()["access_token"]
    url = ISSUER + CONSENTS
    proof = key.proof(url, "POST", access_token=token)
    headers = {"authorization": f"DPoP {token}", "dpop": proof}
    r = await partner.http.post(
        CONSENTS, json={"authorization_details": [PAYMENT]}, headers=headers
    )
    assert r.status_code == 201, r.text
    stolen = {"authorization": f"Bearer {token}"}  # the token alone, without its key
    r = await partner.http.post(CONSENTS, json={"authorization_details": [PAYMENT]}, headers=stolen)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("no details", {}, 400, "invalid_request"),
    (
        "details not an array",
        {"authorization_details": PAYMENT},
        400,
        "invalid_authorization_details",
    ),
    ("an empty array", {"authorization_details": []}, 400, "invalid_authorization_details"),
    (
        "an unknown type",
        {"authorization_details": [{"type": "x"}]},
        400,
        "invalid_authorization_details",
    ),
    (
        "a bad IBAN",
        {
            "authorization_details": [
                dict(PAYMENT, creditorAccount={"iban": "DE00120300000000202051"})
            ]
        },
        400,
        "invalid_authorization_details",
    ),
    ("an unknown field", {"authorization_details": [PAYMENT], "amount": 1}, 400, "invalid_request"),
    (
        "expires_in zero",
        {"authorization_details": [PAYMENT], "expires_in": 0},
        400,
        "invalid_request",
    ),
    (
        "expires_in text",
        {"authorization_details": [PAYMENT], "expires_in": "60"},
        400,
        "invalid_request",
    ),
]


@pytest.mark.parametrize(("why", "body", "status", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_bad_lodging_request_is_refused(
    partner: Partner, why: str, body: dict[str, Any], status: int, error: str
) -> None:
    token = await own_token(partner)
    r = await partner.http.post(CONSENTS, json=body, headers={"authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()["error"]) == (status, error), why
    assert r.json()["error_description"]


async def test_a_type_the_app_may_not_use_is_refused_as_at_par(harness: Harness) -> None:
    p = await consent_partner(harness, authorization_details_types=("account_information",))
    r = await lodge(p, [PAYMENT])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_authorization_details")
    assert (await lodge(p, [ACCOUNTS])).status_code == 201


async def test_the_endpoints_need_the_partners_own_token_with_the_consents_scope(
    partner: Partner,
) -> None:
    r = await partner.http.post(CONSENTS, json={"authorization_details": [PAYMENT]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    r = await lodge(partner, [PAYMENT], token="not-a-token")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await lodge(partner, [PAYMENT], token=await own_token(partner, "read"))
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")
    # a token the user's authorization gave the app acts for the merchant, not the app
    user_token = (await partner.tokens(scope="read"))["access_token"]
    r = await lodge(partner, [PAYMENT], token=user_token)
    assert r.status_code == 401


async def test_another_apps_consent_is_not_found(partner: Partner, harness: Harness) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    _, token = await other_app(harness)
    for method in ("GET", "DELETE"):
        r = await partner.http.request(
            method, f"{CONSENTS}/{consent_id}", headers={"authorization": f"Bearer {token}"}
        )
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
    assert (await read(partner, consent_id))["status"] == "awaiting_authorization"


# -- authorizing --------------------------------------------------------------------------


async def test_a_payment_consent_is_authorized_once_and_its_tokens_carry_it(
    partner: Partner,
) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    await partner.login()
    page = await partner.authorize(consent_id=consent_id)
    assert "€1,234.50" in page.text and "Bäckerei Müller GmbH" in page.text
    code = await approve(partner, page)
    tokens = (await partner.exchange(code)).json()
    assert tokens["consent_id"] == consent_id
    assert tokens["authorization_details"] == [PAYMENT]
    assert "refresh_token" not in tokens  # one payment: nothing to refresh
    assert claims_of(tokens["access_token"])["consent_id"] == consent_id
    info = await partner.introspect(tokens["access_token"])
    assert info["active"] and info["consent_id"] == consent_id
    assert info["authorization_details"] == [PAYMENT]
    consent = await read(partner, consent_id)
    assert consent["status"] == "authorized"
    stored = await partner.h.ctx.consents.get(consent_id)
    assert stored is not None
    assert (stored.user_id, stored.merchant_id) == (
        partner.user.user_id,
        partner.merchant.merchant_id,
    )
    assert stored.approved_at is not None
    # authorized once: a second authorization request naming it is refused
    again = await partner.authorize(consent_id=consent_id)
    assert query_of(sent_to(again) or "")["error"] == "invalid_request"


async def test_a_consent_is_authorized_through_par_too(partner: Partner) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    r = await partner.http.post(
        "/oauth/par",
        data=partner.params(consent_id=consent_id),
        auth=(partner.app.client_id, partner.secret),
    )
    assert r.status_code == 201, r.text
    await partner.login()
    page = await partner.http.get(
        "/oauth/authorize",
        params={"client_id": partner.app.client_id, "request_uri": r.json()["request_uri"]},
    )
    assert "€1,234.50" in page.text
    code = await approve(partner, page)
    assert (await partner.exchange(code)).json()["consent_id"] == consent_id


async def test_a_decision_for_another_consent_than_shown_authorizes_nothing(
    partner: Partner,
) -> None:
    """The page showed 1,234.50 EUR; the form comes back naming the app's other consent,
    for 9,999.00: neither is authorized and no code is issued."""
    shown = await lodged(partner, [PAYMENT])
    bigger = dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "9999.00"})
    swapped = await lodged(partner, [bigger])
    await partner.login()
    page = await partner.authorize(consent_id=shown)
    assert "€1,234.50" in page.text
    r = await partner.decide(page, consent_id=swapped)
    assert sent_to(r) is None and "invalid_authorization_details" in r.text
    assert (await read(partner, shown))["status"] == "awaiting_authorization"
    assert (await read(partner, swapped))["status"] == "awaiting_authorization"


async def test_denying_rejects_the_consent(partner: Partner) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    await partner.login()
    page = await partner.authorize(consent_id=consent_id)
    r = await partner.decide(page, decision="deny")
    assert query_of(sent_to(r) or "")["error"] == "access_denied"
    assert (await read(partner, consent_id))["status"] == "rejected"


async def test_dont_ask_again_never_skips_a_consent(partner: Partner) -> None:
    await partner.login()
    page = await partner.authorize()
    await partner.decide(page, remember="yes")  # remembered for "read write"
    consent_id = await lodged(partner, [ACCOUNTS])
    page = await partner.authorize(consent_id=consent_id)
    assert page.status_code == 200 and 'action="/oauth/authorize/decision"' in page.text


async def _par_refusal(p: Partner, **params: str) -> str:
    r = await p.http.post("/oauth/par", data=p.params(**params), auth=(p.app.client_id, p.secret))
    assert r.status_code == 400, r.text
    return str(r.json()["error"])


async def test_an_authorization_request_naming_a_consent_it_may_not_use_is_refused(
    partner: Partner, harness: Harness
) -> None:
    mine = await lodged(partner, [PAYMENT])
    _, token = await other_app(harness)
    theirs = (await lodge(partner, [PAYMENT], token=token)).json()["consent_id"]
    expiring = (await lodge(partner, [PAYMENT], expires_in=10)).json()["consent_id"]
    harness.clock.advance(11)
    for why, params in [
        ("both", {"consent_id": mine, "authorization_details": json.dumps([PAYMENT])}),
        ("another app's", {"consent_id": theirs}),
        ("unknown", {"consent_id": "cns_nope"}),
        ("expired", {"consent_id": expiring}),
        ("not an id", {"consent_id": "a\x00b"}),
    ]:
        assert await _par_refusal(partner, **params) == "invalid_request", why
        await partner.login()
        r = await partner.authorize(**params)
        assert query_of(sent_to(r) or "")["error"] == "invalid_request", why


async def test_of_two_parallel_approvals_of_one_consent_one_gets_a_code(
    harness_any: Harness,
) -> None:
    partner = await consent_partner(harness_any)
    consent_id = await lodged(partner, [PAYMENT])
    await partner.login()
    first = await partner.authorize(consent_id=consent_id)
    second = await partner.authorize(consent_id=consent_id)
    decisions = await asyncio.gather(partner.decide(first), partner.decide(second))
    outcomes = sorted(query_of(sent_to(r) or "").get("error", "code") for r in decisions)
    assert outcomes == ["code", "invalid_request"]


# -- consuming ----------------------------------------------------------------------------


async def test_consuming_a_payment_ends_the_consent_and_its_tokens(partner: Partner) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    tokens = await authorized_tokens(partner, consent_id)
    r = await consume(partner, tokens["access_token"])
    assert r.status_code == 200, r.text
    assert r.json() == {
        "consent_id": consent_id,
        "status": "consumed",
        "authorization_details": [PAYMENT],
        "client_id": partner.app.client_id,
    }
    assert await partner.introspect(tokens["access_token"]) == {"active": False}
    assert (await read(partner, consent_id))["status"] == "consumed"
    # revoked through the ordinary path too: the revocation bound of JWTs applies
    jti = claims_of(tokens["access_token"])["jti"]
    stored = await partner.h.ctx.store.find_access_token_by_jti(jti)
    assert stored is not None and stored.revoked_at is not None
    r = await consume(partner, tokens["access_token"])
    assert r.status_code == 409
    assert (r.json()["error"], r.json()["status"]) == ("consent_not_active", "consumed")


async def test_consume_refuses_what_is_not_an_active_single_use_consent(
    partner: Partner, harness: Harness
) -> None:
    r = await consume(partner, "not-a-token")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    plain = (await partner.tokens(scope="read"))["access_token"]
    r = await consume(partner, plain)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    accounts = await authorized_tokens(partner, await lodged(partner, [ACCOUNTS]))
    r = await consume(partner, accounts["access_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert "not a single-use consent" in r.json()["error_description"]
    # another client without the introspection scope may not see the token
    stranger, secret = await harness.client(scope="read")
    payment = await authorized_tokens(partner, await lodged(partner, [PAYMENT]))
    r = await consume(partner, payment["access_token"], auth=(stranger.client_id, secret))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    r = await partner.http.post(CONSENTS + "/consume", data={"token": payment["access_token"]})
    assert r.status_code == 401  # no client authentication, as at /oauth/introspect


async def test_a_resource_server_with_the_introspection_scope_consumes(
    partner: Partner, harness: Harness
) -> None:
    api, secret = await harness.client(scope="introspection")
    tokens = await authorized_tokens(partner, await lodged(partner, [PAYMENT]))
    r = await consume(partner, tokens["access_token"], auth=(api.client_id, secret))
    assert r.status_code == 200 and r.json()["status"] == "consumed"


async def test_an_expired_token_is_invalid_for_consume(partner: Partner, harness: Harness) -> None:
    tokens = await authorized_tokens(partner, await lodged(partner, [PAYMENT]))
    harness.clock.advance(tokens["expires_in"] + 1)
    r = await consume(partner, tokens["access_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")


async def test_of_parallel_consumptions_of_one_consent_exactly_one_succeeds(
    harness_any: Harness,
) -> None:
    p = await consent_partner(harness_any)
    tokens = await authorized_tokens(p, await lodged(p, [PAYMENT]))
    results = await asyncio.gather(*(consume(p, tokens["access_token"]) for _ in range(8)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [409] * 7, [r.text for r in results]
    assert {r.json()["status"] for r in results if r.status_code == 409} == {"consumed"}


# -- revoking and expiry ------------------------------------------------------------------


async def test_the_partner_revokes_an_account_consent_and_its_tokens_stop(
    harness: Harness,
) -> None:
    p = await consent_partner(harness, token_format="opaque")
    consent_id = await lodged(p, [ACCOUNTS])
    tokens = await authorized_tokens(p, consent_id)
    assert "refresh_token" in tokens  # account access is not single-use
    assert (await p.introspect(tokens["refresh_token"]))["consent_id"] == consent_id
    info = await p.introspect(tokens["access_token"])
    assert info["active"] and info["consent_id"] == consent_id
    token = await own_token(p)
    r = await p.http.delete(
        f"{CONSENTS}/{consent_id}", headers={"authorization": f"Bearer {token}"}
    )
    assert r.status_code == 204
    assert (await read(p, consent_id))["status"] == "revoked"
    assert await p.introspect(tokens["access_token"]) == {"active": False}
    assert (await p.introspect(tokens["refresh_token"]))["active"] is False
    assert (await p.refresh(tokens["refresh_token"])).status_code == 400
    r = await consume(p, tokens["access_token"])
    assert r.status_code == 400  # account access: not single-use


async def test_a_consent_revoked_before_its_code_is_exchanged_gives_no_tokens(
    partner: Partner,
) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    await partner.login()
    code = await approve(partner, await partner.authorize(consent_id=consent_id))
    token = await own_token(partner)
    await partner.http.delete(
        f"{CONSENTS}/{consent_id}", headers={"authorization": f"Bearer {token}"}
    )
    r = await partner.exchange(code)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


async def test_revoking_a_consumed_consent_is_a_conflict(partner: Partner) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    tokens = await authorized_tokens(partner, consent_id)
    assert (await consume(partner, tokens["access_token"])).status_code == 200
    token = await own_token(partner)
    r = await partner.http.delete(
        f"{CONSENTS}/{consent_id}", headers={"authorization": f"Bearer {token}"}
    )
    assert r.status_code == 409 and r.json()["status"] == "consumed"


async def test_the_tokens_of_an_expired_consent_are_inactive(
    partner: Partner, harness: Harness
) -> None:
    consent_id = await lodged(partner, [ACCOUNTS])
    tokens = await authorized_tokens(partner, consent_id)
    stored = await harness.ctx.consents.get(consent_id)
    assert stored is not None
    harness.clock.advance(stored.expires_at - harness.clock.now())
    assert (await read(partner, consent_id))["status"] == "expired"
    assert (await partner.introspect(tokens["access_token"]))["active"] is False


async def test_a_refreshed_token_still_carries_its_consent(partner: Partner) -> None:
    consent_id = await lodged(partner, [ACCOUNTS])
    tokens = await authorized_tokens(partner, consent_id)
    r = await partner.refresh(tokens["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.json()["consent_id"] == consent_id
    assert claims_of(r.json()["access_token"])["consent_id"] == consent_id


async def test_the_openapi_document_describes_the_consent_endpoints(harness: Harness) -> None:
    paths = (await harness.http.get("/openapi.json")).json()["paths"]
    assert set(paths[CONSENTS]) == {"post"}
    assert set(paths[CONSENTS + "/{consent_id}"]) == {"parameters", "get", "delete"}
    assert "409" in paths[CONSENTS + "/consume"]["post"]["responses"]
    names = {p["name"] for p in paths["/oauth/authorize"]["get"]["parameters"]}
    assert "consent_id" in names


async def test_the_token_request_cannot_change_a_consented_payment(partner: Partner) -> None:
    consent_id = await lodged(partner, [PAYMENT])
    await partner.login()
    code = await approve(partner, await partner.authorize(consent_id=consent_id))
    for changed in (
        dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "9999.00"}),
        dict(PAYMENT, creditorName="Mallory Ltd"),
    ):
        r = await partner.exchange(code, authorization_details=json.dumps([changed]))
        assert (r.status_code, r.json()["error"]) == (400, "invalid_authorization_details")
    r = await partner.exchange(code)
    assert r.status_code == 200 and r.json()["authorization_details"] == [PAYMENT]
