"""Resource indicators (RFC 8707) end to end: an API registered with ``tokensmith
resources add``, and requests-oauth2client, an independent client library, asking a real
``tokensmith serve`` on a loopback port for a token restricted to it."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
import requests_oauth2client as roc

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

API = "https://payments.e2e.test/api"
OTHER = "urn:e2e:reports"


@pytest.fixture(scope="module")
def registered(server: Server) -> tuple[str, str]:
    """Two APIs, and a client holding scopes of both."""
    server.cli(
        *("resources", "add", API, "--name", "Payments API"),
        *("--scope", "payments", "--scope", "refunds", "--ttl", "120"),
    )
    server.cli("resources", "add", OTHER, "--name", "Reports", "--scope", "reports")
    listed = {r["identifier"]: r for r in server.cli("resources", "list")}
    assert listed[API]["scopes"] == ["payments", "refunds"]
    assert listed[API]["access_token_ttl"] == 120
    return server.client("--name", "RFC 8707 client", "--scope", "payments reports")


def oauth(server: Server, creds: tuple[str, str]) -> roc.OAuth2Client:
    return roc.OAuth2Client.from_discovery_endpoint(
        issuer=server.base_url,
        url=server.base_url + "/.well-known/oauth-authorization-server",
        auth=creds,
        testing=True,  # plain http on loopback
    )


def verified(server: Server, token: str, audience: str) -> dict[str, Any]:
    """The claims, the signature checked against the server's JWKS and ``aud`` against
    ``audience`` by PyJWT."""
    key = jwt.PyJWKClient(server.base_url + "/.well-known/jwks.json").get_signing_key_from_jwt(
        token
    )
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=server.base_url
    )
    return claims


def test_a_token_for_a_registered_api_is_restricted_to_it(
    server: Server, registered: tuple[str, str]
) -> None:
    token = oauth(server, registered).client_credentials(resource=API)
    server.secrets_seen.append(token.access_token)
    claims = verified(server, token.access_token, API)
    assert claims["aud"] == API and claims["scope"] == "payments"
    assert token.scope == "payments" and claims["exp"] - claims["iat"] == 120
    with pytest.raises(jwt.InvalidAudienceError):
        verified(server, token.access_token, server.base_url)
    with pytest.raises(jwt.InvalidAudienceError):
        verified(server, token.access_token, OTHER)


def test_introspection_returns_the_audience(server: Server, registered: tuple[str, str]) -> None:
    client = oauth(server, registered)
    token = client.client_credentials(resource=OTHER)
    body = client.introspect_token(token.access_token)
    assert body["active"] is True and body["aud"] == OTHER and body["scope"] == "reports"


@pytest.mark.parametrize(
    ("resource", "error"),
    [
        ("https://unregistered.e2e.test/", roc.InvalidTarget),
        ("relative/api", roc.InvalidTarget),
        (API + "#fragment", roc.InvalidTarget),
    ],
    ids=["unregistered", "relative", "fragment"],
)
def test_a_bad_resource_raises_the_librarys_error(
    server: Server, registered: tuple[str, str], resource: str, error: type
) -> None:
    with pytest.raises(error):
        oauth(server, registered).client_credentials(resource=resource)


def test_a_scope_the_api_does_not_define_is_invalid_scope(
    server: Server, registered: tuple[str, str]
) -> None:
    with pytest.raises(roc.InvalidScope):
        oauth(server, registered).client_credentials(scope="reports", resource=API)


def test_without_resource_the_token_is_for_the_server(
    server: Server, registered: tuple[str, str]
) -> None:
    token = oauth(server, registered).client_credentials()
    assert verified(server, token.access_token, server.base_url)["aud"] == server.base_url
    meta = httpx.get(server.base_url + "/.well-known/oauth-authorization-server").json()
    assert "resource_indicators_supported" not in meta  # nothing standard to announce
