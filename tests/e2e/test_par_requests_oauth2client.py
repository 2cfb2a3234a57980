"""Pushed authorization requests (RFC 9126) end to end: requests-oauth2client, an
independent client library, discovers the PAR endpoint, pushes its request (PKCE S256,
state) with each client authentication method, and redeems the code after a login and a
consent driven with plain HTTP against a real ``tokensmith serve`` on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests_oauth2client as roc

from tests.e2e.conftest import Server
from tests.integration.live import form
from tests.partner import sent_to

pytestmark = pytest.mark.e2e

EMAIL = "par@roasters.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/par-callback"


def _user(server: Server) -> None:
    server.merchant_admin("PAR Test Roasters", EMAIL, PASSWORD)


@pytest.fixture(scope="module")
def apps(server: Server) -> dict[str, tuple[str, str]]:
    """A partner app free to choose, and one that must push (``--require-par``)."""
    _user(server)
    partner = ["--grant-type", "authorization_code", "--grant-type", "refresh_token"]
    partner += ["--redirect-uri", REDIRECT, "--scope", "read write", "--name"]
    free, strict = server.clients([*partner, "PAR free"], [*partner, "PAR strict", "--require-par"])
    return {"free": free, "strict": strict}


def oauth_client(server: Server, creds: tuple[str, str], method: str) -> roc.OAuth2Client:
    auth: Any = roc.ClientSecretBasic(*creds) if method == "basic" else roc.ClientSecretPost(*creds)
    return roc.OAuth2Client.from_discovery_endpoint(
        server.base_url + "/.well-known/oauth-authorization-server",
        issuer=server.base_url,
        auth=auth,
        redirect_uri=REDIRECT,
        testing=True,  # the loopback server speaks http
    )


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as b:
        yield b


def approve(browser: httpx.Client, url: str) -> str:
    """Log in and allow, as a person would; return where the browser lands."""
    r = browser.get(url)
    if r.status_code == 200 and 'action="/login"' in r.text:
        login = form(r.text, "/login")["fields"] | {"email": EMAIL, "password": PASSWORD}
        onward = sent_to(browser.post("/login", data=login))
        assert onward is not None
        r = browser.get(onward)
    assert r.status_code == 200 and 'action="/oauth/authorize/decision"' in r.text, r.text[:500]
    fields = form(r.text, "/oauth/authorize/decision")["fields"]
    fields.pop("remember", None)  # "don't ask again" unticked: each test sees the page
    assert set(fields) == {"csrf_token", "client_id", "request_uri"}  # the rest was pushed
    landing = sent_to(
        browser.post("/oauth/authorize/decision", data=fields | {"decision": "allow"})
    )
    assert landing is not None
    return landing


def test_discovery_names_the_par_endpoint(server: Server) -> None:
    meta = httpx.get(server.base_url + "/.well-known/oauth-authorization-server").json()
    assert meta["pushed_authorization_request_endpoint"] == server.base_url + "/oauth/par"
    assert meta["require_pushed_authorization_requests"] is False


@pytest.mark.parametrize("method", ["basic", "post"])
def test_a_pushed_request_gets_a_code_and_tokens(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client, method: str
) -> None:
    server.secrets_seen.append(apps["free"][1])
    client = oauth_client(server, apps["free"], method)
    request = client.authorization_request(scope="read write")
    pushed = client.pushed_authorization_request(request)
    assert pushed.request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert set(parse_qs(urlsplit(pushed.uri).query)) == {"client_id", "request_uri"}
    response = request.validate_callback(approve(browser, pushed.uri))  # state and iss checked
    token = client.authorization_code(response)  # with the PKCE verifier
    server.secrets_seen.extend([token.access_token, str(token.refresh_token)])
    assert token.scope == "read write" and token.refresh_token
    # the request_uri was spent by the decision
    again = browser.get(pushed.uri)
    assert again.status_code == 400 and "invalid_request_uri" in again.text
    assert sent_to(again) is None


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"resource": "https://api.example"}, roc.InvalidTarget),
        ({"scope": "read superpowers"}, roc.InvalidScope),
    ],
    ids=["resource", "scope"],
)
def test_a_refused_push_raises_the_librarys_error(
    server: Server, apps: dict[str, tuple[str, str]], extra: dict[str, str], error: type
) -> None:
    client = oauth_client(server, apps["free"], "basic")
    extra.setdefault("scope", "read")
    request = client.authorization_request(**extra)
    with pytest.raises(error):
        client.pushed_authorization_request(request)


def test_a_push_with_a_wrong_secret_is_invalid_client(
    server: Server, apps: dict[str, tuple[str, str]]
) -> None:
    client = oauth_client(server, (apps["free"][0], "not-the-secret"), "basic")
    with pytest.raises(roc.InvalidClient):
        client.pushed_authorization_request(client.authorization_request(scope="read"))


def test_a_client_that_must_push_is_refused_without_par(
    server: Server, apps: dict[str, tuple[str, str]], browser: httpx.Client
) -> None:
    server.secrets_seen.append(apps["strict"][1])
    client = oauth_client(server, apps["strict"], "basic")
    plain = client.authorization_request(scope="read")
    r = browser.get(plain.uri)
    assert r.status_code == 303
    refused = parse_qs(urlsplit(r.headers["location"]).query)
    assert refused["error"] == ["invalid_request"] and refused["state"] == [plain.state]
    request = client.authorization_request(scope="read")
    pushed = client.pushed_authorization_request(request)
    token = client.authorization_code(request.validate_callback(approve(browser, pushed.uri)))
    server.secrets_seen.append(token.access_token)
    assert token.scope == "read"
