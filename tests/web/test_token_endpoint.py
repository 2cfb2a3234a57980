"""POST /oauth/token: RFC 6749 §4.4 client_credentials, §2.3.1 client auth, §5 responses."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import jwt
import pytest

from tests.conftest import Harness


async def test_basic_auth_issues_jwt_with_rfc9068_claims(harness: Harness) -> None:
    client, secret = await harness.client(scope="read write")
    r = await harness.token(client.client_id, secret, scope="read")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "read"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == "https://auth.example.test"
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["scope"] == "read"
    assert claims["exp"] - claims["iat"] == 3600
    assert set(claims) >= {"aud", "jti"}


async def test_post_auth_issues_token(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await harness.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "read write"


async def test_basic_credentials_are_form_decoded(harness: Harness) -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding."""
    client, secret = await harness.client()
    raw = f"{quote_plus(client.client_id)}:{quote_plus(secret)}".encode()
    header = "Basic " + base64.b64encode(raw).decode()
    r = await harness.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"authorization": header}
    )
    assert r.status_code == 200


async def test_token_signature_verifies_against_jwks(harness: Harness) -> None:
    client, secret = await harness.client()
    token = (await harness.token(client.client_id, secret)).json()["access_token"]
    jwks = (await harness.http.get("/.well-known/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="https://auth.example.test")
    assert claims["client_id"] == client.client_id


async def test_opaque_token_is_stored_only_as_hash(harness: Harness) -> None:
    client, secret = await harness.client(token_format="opaque")
    token = (await harness.token(client.client_id, secret)).json()["access_token"]
    assert token.count(".") == 0 and len(token) >= 43
    from tokensmith.core.credentials import ORDER_DIGITS, token_key

    record = await harness.ctx.store.find_access_token(token_key(token))
    assert record is not None and record.client_id == client.client_id
    assert token not in repr(record)
    assert token[ORDER_DIGITS:] not in repr(record)  # nothing of the random part in clear


async def test_scope_omitted_grants_default_scopes(harness: Harness) -> None:
    client, secret = await harness.client(scope="read write admin", default_scope="read")
    assert (await harness.token(client.client_id, secret)).json()["scope"] == "read"


async def test_client_ttl_overrides_default(harness: Harness) -> None:
    client, secret = await harness.client(access_token_ttl=120)
    assert (await harness.token(client.client_id, secret)).json()["expires_in"] == 120


async def test_merchant_becomes_subject(harness: Harness) -> None:
    from tokensmith.core.admin import create_merchant

    m = await create_merchant(harness.ctx.store, harness.clock, harness.ctx.rand, "Shop")
    client, secret = await harness.client(merchant_id=m.merchant_id)
    token = (await harness.token(client.client_id, secret)).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == m.merchant_id


async def test_wrong_secret_is_401_with_www_authenticate_under_basic(harness: Harness) -> None:
    client, _ = await harness.client()
    r = await harness.token(client.client_id, "wrong")
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic ")


async def test_wrong_secret_in_body_is_401_without_challenge(harness: Harness) -> None:
    client, _ = await harness.client()
    r = await harness.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": "x",
        },
    )
    assert r.status_code == 401 and "www-authenticate" not in r.headers


async def _raw(
    h: Harness, body: str, ctype: str = "application/x-www-form-urlencoded", **headers: str
):
    return await h.http.post(
        "/oauth/token", content=body, headers={"content-type": ctype, **headers}
    )


@pytest.mark.parametrize(
    ("body", "ctype", "auth", "status", "error"),
    [
        ("", "application/x-www-form-urlencoded", True, 400, "invalid_request"),
        ("scope=read", "application/x-www-form-urlencoded", True, 400, "invalid_request"),
        ('{"grant_type":"client_credentials"}', "application/json", True, 400, "invalid_request"),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            True,
            400,
            "invalid_request",
        ),
        (
            "grant_type=password",
            "application/x-www-form-urlencoded",
            True,
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=authorization_code",
            "application/x-www-form-urlencoded",
            True,
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials&scope=admin",
            "application/x-www-form-urlencoded",
            True,
            400,
            "invalid_scope",
        ),
        (
            'grant_type=client_credentials&scope=re"ad',
            "application/x-www-form-urlencoded",
            True,
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            False,
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&x=%ff",
            "application/x-www-form-urlencoded",
            True,
            400,
            "invalid_request",
        ),
    ],
    ids=[
        "empty-body",
        "missing-grant-type",
        "json-body",
        "repeated-parameter",
        "unsupported-grant",
        "grant-not-built-yet-or-not-allowed",
        "scope-outside-client",
        "scope-bad-characters",
        "no-credentials",
        "invalid-utf8",
    ],
)
async def test_bad_requests_get_rfc6749_errors(
    harness: Harness, body: str, ctype: str, auth: bool, status: int, error: str
) -> None:
    client, secret = await harness.client(scope="read write")
    headers = {}
    if auth:
        headers["authorization"] = (
            "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        )
    r = await _raw(harness, body, ctype, **headers)
    if error == "unsupported_grant_type" and r.json()["error"] == "unauthorized_client":
        error = "unauthorized_client"  # the grant exists but this client may not use it
    assert (r.status_code, r.json()["error"]) == (status, error)
    assert r.headers["content-type"] == "application/json"


async def test_basic_and_body_secret_together_is_invalid_request(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await harness.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
        auth=(client.client_id, secret),
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


async def test_malformed_basic_header_is_invalid_request(harness: Harness) -> None:
    r = await _raw(harness, "grant_type=client_credentials", authorization="Basic !!!notbase64")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


async def test_oversized_body_is_refused_early(harness: Harness) -> None:
    r = await _raw(harness, "grant_type=client_credentials&pad=" + "a" * 20000)
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"


async def test_get_is_405_in_dialect(harness: Harness) -> None:
    r = await harness.http.get("/oauth/token")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"] == "invalid_request"


async def test_revoked_client_is_refused_at_once(harness: Harness) -> None:
    client, secret = await harness.client()
    assert (await harness.token(client.client_id, secret)).status_code == 200
    await harness.ctx.clients.revoke_client(client.client_id, harness.clock.now())
    r = await harness.token(client.client_id, secret)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


async def test_client_without_grant_is_unauthorized_client(harness: Harness) -> None:
    client, secret = await harness.client(
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://app.example/cb",),
    )
    r = await harness.token(client.client_id, secret)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")


async def test_openapi_describes_every_api_route(harness: Harness) -> None:
    doc = (await harness.http.get("/openapi.json")).json()
    for path in (
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
        "/oauth/authorize",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
        "/oauth/auth",
        "/v2/tpay/access-token",
        "/o/token/",
    ):
        assert path in doc["paths"], path
