"""The standard endpoints driven by Authlib's OAuth2Client and PyJWT against a real server:
RFC 8414 discovery, RFC 6749 client_credentials with both client auth methods, RFC 7662
introspection, RFC 7009 revocation, and JWKS verification of RFC 9068 JWTs."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import jwt
import pytest
from authlib import deprecate  # installs an "always" filter for its warning when imported

from tests.e2e.conftest import Server

with warnings.catch_warnings():  # "the httpx module is deprecated": it still is the httpx one
    warnings.simplefilter("ignore", deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def metadata(server: Server) -> dict[str, Any]:
    r = httpx.get(server.base_url + "/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def two(server: Server) -> list[tuple[str, str]]:
    return server.clients(
        ["--name", "authlib partner", "--scope", "read write"],
        ["--name", "other partner", "--scope", "read"],
    )


@pytest.fixture(scope="module")
def creds(two: list[tuple[str, str]]) -> tuple[str, str]:
    return two[0]


def test_discovery_metadata_names_every_endpoint(server: Server, metadata: dict[str, Any]) -> None:
    base = server.base_url
    assert metadata["issuer"] == base
    assert metadata["token_endpoint"] == base + "/oauth/token"
    assert metadata["jwks_uri"] == base + "/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == base + "/oauth/introspect"
    assert metadata["revocation_endpoint"] == base + "/oauth/revoke"
    assert "client_credentials" in metadata["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )


def verify(token: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """RFC 9068 §4 as a resource server would: JWKS from discovery, then PyJWT."""
    jwks = jwt.PyJWKClient(metadata["jwks_uri"])
    key = jwks.get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=metadata["issuer"],
        issuer=metadata["issuer"],
    )
    return claims


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials_token_verifies_against_jwks(
    server: Server, metadata: dict[str, Any], creds: tuple[str, str], method: str
) -> None:
    client_id, secret = creds
    with OAuth2Client(client_id, secret, token_endpoint_auth_method=method, scope="read") as oauth:
        token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    server.secrets_seen.append(token["access_token"])
    assert token["token_type"] == "Bearer" and token["scope"] == "read"
    assert token["expires_in"] == 3600 and "expires_at" in token
    claims = verify(token["access_token"], metadata)
    assert claims["client_id"] == client_id and claims["sub"] == client_id
    assert claims["scope"] == "read"


def test_authlib_wrong_secret_raises_invalid_client(
    metadata: dict[str, Any], creds: tuple[str, str]
) -> None:
    from authlib.integrations.base_client.errors import OAuthError

    with OAuth2Client(creds[0], "not-the-secret") as oauth, pytest.raises(OAuthError) as info:
        oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert info.value.error == "invalid_client"


def test_introspection_then_revocation_makes_the_jwt_inactive(
    server: Server, metadata: dict[str, Any], creds: tuple[str, str]
) -> None:
    client_id, secret = creds
    with OAuth2Client(
        client_id, secret, revocation_endpoint_auth_method="client_secret_basic"
    ) as oauth:
        token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        access = token["access_token"]
        server.secrets_seen.append(access)

        r = oauth.introspect_token(metadata["introspection_endpoint"], token=access)
        assert r.status_code == 200
        info = r.json()
        assert info["active"] is True and info["client_id"] == client_id
        assert info["iss"] == server.base_url and info["token_type"] == "Bearer"

        r = oauth.revoke_token(metadata["revocation_endpoint"], token=access)
        assert r.status_code == 200

        r = oauth.introspect_token(metadata["introspection_endpoint"], token=access)
        assert r.json() == {"active": False}
        # revoking again, or an unknown token, is still 200 (RFC 7009 §2.2)
        assert oauth.revoke_token(metadata["revocation_endpoint"], token=access).status_code == 200
        assert oauth.revoke_token(metadata["revocation_endpoint"], token="nope").status_code == 200
    # the signature still verifies: revocation is a server-side state, seen at introspection
    assert verify(access, metadata)["client_id"] == client_id


def test_another_clients_token_is_not_introspectable(
    server: Server, metadata: dict[str, Any], two: list[tuple[str, str]]
) -> None:
    creds, other = two
    with OAuth2Client(*creds) as mine, OAuth2Client(*other) as theirs:
        token = theirs.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        server.secrets_seen.append(token["access_token"])
        r = mine.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert r.json() == {"active": False}
