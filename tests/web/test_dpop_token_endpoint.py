"""DPoP (RFC 9449) at the token endpoints, in-process: binding (§5, §6), refusals in each
dialect, server nonces (§8), refresh tokens of public and confidential clients (§5),
metadata (§5.1), and replays refused by every instance sharing a database or a Redis."""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import REDIS_URL, Harness, make_settings, running_app
from tests.dpop import DpopKey
from tests.partner import Partner, make_partner, pkce_pair
from tokensmith.core.clock import FrozenClock

ISSUER = "https://auth.example.test"
KEY = DpopKey.generate("ES256")
OTHER = DpopKey.generate("ES256")
#: dialect -> (path, its client's token format)
PATHS = {
    "oauth": ("/oauth/token", "jwt"),
    "tpay": ("/oauth/auth", "opaque"),
    "tbc": ("/v2/tpay/access-token", "jwt"),
    "dot": ("/o/token/", "opaque"),
}


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def cc(
    h: Harness, client_id: str, secret: str, *proofs: str, path: str = "/oauth/token"
) -> httpx.Response:
    """A client_credentials request in the path's dialect, with these DPoP headers."""
    headers = [("DPoP", p) for p in proofs]
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if path == "/v2/tpay/access-token":
        headers.append(("apikey", await apikey(h)))
    if path in ("/oauth/auth", "/v2/tpay/access-token"):
        del form["grant_type"]
    return await h.http.post(path, data=form, headers=headers)


async def apikey(h: Harness) -> str:
    from tokensmith.core.admin import create_api_key

    _, plain = await create_api_key(h.ctx.store, h.clock, h.ctx.rand, "dev app")
    return plain


def proof(key: DpopKey, h: Harness, path: str = "/oauth/token", **kw: Any) -> str:
    return key.proof(ISSUER + path, iat=h.clock.now(), **kw)


# -- binding (§5, §6) ---------------------------------------------------------------------------


async def test_a_proof_binds_the_jwt_to_the_key(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await cc(harness, client.client_id, secret, proof(KEY, harness))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"  # §5.1
    assert claims_of(body["access_token"])["cnf"] == {"jkt": KEY.jkt}  # §6.1
    assert "dpop-nonce" not in r.headers


async def test_without_a_proof_the_answer_is_unchanged(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await cc(harness, client.client_id, secret)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(r.json()["access_token"])


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_introspection_shows_the_bound_key(harness: Harness, token_format: str) -> None:
    """§6.2: ``cnf.jkt`` and ``token_type`` ``DPoP``; an unbound token shows neither."""
    client, secret = await harness.client(token_format=token_format)
    bound = (await cc(harness, client.client_id, secret, proof(KEY, harness))).json()
    plain = (await cc(harness, client.client_id, secret)).json()
    seen = []
    for token in (bound["access_token"], plain["access_token"]):
        r = await harness.http.post(
            "/oauth/introspect", data={"token": token}, auth=(client.client_id, secret)
        )
        seen.append(r.json())
    assert seen[0]["active"] and seen[0]["cnf"] == {"jkt": KEY.jkt}
    assert seen[0]["token_type"] == "DPoP"
    assert seen[1]["active"] and "cnf" not in seen[1] and seen[1]["token_type"] == "Bearer"


@pytest.mark.parametrize("dialect", ["tpay", "tbc", "dot"])
async def test_the_compat_dialects_bind_too(harness: Harness, dialect: str) -> None:
    path, token_format = PATHS[dialect]
    client, secret = await harness.client(scope="read write")
    r = await cc(harness, client.client_id, secret, proof(KEY, harness, path), path=path)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    token = r.json()["access_token"]
    if token_format == "jwt":
        assert claims_of(token)["cnf"] == {"jkt": KEY.jkt}
    else:
        found = await harness.ctx.service.introspect(token, client)
        assert found["cnf"] == {"jkt": KEY.jkt}


@pytest.mark.parametrize("dialect", ["tpay", "tbc", "dot"])
async def test_the_compat_dialects_answer_as_before_without_a_proof(
    harness: Harness, dialect: str
) -> None:
    path, _ = PATHS[dialect]
    client, secret = await harness.client(scope="read write")
    r = await cc(harness, client.client_id, secret, path=path)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


# -- refusals ------------------------------------------------------------------------------


async def test_a_client_that_requires_dpop_is_refused_without_a_proof(harness: Harness) -> None:
    client, secret = await harness.client(require_dpop=True)
    r = await cc(harness, client.client_id, secret)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
    assert r.headers["cache-control"] == "no-store"
    ok = await cc(harness, client.client_id, secret, proof(KEY, harness))
    assert ok.status_code == 200 and ok.json()["token_type"] == "DPoP"


@pytest.mark.parametrize("dialect", ["oauth", "tpay", "tbc", "dot"])
async def test_a_bad_proof_is_refused_in_the_endpoints_dialect(
    harness: Harness, dialect: str
) -> None:
    path, _ = PATHS[dialect]
    client, secret = await harness.client(scope="read write")
    wrong_endpoint = proof(KEY, harness, "/oauth/introspect")
    r = await cc(harness, client.client_id, secret, wrong_endpoint, path=path)
    assert r.status_code == 400
    if dialect == "tbc":  # RFC 7807
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "invalid_dpop_proof" and r.json()["status"] == "400"
        assert r.json()["systemCode"] == "tpay-access-token.400.000"  # not in the document
    else:
        assert r.json()["error"] == "invalid_dpop_proof"
        assert "htu" in r.json()["error_description"]


async def test_a_replayed_proof_is_refused(harness: Harness) -> None:
    client, secret = await harness.client()
    p = proof(KEY, harness)
    assert (await cc(harness, client.client_id, secret, p)).status_code == 200
    r = await cc(harness, client.client_id, secret, p)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
    assert "used before" in r.json()["error_description"]


async def test_two_dpop_headers_are_refused(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await cc(harness, client.client_id, secret, proof(KEY, harness), proof(KEY, harness))
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"


async def test_the_proof_of_a_refused_client_is_not_spent(harness: Harness) -> None:
    """The client is authenticated before its proof is checked and remembered."""
    client, secret = await harness.client()
    p = proof(KEY, harness)
    r = await cc(harness, client.client_id, "wrong secret", p)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert (await cc(harness, client.client_id, secret, p)).status_code == 200


async def test_metadata_names_the_accepted_algorithms(harness: Harness) -> None:
    body = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert body["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "EdDSA"]


# -- server nonces (§8) -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def app(tmp_path: Path, clock: FrozenClock, **settings: Any) -> AsyncIterator[Harness]:
    db = f"sqlite:///{tmp_path / 'app.db'}"
    async with running_app(make_settings(tmp_path, db, **settings), clock) as h:
        yield h


@pytest.mark.parametrize("dialect", ["oauth", "tbc"])
async def test_with_nonces_the_first_proof_gets_use_dpop_nonce(
    tmp_path: Path, clock: FrozenClock, dialect: str
) -> None:
    path, _ = PATHS[dialect]
    async with app(tmp_path, clock, dpop_nonce=True) as h:
        client, secret = await h.client(scope="read write")
        r = await cc(h, client.client_id, secret, proof(KEY, h, path), path=path)
        assert r.status_code == 400
        assert (r.json().get("error") or r.json().get("code")) == "use_dpop_nonce"
        nonce = r.headers["dpop-nonce"]
        ok = await cc(h, client.client_id, secret, proof(KEY, h, path, nonce=nonce), path=path)
        assert ok.status_code == 200 and ok.json()["token_type"] == "DPoP"
        assert ok.headers["dpop-nonce"] == nonce  # §8.2: the nonce to use next


async def test_with_nonces_a_request_without_dpop_is_unchanged(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with app(tmp_path, clock, dpop_nonce=True) as h:
        client, secret = await h.client()
        r = await cc(h, client.client_id, secret)
        assert r.status_code == 200 and "dpop-nonce" not in r.headers


async def test_an_expired_nonce_gets_a_new_one(tmp_path: Path, clock: FrozenClock) -> None:
    async with app(tmp_path, clock, dpop_nonce=True) as h:
        client, secret = await h.client()
        first = await cc(h, client.client_id, secret, proof(KEY, h))
        nonce = first.headers["dpop-nonce"]
        clock.advance(400)
        r = await cc(h, client.client_id, secret, proof(KEY, h, nonce=nonce))
        assert r.status_code == 400 and r.json()["error"] == "use_dpop_nonce"
        assert r.headers["dpop-nonce"] != nonce


async def test_settings_choose_the_algorithms(tmp_path: Path, clock: FrozenClock) -> None:
    async with app(tmp_path, clock, dpop_signing_algs=("ES256",)) as h:
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        assert meta["dpop_signing_alg_values_supported"] == ["ES256"]
        client, secret = await h.client()
        ps = DpopKey.generate("PS256")
        r = await cc(h, client.client_id, secret, proof(ps, h))
        assert r.status_code == 400 and "alg" in r.json()["error_description"]


# -- refresh tokens (§5) ----------------------------------------------------------------------


async def exchange(p: Partner, *proofs: str, public: bool) -> httpx.Response:
    verifier, challenge = pkce_pair()
    code = await p.code(code_challenge=challenge, code_challenge_method="S256")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://partner.example/callback",
        "code_verifier": verifier,
    }
    return await _post(p, form, proofs, public)


async def refresh(p: Partner, token: str, *proofs: str, public: bool) -> httpx.Response:
    return await _post(p, {"grant_type": "refresh_token", "refresh_token": token}, proofs, public)


async def _post(p: Partner, form: dict[str, str], proofs: tuple[str, ...], public: bool) -> Any:
    headers = [("DPoP", x) for x in proofs]
    if public:
        form = form | {"client_id": p.app.client_id}
    else:
        raw = f"{p.app.client_id}:{p.secret}".encode()
        headers.append(("authorization", "Basic " + base64.b64encode(raw).decode()))
    return await p.http.post("/oauth/token", data=form, headers=headers)


async def test_a_public_clients_refresh_token_is_bound_to_its_key(harness: Harness) -> None:
    p = await make_partner(harness, public=True)
    first = await exchange(p, proof(KEY, harness), public=True)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "DPoP"
    rt = first.json()["refresh_token"]
    refused = [
        await refresh(p, rt, public=True),
        await refresh(p, rt, proof(OTHER, harness), public=True),
    ]
    for r in refused:
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    ok = await refresh(p, rt, proof(KEY, harness), public=True)
    assert ok.status_code == 200, ok.text  # the refused attempts spent nothing
    assert claims_of(ok.json()["access_token"])["cnf"] == {"jkt": KEY.jkt}
    following = await refresh(p, ok.json()["refresh_token"], proof(OTHER, harness), public=True)
    assert following.status_code == 400, "the binding holds for the whole family"


async def test_a_confidential_clients_refresh_token_is_not_bound(harness: Harness) -> None:
    """§5: its refresh token is bound by its authentication; each new access token is bound
    to the proof sent with the refresh, if any."""
    p = await make_partner(harness)
    first = await exchange(p, proof(KEY, harness), public=False)
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    bearer = await refresh(p, first.json()["refresh_token"], public=False)
    assert bearer.status_code == 200 and bearer.json()["token_type"] == "Bearer"
    other = await refresh(p, bearer.json()["refresh_token"], proof(OTHER, harness), public=False)
    assert other.status_code == 200
    assert claims_of(other.json()["access_token"])["cnf"] == {"jkt": OTHER.jkt}


async def test_a_public_client_without_dpop_keeps_an_unbound_refresh_token(
    harness: Harness,
) -> None:
    p = await make_partner(harness, public=True)
    first = await exchange(p, public=True)
    assert first.status_code == 200 and first.json()["token_type"] == "Bearer"
    ok = await refresh(p, first.json()["refresh_token"], public=True)
    assert ok.status_code == 200


# -- several instances ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def two_apps(
    tmp_path: Path, clock: FrozenClock, db_url: str, **settings: Any
) -> AsyncIterator[tuple[Harness, Harness]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_app(make_settings(tmp_path / "a", db_url, **settings), clock) as a,
        running_app(make_settings(tmp_path / "b", db_url, **settings), clock) as b,
    ):
        yield a, b


async def _replayed_across(a: Harness, b: Harness) -> None:
    client, secret = await a.client()
    p = proof(KEY, a)
    assert (await cc(a, client.client_id, secret, p)).status_code == 200
    r = await cc(b, client.client_id, secret, p)
    assert r.status_code == 400 and "used before" in r.json()["error_description"]
    assert (await cc(b, client.client_id, secret, proof(KEY, b))).status_code == 200


async def test_instances_on_one_database_refuse_each_others_proofs(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    async with two_apps(tmp_path, clock, db_url) as (a, b):
        await _replayed_across(a, b)


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="TOKENSMITH_TEST_REDIS_URL not set")
async def test_instances_on_one_redis_refuse_each_others_proofs(
    tmp_path: Path, clock: FrozenClock
) -> None:
    prefix = f"tokensmith-test:{secrets.token_hex(6)}:"
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    async with two_apps(tmp_path, clock, db, redis_url=REDIS_URL, redis_prefix=prefix) as (a, b):
        await _replayed_across(a, b)
        keys = [k async for k in a.ctx.redis.scan_iter(match=prefix + "replay:dpop:*")]
        assert len(keys) == 2
        await a.ctx.redis.delete(*keys)
