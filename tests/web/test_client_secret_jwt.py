"""client_secret_jwt (RFC 7523 §2.2, OIDC Core §9) in process: a client registered with
``auth_method="client_secret_jwt"`` signs assertions with an HMAC keyed by its secret, which
the server keeps sealed (never in clear) besides its hash; accepted at the token,
introspection and revocation endpoints only when enabled, with the same checks as
private_key_jwt; advertised in the metadata only then."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.assertions import ISSUER, TOKEN_URL, ClientKey, assertion_form
from tests.conftest import Harness, make_settings, running_app
from tokensmith.client import AsyncTokenClient
from tokensmith.core.admin import ClientSpec
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client

KEY = ClientKey.generate("ES256", kid="k1")


@pytest.fixture
async def hs(tmp_path: Path) -> AsyncIterator[Harness]:
    """The app with client_secret_jwt enabled."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", client_secret_jwt=True)
    async with running_app(settings, FrozenClock(float(int(time.time())))) as h:
        yield h


async def secret_jwt_client(h: Harness) -> tuple[Client, str]:
    client, secret = await h.ctx.client_admin.create(
        ClientSpec("bank", scope="read", auth_method="client_secret_jwt")
    )
    assert secret is not None
    return client, secret


def hs_assertion(
    client_id: str,
    secret: str,
    now: float,
    *,
    alg: str = "HS256",
    aud: Any = TOKEN_URL,
    lifetime: int = 60,
    jti: str | None = None,
) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "jti": jti or uuid.uuid4().hex,
        "iat": int(now),
        "exp": int(now) + lifetime,
    }
    return jwt.encode(claims, secret, algorithm=alg)


async def token(h: Harness, assertion: str) -> httpx.Response:
    form = assertion_form(assertion, grant_type="client_credentials")
    return await h.http.post("/oauth/token", data=form)


def refused(r: httpx.Response, words: str = "") -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert words in r.json().get("error_description", ""), r.text


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_an_hmac_assertion_keyed_by_the_secret_gets_a_token(hs: Harness, alg: str) -> None:
    client, secret = await secret_jwt_client(hs)
    r = await token(hs, hs_assertion(client.client_id, secret, hs.clock.now(), alg=alg))
    assert r.status_code == 200, r.text


async def test_introspection_and_revocation_accept_it_too(hs: Harness) -> None:
    client, secret = await secret_jwt_client(hs)
    now = hs.clock.now()
    for path in ("/oauth/introspect", "/oauth/revoke"):
        assertion = hs_assertion(client.client_id, secret, now, aud=ISSUER)
        r = await hs.http.post(path, data=assertion_form(assertion, token="x"))
        assert r.status_code == 200, (path, r.text)


async def test_the_secret_is_stored_sealed_and_hashed_never_in_clear(hs: Harness) -> None:
    client, secret = await secret_jwt_client(hs)
    stored = await hs.ctx.store.get_client(client.client_id)
    assert stored is not None and stored.auth_methods == ("client_secret_jwt",)
    (kept,) = stored.secrets
    assert kept.sealed is not None and secret not in kept.sealed and kept.secret_hash != secret
    assert secret not in repr(stored) and "sealed" not in repr(kept)


async def test_the_secret_itself_does_not_authenticate(hs: Harness) -> None:
    client, secret = await secret_jwt_client(hs)
    refused(await hs.token(client.client_id, secret))
    form = {"grant_type": "client_credentials", "client_id": client.client_id}
    refused(await hs.http.post("/oauth/token", data=form | {"client_secret": secret}))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda c, s, n: hs_assertion(c, "not-" + s, n),
            "does not verify with the client's secret",
        ),
        (lambda c, s, n: hs_assertion(c, s, n, aud="https://elsewhere.test"), "aud"),
        (lambda c, s, n: hs_assertion(c, s, n - 600), "expired"),
        (lambda c, s, n: hs_assertion(c, s, n, lifetime=3600), "at most 300"),
        (
            lambda c, s, n: jwt.encode({"iss": c, "sub": c, "aud": TOKEN_URL}, None, "none"),
            "alg must be one of HS256",
        ),
        (lambda c, s, n: KEY.assertion(c, n), "alg must be one of HS256"),
        (lambda c, s, n: hs_assertion("c_other", s, n), "iss must be the client_id"),
    ],
    ids=["wrong secret", "wrong aud", "expired", "long-lived", "alg none", "ES256", "other iss"],
)
async def test_bad_hmac_assertions_are_invalid_client(hs: Harness, make: Any, words: str) -> None:
    client, secret = await secret_jwt_client(hs)
    assertion = make(client.client_id, secret, hs.clock.now())
    form = assertion_form(assertion, grant_type="client_credentials", client_id=client.client_id)
    refused(await hs.http.post("/oauth/token", data=form), words)


async def test_a_replayed_hmac_assertion_is_refused(hs: Harness) -> None:
    client, secret = await secret_jwt_client(hs)
    assertion = hs_assertion(client.client_id, secret, hs.clock.now())
    assert (await token(hs, assertion)).status_code == 200
    refused(await token(hs, assertion), "used before")


async def test_hmac_is_never_accepted_from_a_private_key_jwt_client(hs: Harness) -> None:
    """Even keyed by bytes an attacker may know (the public JWK): the client has keys."""
    client, _ = await hs.client(jwks=KEY.jwks())
    forged = hs_assertion(client.client_id, KEY.public_jwk["x"] * 2, hs.clock.now())
    refused(await token(hs, forged), "not accepted from this client")


async def test_rotation_reseals_and_the_old_secret_stops_at_its_expiry(hs: Harness) -> None:
    client, old = await secret_jwt_client(hs)
    new = await hs.ctx.client_admin.rotate_secret(client.client_id, 60)
    now = hs.clock.now()
    assert (await token(hs, hs_assertion(client.client_id, new, now))).status_code == 200
    assert (await token(hs, hs_assertion(client.client_id, old, now))).status_code == 200
    hs.clock.advance(61)
    now = hs.clock.now()
    refused(await token(hs, hs_assertion(client.client_id, old, now)), "does not verify")
    assert (await token(hs, hs_assertion(client.client_id, new, now))).status_code == 200


async def test_the_metadata_advertises_it_only_when_enabled(hs: Harness, harness: Harness) -> None:
    on = (await hs.http.get("/.well-known/oauth-authorization-server")).json()
    off = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    for endpoint in ("token", "introspection", "revocation"):
        assert "client_secret_jwt" in on[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "HS256" in on[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert "client_secret_jwt" not in off[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "HS256" not in off[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert "private_key_jwt" in off[f"{endpoint}_endpoint_auth_methods_supported"]


async def test_a_server_without_it_refuses_hmac_assertions(harness: Harness) -> None:
    h = harness
    client, secret = await secret_jwt_client(h)
    refused(await token(h, hs_assertion(client.client_id, secret, h.clock.now())), "not accepted")


async def test_the_token_client_authenticates_with_client_secret_jwt(hs: Harness) -> None:
    client, secret = await secret_jwt_client(hs)
    atc = AsyncTokenClient(
        TOKEN_URL, client.client_id, secret, auth_method="client_secret_jwt",
        signing_alg="HS512", http_client=hs.http, clock=hs.clock.now,
    )  # fmt: skip
    assert (await atc.get_token()).access_token
    assert (await atc.refresh()).access_token
