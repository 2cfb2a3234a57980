"""The FAPI 2.0 profile (FAPI 2.0 Security Profile, final, §5.3) through the app in
process: the full flow a FAPI 2.0 client makes (PAR + private_key_jwt + DPoP + PKCE S256
-> code -> token -> refresh), for the whole server (``TOKENSMITH_PROFILE=fapi2``) and for
one client (``profile=fapi2``); every request the profile refuses, with its error and
status; and the metadata (RFC 8414) of each configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.assertions import ISSUER, ClientKey, assertion_form
from tests.conftest import Harness, make_settings, running_app
from tests.dpop import DpopKey
from tests.partner import REDIRECT, Partner, make_partner, pkce_pair, query_of, sent_to
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import token_key

KEY = ClientKey.generate("ES256")
DPOP = DpopKey.generate("ES256")
PAR = "/oauth/par"
LOOPBACK = "http://127.0.0.1:8765/cb"


@pytest.fixture
async def fapi(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    """A server whose profile is fapi2 (no compat dialects: they cannot comply)."""
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'app.db'}", profile="fapi2", compat=()
    )
    async with running_app(settings, clock) as h:
        yield h


@pytest.fixture(params=["server", "client"])
async def fapi_partner(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Partner]:
    """A keyed partner app under FAPI 2.0: by the server's profile, or by its own on a
    server whose profile is default."""
    server = request.param == "server"
    overrides: dict[str, Any] = {"profile": "fapi2", "compat": ()} if server else {}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", **overrides)
    async with running_app(settings, clock) as h:
        spec: dict[str, Any] = {"jwks": KEY.jwks()}
        if not server:
            spec["profile"] = "fapi2"
        yield await make_partner(h, **spec)


def assertion(p: Partner) -> dict[str, str]:
    return assertion_form(KEY.assertion(p.app.client_id, p.h.clock.now()))


def proof(h: Harness, key: DpopKey = DPOP, path: str = "/oauth/token") -> dict[str, str]:
    return {"DPoP": key.proof(ISSUER + path, iat=h.clock.now())}


async def push(
    p: Partner, headers: dict[str, str] | None = None, **extra: str | None
) -> httpx.Response:
    """The partner's authorization request pushed with a client assertion."""
    form = p.params(**extra) | assertion(p)
    return await p.http.post(PAR, data=form, headers=headers or {})


async def pushed_code(p: Partner, **extra: str | None) -> tuple[str, str]:
    """Push with PKCE S256, go through login and consent; the code and the verifier."""
    verifier, challenge = pkce_pair()
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"} | extra
    r = await push(p, **extra)
    assert r.status_code == 201, r.text
    code = await p.code(request_uri=r.json()["request_uri"])
    return code, verifier


async def exchange(
    p: Partner, code: str, verifier: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    form = assertion(p) | {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    return await p.http.post("/oauth/token", data=form, headers=headers or {})


def error_of(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, str(r.json()["error"])


# -- the flow that passes ------------------------------------------------------------------


async def test_the_full_fapi2_flow_gives_dpop_bound_tokens(fapi_partner: Partner) -> None:
    p, h = fapi_partner, fapi_partner.h
    code, verifier = await pushed_code(p)
    stored = await h.ctx.store.find_code(token_key(code))
    assert stored is not None and stored.expires_at - stored.issued_at == 60  # ≤ 60 s
    r = await exchange(p, code, verifier, proof(h))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": DPOP.jkt}
    form = assertion(p) | {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    refreshed = await p.http.post("/oauth/token", data=form, headers=proof(h))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "DPoP"


async def test_the_authorization_response_carries_iss(fapi_partner: Partner) -> None:
    """RFC 9207 §2: ``iss`` with the code."""
    p = fapi_partner
    _, challenge = pkce_pair()
    r = await push(p, code_challenge=challenge, code_challenge_method="S256")
    uri = r.json()["request_uri"]
    page = await p.authorize(request_uri=uri)
    await p.login()
    page = await p.authorize(request_uri=uri)
    q = query_of(sent_to(await p.decide(page)) or "")
    assert q["iss"] == ISSUER and "code" in q


async def test_a_client_of_its_own_default_profile_is_not_held_to_fapi2(fapi: Harness) -> None:
    """The client's profile wins over the server's."""
    client, secret = await fapi.client(profile="default")
    r = await fapi.token(client.client_id, secret)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


# -- what the profile refuses -----------------------------------------------------------------


async def _query_request(p: Partner) -> httpx.Response:
    await p.login()
    _, challenge = pkce_pair()
    return await p.authorize(code_challenge=challenge, code_challenge_method="S256")


PUSH_REFUSALS: list[tuple[str, dict[str, str | None], int, str]] = [
    ("no PKCE", {}, 400, "invalid_request"),
    (
        "PKCE plain",
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        400,
        "invalid_request",
    ),
    ("PKCE without method", {"code_challenge": "x" * 43}, 400, "invalid_request"),
    ("response_type token", {"response_type": "token"}, 400, "unsupported_response_type"),
    ("no redirect_uri", {"redirect_uri": None}, 400, "invalid_request"),
    ("unregistered redirect_uri", {"redirect_uri": REDIRECT + "/x"}, 400, "invalid_request"),
    ("malformed dpop_jkt", {"dpop_jkt": "short"}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("extra", "status", "error"),
    [c[1:] for c in PUSH_REFUSALS],
    ids=[c[0] for c in PUSH_REFUSALS],
)
async def test_a_push_breaking_the_profile_is_refused(
    fapi_partner: Partner, extra: dict[str, str | None], status: int, error: str
) -> None:
    good: dict[str, str | None] = {}
    if "code_challenge" not in extra and extra:
        _, challenge = pkce_pair()
        good = {"code_challenge": challenge, "code_challenge_method": "S256"}
    r = await push(fapi_partner, **(good | extra))
    assert error_of(r) == (status, error), r.text


async def test_an_authorization_request_in_the_query_is_refused(fapi_partner: Partner) -> None:
    """FAPI 2.0 §5.3.2.2: PAR only; the refusal is redirected (RFC 9126 §4)."""
    r = await _query_request(fapi_partner)
    q = query_of(sent_to(r) or "")
    assert q["error"] == "invalid_request" and "PAR" in q["error_description"], q
    assert q["iss"] == ISSUER


async def test_a_loopback_redirect_uri_must_match_exactly_port_included(fapi: Harness) -> None:
    """RFC 8252 §7.3's port leeway is not FAPI 2.0's exact match."""
    p = await make_partner(fapi, jwks=KEY.jwks(), redirect_uris=(LOOPBACK,))
    _, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    r = await push(p, redirect_uri="http://127.0.0.1:9999/cb", **pkce)
    assert error_of(r) == (400, "invalid_request")
    assert (await push(p, redirect_uri=LOOPBACK, **pkce)).status_code == 201


async def test_the_token_endpoint_wants_a_sender_constrained_token(fapi_partner: Partner) -> None:
    p = fapi_partner
    code, verifier = await pushed_code(p)
    r = await exchange(p, code, verifier)  # no DPoP proof
    assert error_of(r) == (400, "invalid_request")
    assert "sender-constrained" in r.json()["error_description"]
    assert (await exchange(p, code, verifier, proof(p.h))).status_code == 200  # not spent


async def test_client_credentials_want_a_sender_constrained_token(fapi: Harness) -> None:
    client, _ = await fapi.client(jwks=KEY.jwks())
    form = assertion_form(KEY.assertion(client.client_id, fapi.clock.now()))
    form |= {"grant_type": "client_credentials"}
    r = await fapi.http.post("/oauth/token", data=form)
    assert error_of(r) == (400, "invalid_request")
    form = assertion_form(KEY.assertion(client.client_id, fapi.clock.now()))
    form |= {"grant_type": "client_credentials"}
    r = await fapi.http.post("/oauth/token", data=form, headers=proof(fapi))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"


async def test_an_expired_code_is_refused_after_60_seconds(fapi_partner: Partner) -> None:
    p = fapi_partner
    code, verifier = await pushed_code(p)
    p.h.clock.advance(61)
    r = await exchange(p, code, verifier, proof(p.h))
    assert error_of(r) == (400, "invalid_grant")


SECRET_REFUSALS = [
    ("token, basic", "/oauth/token", "basic", {"grant_type": "client_credentials"}),
    ("token, post", "/oauth/token", "post", {"grant_type": "client_credentials"}),
    ("par, basic", PAR, "basic", {}),
    ("par, post", PAR, "post", {}),
    ("introspection", "/oauth/introspect", "basic", {"token": "x"}),
    ("revocation", "/oauth/revoke", "basic", {"token": "x"}),
]


@pytest.mark.parametrize(
    ("path", "how", "form"), [c[1:] for c in SECRET_REFUSALS], ids=[c[0] for c in SECRET_REFUSALS]
)
async def test_a_client_secret_is_refused_with_a_clear_description(
    fapi: Harness, path: str, how: str, form: dict[str, str]
) -> None:
    """FAPI 2.0 §5.3.2.1: private_key_jwt or mutual TLS only; a right secret is not enough."""
    p = await make_partner(fapi, grant_types=("authorization_code", "client_credentials"))
    data = form | (p.params() if path == PAR else {})
    if how == "post":
        data |= {"client_id": p.app.client_id, "client_secret": p.secret}
        r = await fapi.http.post(path, data=data, headers=proof(fapi, path=path))
    else:
        auth = (p.app.client_id, p.secret)
        r = await fapi.http.post(path, data=data, auth=auth, headers=proof(fapi, path=path))
    assert error_of(r) == (401, "invalid_client"), r.text
    description = r.json()["error_description"]
    assert "FAPI 2.0" in description and "private_key_jwt" in description
    assert ("www-authenticate" in r.headers) == (how == "basic")


async def test_a_public_client_is_refused_at_par_and_in_the_query(fapi: Harness) -> None:
    p = await make_partner(fapi, public=True)
    _, challenge = pkce_pair()
    form = p.params(code_challenge=challenge, code_challenge_method="S256")
    r = await fapi.http.post(PAR, data=form)
    assert error_of(r) == (401, "invalid_client")
    q = query_of(sent_to(await _query_request(p)) or "")
    assert q["error"] == "invalid_request"


async def test_the_dialect_token_paths_are_off_under_the_servers_fapi2(fapi: Harness) -> None:
    """Under the server's fapi2 the dialects are off: their paths are not found."""
    assert (await fapi.http.post("/tpay/token", data={})).status_code == 404


# -- metadata (RFC 8414) ----------------------------------------------------------------------


async def _metadata(h: Harness) -> dict[str, Any]:
    r = await h.http.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    return dict(r.json())


async def test_fapi2_metadata_advertises_exactly_what_is_allowed(fapi: Harness) -> None:
    m = await _metadata(fapi)
    for endpoint in ("token", "introspection", "revocation"):
        assert m[f"{endpoint}_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert m[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == [
            "ES256",
            "PS256",
            "EdDSA",
        ]
    assert m["require_pushed_authorization_requests"] is True
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert m["response_types_supported"] == ["code"]
    assert m["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "EdDSA"]
    assert m["authorization_response_iss_parameter_supported"] is True
    assert m["pushed_authorization_request_endpoint"] == ISSUER + PAR


async def test_default_metadata_keeps_every_method(harness: Harness) -> None:
    m = await _metadata(harness)
    assert m["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    for endpoint in ("introspection", "revocation"):
        assert m[f"{endpoint}_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]
    assert m["require_pushed_authorization_requests"] is False


async def test_metadata_follows_the_configured_algorithms(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'app.db'}",
        profile="fapi2",
        compat=(),
        dpop_signing_algs=("ES256",),
        client_assertion_signing_algs=("PS256", "EdDSA"),
    )
    async with running_app(settings, clock) as h:
        m = await _metadata(h)
    assert m["dpop_signing_alg_values_supported"] == ["ES256"]
    for endpoint in ("token", "introspection", "revocation"):
        assert m[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ["PS256", "EdDSA"]
