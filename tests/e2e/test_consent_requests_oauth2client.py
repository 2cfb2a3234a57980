"""Consents lodged in advance, end to end with an independent client: requests-oauth2client
gets the partner's own token (scope ``consents``, Bearer or DPoP), lodges a payment at
``POST /oauth/consents``, pushes the authorization request with ``consent_id`` (PAR,
PKCE), a person approves it on the consent page of a real ``tokensmith serve`` (plain
HTTP), and the code gives a token of that consent; the API side spends it with
``tokensmith.resource``'s ``consume``, once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import requests_oauth2client as roc

from tests.e2e.conftest import Server
from tests.integration.live import form
from tests.partner import sent_to
from tokensmith.client import TokenClient
from tokensmith.resource import ConsentNotActive, SyncTokenValidator

pytestmark = pytest.mark.e2e

EMAIL = "consents@roasters.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/consent-callback"
PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "120.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}
ACCOUNTS = {"type": "account_information", "actions": ["read_balances"]}


@pytest.fixture(scope="module")
def apps(server: Server) -> dict[str, tuple[str, str]]:
    """The partner app, and the payments API's own client (it spends consents)."""
    server.merchant_admin("Consent Test Roasters", EMAIL, PASSWORD)
    app = ["--grant-type", "authorization_code", "--grant-type", "client_credentials"]
    app += ["--redirect-uri", REDIRECT, "--scope", "write consents", "--name", "Consent app"]
    partner, api = server.clients(app, ["--name", "Consent API", "--scope", "introspection"])
    server.secrets_seen.extend([partner[1], api[1]])
    return {"partner": partner, "api": api}


def oauth_client(server: Server, creds: tuple[str, str]) -> roc.OAuth2Client:
    return roc.OAuth2Client.from_discovery_endpoint(
        server.base_url + "/.well-known/oauth-authorization-server",
        issuer=server.base_url,
        auth=roc.ClientSecretBasic(*creds),
        redirect_uri=REDIRECT,
        testing=True,
    )


def validator(server: Server, api: tuple[str, str]) -> SyncTokenValidator:
    return SyncTokenValidator(
        server.base_url, server.base_url, client_id=api[0], client_secret=api[1]
    )


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as b:
        yield b


def lodge(server: Server, client: roc.OAuth2Client, details: list[Any], dpop: bool = False) -> Any:
    """``POST /oauth/consents`` with the partner's own token, as requests sends it."""
    token = client.client_credentials(scope="consents", dpop=dpop)
    server.secrets_seen.append(token.access_token)
    r = requests.post(
        server.base_url + "/oauth/consents",
        json={"authorization_details": details, "expires_in": 600},
        auth=token,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


def consent_of(server: Server, client: roc.OAuth2Client, consent_id: str) -> Any:
    token = client.client_credentials(scope="consents")
    r = requests.get(f"{server.base_url}/oauth/consents/{consent_id}", auth=token, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def decide(browser: httpx.Client, url: str, decision: str, shown: str) -> str:
    """Log in, read ``shown`` on the consent page, decide; where the browser lands."""
    r = browser.get(url, headers={"accept-language": "en-US"})
    if r.status_code == 200 and 'action="/login"' in r.text:
        login = form(r.text, "/login")["fields"] | {"email": EMAIL, "password": PASSWORD}
        onward = sent_to(browser.post("/login", data=login))
        assert onward is not None
        r = browser.get(onward, headers={"accept-language": "en-US"})
    assert shown in r.text, r.text[:800]
    fields = form(r.text, "/oauth/authorize/decision")["fields"]
    fields.pop("remember", None)
    landing = sent_to(
        browser.post("/oauth/authorize/decision", data=fields | {"decision": decision})
    )
    assert landing is not None
    return landing


def authorized_token(
    server: Server, client: roc.OAuth2Client, browser: httpx.Client, consent: Any, shown: str
) -> roc.BearerToken:
    request = client.authorization_request(scope="write", consent_id=consent["consent_id"])
    pushed = client.pushed_authorization_request(request)
    landing = decide(browser, pushed.uri, "allow", shown)
    token = client.authorization_code(request.validate_callback(landing))
    server.secrets_seen.append(token.access_token)
    return token


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_a_lodged_payment_is_approved_and_spent_once(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client, dpop: bool
) -> None:
    client = oauth_client(server, apps["partner"])
    consent = lodge(server, client, [PAYMENT], dpop=dpop)
    assert consent["status"] == "awaiting_authorization"
    assert consent["client_id"] == apps["partner"][0]
    assert consent["authorization_details"] == [PAYMENT]
    assert {"created_at", "expires_at", "status_updated_at"} <= set(consent)

    token = authorized_token(server, client, browser, consent, "\u20ac120.00")
    assert token.refresh_token is None  # a payment: nothing to refresh
    assert token.kwargs["authorization_details"] == [PAYMENT]
    seen = client.introspect_token(token.access_token)
    assert seen["consent_id"] == consent["consent_id"]
    assert consent_of(server, client, consent["consent_id"])["status"] == "authorized"

    api = validator(server, apps["api"])
    assert api.validate(token.access_token).claims["consent_id"] == consent["consent_id"]
    spent = api.consume(token.access_token)
    assert spent == {
        "consent_id": consent["consent_id"],
        "status": "consumed",
        "authorization_details": [PAYMENT],
        "client_id": apps["partner"][0],
    }
    with pytest.raises(ConsentNotActive) as again:
        api.consume(token.access_token)
    assert again.value.consent_status == "consumed"
    assert consent_of(server, client, consent["consent_id"])["status"] == "consumed"


def test_the_consume_endpoint_answers_409_once_spent(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client
) -> None:
    client = oauth_client(server, apps["partner"])
    consent = lodge(server, client, [PAYMENT])
    token = authorized_token(server, client, browser, consent, "Merchant A")
    url = server.base_url + "/oauth/consents/consume"
    first = httpx.post(url, data={"token": token.access_token}, auth=apps["api"])
    assert first.status_code == 200 and first.json()["status"] == "consumed"
    second = httpx.post(url, data={"token": token.access_token}, auth=apps["api"])
    assert second.status_code == 409
    assert second.json()["error"] == "consent_not_active"
    assert second.json()["status"] == "consumed"
    bad = httpx.post(url, data={"token": "not-a-token"}, auth=apps["api"])
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_token"


def test_a_revoked_consent_cannot_be_spent(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client
) -> None:
    client = oauth_client(server, apps["partner"])
    consent = lodge(server, client, [PAYMENT])
    token = authorized_token(server, client, browser, consent, "Merchant A")
    own = client.client_credentials(scope="consents")
    gone = requests.delete(
        f"{server.base_url}/oauth/consents/{consent['consent_id']}", auth=own, timeout=30
    )
    assert gone.status_code == 204
    with pytest.raises(ConsentNotActive) as refused:
        validator(server, apps["api"]).consume(token.access_token)
    assert refused.value.consent_status == "revoked"


def test_a_denied_consent_is_rejected(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client
) -> None:
    client = oauth_client(server, apps["partner"])
    consent = lodge(server, client, [PAYMENT])
    request = client.authorization_request(scope="write", consent_id=consent["consent_id"])
    pushed = client.pushed_authorization_request(request)
    landing = decide(browser, pushed.uri, "deny", "Merchant A")
    with pytest.raises(roc.AuthorizationResponseError):
        request.validate_callback(landing)
    assert consent_of(server, client, consent["consent_id"])["status"] == "rejected"


def test_account_access_is_not_spent_by_a_payment_guard(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client
) -> None:
    """Account information is not single-use: consume refuses it (400 invalid_request),
    and the guard answers 403."""
    client = oauth_client(server, apps["partner"])
    consent = lodge(server, client, [ACCOUNTS])
    token = authorized_token(server, client, browser, consent, "balances")
    with pytest.raises(ConsentNotActive) as refused:
        validator(server, apps["api"]).consume(token.access_token)
    assert refused.value.consent_status is None
    assert "single-use" in refused.value.description


def test_a_token_without_the_consents_scope_cannot_lodge(
    server: Server, apps: dict[str, tuple[str, str]]
) -> None:
    token = oauth_client(server, apps["partner"]).client_credentials(scope="write")
    r = requests.post(
        server.base_url + "/oauth/consents",
        json={"authorization_details": [PAYMENT]},
        auth=token,
        timeout=30,
    )
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_tokensmith_client_lodges_and_reads_against_the_real_server(
    server: Server, apps: dict[str, tuple[str, str]], dpop: bool
) -> None:
    with TokenClient.from_issuer(server.base_url, *apps["partner"], dpop=dpop) as tc:
        consent = tc.create_consent([PAYMENT], expires_in=300)
        assert consent.status == "awaiting_authorization"
        assert tc.get_consent(consent.consent_id).authorization_details == (PAYMENT,)
        tc.revoke_consent(consent.consent_id)
        assert tc.get_consent(consent.consent_id).status == "revoked"
