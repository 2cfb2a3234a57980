"""T-Gate (seed 003) against a real ``tokensmith serve``: authorization code with PKCE,
then rotating refresh tokens kept in a :class:`FileRefreshTokenStore`.

The user's part is driven over HTTP as a browser would: the authorization request shows
the login form, the credentials go back with the form's CSRF token, the consent form is
answered with Allow, and the code is read from the 303 ``Location``.  The server runs
with a refresh grace window (``TOKENSMITH_REFRESH_GRACE_SECONDS``), so a refresh whose
response is lost on the way back can be repeated once.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.live import (
    AUDIENCE,
    REFRESH_GRACE,
    LiveServer,
    form,
    load_example,
    serve_asgi,
)
from tests.partner import continued_to, sent_to
from tokensmith.client import (
    PKCE,
    FileRefreshTokenStore,
    InvalidGrant,
    MemoryRefreshTokenStore,
    RetryPolicy,
    TokenClient,
    make_state,
)
from tokensmith.resource import TokenValidator

pytestmark = pytest.mark.e2e

REDIRECT = "https://partner.example/callback"
EMAIL = "ann@acme.test"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class PartnerApp:
    client_id: str
    secret: str
    merchant_id: str
    user_id: str


@pytest.fixture(scope="module")
def partner(server: LiveServer) -> PartnerApp:
    grants = server.metadata().get("grant_types_supported", [])
    if "authorization_code" not in grants:
        pytest.skip(
            "the server does not advertise the authorization_code grant in its RFC 8414 "
            f"metadata (grant_types_supported={grants})"
        )
    merchant = server.cli("merchants", "create", "--name", "Acme Coffee Roasters")
    user = server.cli(
        *("users", "create", "--merchant", merchant["merchant_id"]),
        *("--email", EMAIL, "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    app = server.cli(
        *("clients", "create", "--name", "Ledger Sync", "--scope", "read write"),
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *("--redirect-uri", REDIRECT),
    )
    return PartnerApp(
        app["client_id"], app["client_secret"], merchant["merchant_id"], user["user_id"]
    )


@pytest.fixture(scope="module")
def payments_api(server: LiveServer) -> Iterator[str]:
    """The payments API example, checking JWTs against the server's JWKS."""
    app = load_example("payments_api").create_app(TokenValidator(server.issuer, AUDIENCE))
    with serve_asgi(app) as base:
        yield base


def authorize_in_browser(server: LiveServer, url: str, state: str) -> str:
    """Log in and click Allow, as a browser would; the code from the redirect.

    The consent form's "Don't ask again" box is checked by default, so a second
    authorization of the same app goes straight back with a code after the login."""
    with httpx.Client(base_url=server.base, timeout=30) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        login = form(page.text, "/login")
        assert login["fields"]["csrf_token"]
        r = browser.post("/login", data=login["fields"] | {"email": EMAIL, "password": PASSWORD})
        r = browser.get(continued_to(r))  # back to the authorization request
        if r.status_code == 200:
            consent = form(r.text, "/oauth/authorize/decision")
            assert "allow" in consent["buttons"]["decision"]
            r = browser.post(
                "/oauth/authorize/decision", data=consent["fields"] | {"decision": "allow"}
            )
    location = sent_to(r)
    assert location is not None, r.text
    assert location.startswith(REDIRECT + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["state"] == state
    assert query["iss"] == server.issuer  # RFC 9207
    assert "code" in query, query
    return query["code"]


def introspect(server: LiveServer, app: PartnerApp, token: str) -> dict[str, Any]:
    r = httpx.post(
        server.base + "/oauth/introspect", data={"token": token}, auth=(app.client_id, app.secret)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_authorization_code_with_pkce_then_refresh_rotation(
    server: LiveServer, partner: PartnerApp, payments_api: str, tmp_path: Any
) -> None:
    path = tmp_path / "refresh-token"
    tc = TokenClient.from_issuer(
        server.issuer, partner.client_id, partner.secret, refresh_store=FileRefreshTokenStore(path)
    )
    with tc:
        pkce, state = PKCE.generate(), make_state()
        url = tc.build_authorization_url(REDIRECT, scope="read write", state=state, pkce=pkce)
        assert url.startswith(server.issuer + "/oauth/authorize?")
        code = authorize_in_browser(server, url, state)

        token = tc.exchange_code(code, REDIRECT, pkce.verifier)
        assert token.scope == "read write"
        assert 7100 < token.lifetime <= 7200  # T-Gate: access tokens last 2 hours
        assert token.refresh_token is not None
        assert path.read_text() == token.refresh_token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        claims = introspect(server, partner, token.access_token)
        assert claims["active"] is True
        assert claims["sub"] == partner.merchant_id  # the company the user acted for

        seen = [token.refresh_token]
        for _ in range(2):  # every refresh returns a new refresh token, saved first
            renewed = tc.refresh()
            assert renewed.refresh_token is not None
            assert renewed.refresh_token not in seen
            assert path.read_text() == renewed.refresh_token
            seen.append(renewed.refresh_token)

        with httpx.Client(base_url=payments_api, auth=tc) as http:
            r = http.get("/payments/")
        assert r.status_code == 200, r.text
        assert r.headers["x-client-id"] == partner.client_id

    # Another process picks the session up from the file and keeps rotating it.
    with TokenClient.from_issuer(
        server.issuer, partner.client_id, partner.secret, refresh_store=FileRefreshTokenStore(path)
    ) as other:
        assert other.get_token().scope == "read write"
        assert path.read_text() not in seen


class LoseOneRefreshResponse(httpx.HTTPTransport):
    """Sends every request to the real server; the response to the first refresh is
    dropped after the server produced it, as when the connection breaks on the way back."""

    def __init__(self) -> None:
        super().__init__()
        self.refresh_bodies: list[bytes] = []
        self.lost: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if b"grant_type=refresh_token" in request.content:
            self.refresh_bodies.append(request.content)
            if not self.lost:
                response.read()
                response.close()
                self.lost.append(response.json())
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
        return response


def test_lost_refresh_response_within_the_grace_window_keeps_the_session(
    server: LiveServer, partner: PartnerApp, tmp_path: Any
) -> None:
    """The server runs with ``refresh_grace_seconds`` = REFRESH_GRACE (> 0)."""
    assert REFRESH_GRACE > 0
    transport = LoseOneRefreshResponse()
    store = FileRefreshTokenStore(tmp_path / "refresh-token")
    tc = TokenClient.from_issuer(
        server.issuer,
        partner.client_id,
        partner.secret,
        refresh_store=store,
        http_client=httpx.Client(transport=transport),
        retry=RetryPolicy(base_delay=0.01),
    )
    with tc:
        pkce, state = PKCE.generate(), make_state()
        url = tc.build_authorization_url(REDIRECT, scope="read", state=state, pkce=pkce)
        tc.exchange_code(authorize_in_browser(server, url, state), REDIRECT, pkce.verifier)
        presented = store.load()

        renewed = tc.refresh()  # the first answer is lost; the same token is sent again

        assert len(transport.lost) == 1
        assert transport.refresh_bodies[0] == transport.refresh_bodies[1]  # same refresh token
        lost = transport.lost[0]
        assert store.load() == renewed.refresh_token
        assert renewed.refresh_token not in (presented, lost["refresh_token"])
        # The server withdrew what the lost answer carried; the session goes on.
        assert introspect(server, partner, lost["access_token"])["active"] is False
        assert introspect(server, partner, renewed.access_token)["active"] is True
        again = tc.refresh()
        assert store.load() == again.refresh_token

        # The grace window allows that one replay only: the lost refresh token is now
        # reuse, and reuse revokes every token of the authorization (RFC 9700 §4.14.2).
        with (
            TokenClient.from_issuer(
                server.issuer,
                partner.client_id,
                partner.secret,
                refresh_store=MemoryRefreshTokenStore(lost["refresh_token"]),
            ) as thief,
            pytest.raises(InvalidGrant),
        ):
            thief.get_token()
        with pytest.raises(InvalidGrant):
            tc.refresh()
