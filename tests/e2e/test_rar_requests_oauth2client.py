"""Rich authorization requests (RFC 9396) end to end: requests-oauth2client, an
independent client library, pushes a payment (PAR, PKCE), a person approves it on the
consent page of a real ``tokensmith serve`` on a loopback port, and the tokens, the
refresh and introspection carry it; client_credentials asks for account access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests_oauth2client as roc

from tests.e2e.conftest import Server
from tests.integration.live import form
from tests.partner import sent_to

pytestmark = pytest.mark.e2e

EMAIL = "rar@roasters.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/rar-callback"

PAYMENT = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "instructedAmount": {"currency": "EUR", "amount": "1234.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}
ACCOUNTS = {"type": "account_information", "actions": ["read_balances"]}


def _user(server: Server) -> None:
    server.merchant_admin("RAR Test Roasters", EMAIL, PASSWORD)


@pytest.fixture(scope="module")
def app(server: Server) -> tuple[str, str]:
    _user(server)
    spec = ["--grant-type", "authorization_code", "--grant-type", "refresh_token"]
    spec += ["--grant-type", "client_credentials", "--redirect-uri", REDIRECT]
    return server.client(*spec, "--scope", "read write", "--name", "RAR app")


def oauth_client(server: Server, creds: tuple[str, str]) -> roc.OAuth2Client:
    return roc.OAuth2Client.from_discovery_endpoint(
        server.base_url + "/.well-known/oauth-authorization-server",
        issuer=server.base_url,
        auth=roc.ClientSecretBasic(*creds),
        redirect_uri=REDIRECT,
        testing=True,
    )


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as b:
        yield b


def approve(browser: httpx.Client, url: str) -> str:
    r = browser.get(url, headers={"accept-language": "de-DE"})
    if r.status_code == 200 and 'action="/login"' in r.text:
        login = form(r.text, "/login")["fields"] | {"email": EMAIL, "password": PASSWORD}
        onward = sent_to(browser.post("/login", data=login))
        assert onward is not None
        r = browser.get(onward, headers={"accept-language": "de-DE"})
    assert "1.234,50\xa0€" in r.text and "Merchant A" in r.text, r.text[:800]
    fields = form(r.text, "/oauth/authorize/decision")["fields"]
    fields.pop("remember", None)
    landing = sent_to(
        browser.post("/oauth/authorize/decision", data=fields | {"decision": "allow"})
    )
    assert landing is not None
    return landing


def details_of(token: roc.BearerToken) -> Any:
    return token.kwargs["authorization_details"]


def test_discovery_lists_the_types(server: Server) -> None:
    meta = httpx.get(server.base_url + "/.well-known/oauth-authorization-server").json()
    assert meta["authorization_details_types_supported"] == [
        "account_information",
        "payment_initiation",
    ]


def test_a_pushed_payment_is_approved_and_carried(
    server: Server, app: tuple[str, str], browser: httpx.Client
) -> None:
    server.secrets_seen.append(app[1])
    client = oauth_client(server, app)
    request = client.authorization_request(
        scope="write", authorization_details=json.dumps([PAYMENT])
    )
    pushed = client.pushed_authorization_request(request)
    token = client.authorization_code(request.validate_callback(approve(browser, pushed.uri)))
    server.secrets_seen.extend([token.access_token, str(token.refresh_token)])
    assert details_of(token) == [PAYMENT]
    assert client.introspect_token(token.access_token)["authorization_details"] == [PAYMENT]
    refreshed = client.refresh_token(token.refresh_token)
    server.secrets_seen.extend([refreshed.access_token, str(refreshed.refresh_token)])
    assert details_of(refreshed) == [PAYMENT]


def test_client_credentials_carry_account_access(server: Server, app: tuple[str, str]) -> None:
    client = oauth_client(server, app)
    token = client.client_credentials(scope="read", authorization_details=json.dumps([ACCOUNTS]))
    server.secrets_seen.append(token.access_token)
    assert details_of(token) == [ACCOUNTS]


def test_an_unknown_type_is_refused(server: Server, app: tuple[str, str]) -> None:
    client = oauth_client(server, app)
    with pytest.raises(roc.EndpointError) as info:
        client.client_credentials(scope="read", authorization_details='[{"type":"wire"}]')
    assert info.value.error == "invalid_authorization_details"
