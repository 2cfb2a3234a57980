"""The guard with DPoP (RFC 9449 §7): proofs checked per §4.3, tokens bound by cnf.jkt,
challenges per §7.1, and Bearer left as it was when DPoP is off."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from dpop_fakes import (
    API,
    ath,
    hs256_proof,
    proof,
    public_jwk,
    small_rsa_key,
    thumbprint,
    unsigned_proof,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from resource_fakes import AUDIENCE, ISSUER, RS_CLIENT_ID, RS_SECRET, FakeIssuer, make_key, mint
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    AccessToken,
    BearerAuthMiddleware,
    DPoPVerifier,
    HmacNonceSource,
    InvalidDPoPProof,
    MemoryReplayCache,
    SyncTokenValidator,
    TokenValidator,
    UseDPoPNonce,
    jwk_thumbprint,
    require_scopes,
)

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

NOW = 1_700_000_000.0
SIGNER = make_key("ES256")  # the issuer's key
CLIENT = make_key("ES256")  # the client's DPoP key
OTHER = make_key("ES256")
JKT = thumbprint(public_jwk(CLIENT))
BOUND = mint(SIGNER, NOW, cnf={"jkt": JKT})
UNBOUND = mint(SIGNER, NOW)
ALGS = 'algs="ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512"'


def clock() -> float:
    return NOW


@require_scopes("read")
async def read(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse({"sub": token.sub, "kind": token.kind})


async def public(request: Request) -> JSONResponse:
    return JSONResponse({"anonymous": request.state.access_token is None})


def make_validator(issuer: FakeIssuer, dpop: str = "allowed", **kwargs: Any) -> TokenValidator:
    return TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        realm="payments",
        dpop=dpop,  # type: ignore[arg-type]
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        **kwargs,
    )


def app_for(validator: TokenValidator) -> Starlette:
    return Starlette(
        routes=[Route("/read", read, methods=["GET", "POST"]), Route("/public", public)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer([SIGNER], clock=clock)


@pytest.fixture
def call(issuer: FakeIssuer) -> Callable[..., Any]:
    async def go(
        headers: list[tuple[str, str]],
        *,
        method: str = "GET",
        path: str = "/read",
        dpop: str = "allowed",
        validator: TokenValidator | None = None,
        base_url: str = API,
        **kwargs: Any,
    ) -> httpx.Response:
        validator = validator or make_validator(issuer, dpop, **kwargs)
        transport = httpx.ASGITransport(app=app_for(validator))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.request(method, path, headers=headers)

    return go


def dpop(token: str, proof_value: str | None) -> list[tuple[str, str]]:
    headers = [("Authorization", f"DPoP {token}")]
    return headers + ([("DPoP", proof_value)] if proof_value is not None else [])


# -- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_a_bound_token_with_a_proof_of_its_key_is_accepted(issuer, call, alg):
    key = make_key(alg)
    token = mint(SIGNER, NOW, cnf={"jkt": thumbprint(public_jwk(key))})
    response = await call(dpop(token, proof(key, token, iat=NOW)))
    assert response.status_code == 200, response.headers.get("www-authenticate")
    assert response.json() == {"sub": "user-42", "kind": "jwt"}


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("PS256 with an RSA key", lambda: proof(make_key("RS256"), BOUND, iat=NOW, alg="PS256")),
        ("scheme in any case", None),
        (
            "explicit default port in htu",
            lambda: proof(CLIENT, BOUND, iat=NOW, htu=API + ":80/read"),
        ),
        (
            "upper-case host in htu",
            lambda: proof(CLIENT, BOUND, iat=NOW, htu="HTTP://TestServer/read"),
        ),
        ("iat a little ahead", lambda: proof(CLIENT, BOUND, iat=NOW + 4)),
        ("iat near the end of the window", lambda: proof(CLIENT, BOUND, iat=NOW - 60)),
        ("an extra claim", lambda: proof(CLIENT, BOUND, iat=NOW, extra="x")),
    ],
)
async def test_proof_variants_that_are_still_valid(issuer, call, case, make):
    if case == "PS256 with an RSA key":
        key = make_key("RS256")
        token = mint(SIGNER, NOW, cnf={"jkt": thumbprint(public_jwk(key))})
        headers = dpop(token, proof(key, token, iat=NOW, alg="PS256"))
    elif case == "scheme in any case":
        headers = [("Authorization", f"dpop {BOUND}"), ("DPoP", proof(CLIENT, BOUND, iat=NOW))]
    else:
        headers = dpop(BOUND, make())
    response = await call(headers)
    assert response.status_code == 200, response.headers.get("www-authenticate")


async def test_the_query_string_is_not_part_of_htu(call):
    response = await call(dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)), path="/read?page=2#top")
    assert response.status_code == 200


# -- refused: the negative table ------------------------------------------------------------

BAD_PROOFS: list[tuple[str, Callable[[], list[tuple[str, str]]], str, str]] = [
    (
        "wrong htu path",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htu=API + "/other")),
        "invalid_dpop_proof",
        "htu",
    ),
    (
        "wrong htu host",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htu="http://evil.test/read")),
        "invalid_dpop_proof",
        "htu",
    ),
    (
        "wrong htu scheme",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htu="https://testserver/read")),
        "invalid_dpop_proof",
        "htu",
    ),
    (
        "wrong htm",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htm="POST")),
        "invalid_dpop_proof",
        "htm",
    ),
    (
        "stale iat",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW - 120)),
        "invalid_dpop_proof",
        "iat",
    ),
    (
        "iat in the future",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW + 60)),
        "invalid_dpop_proof",
        "iat",
    ),
    (
        "wrong ath",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, ath=ath(UNBOUND))),
        "invalid_dpop_proof",
        "ath",
    ),
    (
        "no ath",
        lambda: dpop(BOUND, proof(CLIENT, None, iat=NOW)),
        "invalid_dpop_proof",
        "lacks ath",
    ),
    (
        "proof by another key (thumbprint mismatch)",
        lambda: dpop(BOUND, proof(OTHER, BOUND, iat=NOW)),
        "invalid_dpop_proof",
        "not the one the token is bound to",
    ),
    (
        "jwk of the bound key, signed by another",
        lambda: dpop(BOUND, proof(OTHER, BOUND, iat=NOW, jwk=public_jwk(CLIENT))),
        "invalid_dpop_proof",
        "signature",
    ),
    (
        "alg none",
        lambda: dpop(BOUND, unsigned_proof(CLIENT, BOUND, iat=NOW)),
        "invalid_dpop_proof",
        "algorithm not allowed",
    ),
    (
        "HS256",
        lambda: dpop(BOUND, hs256_proof(BOUND, iat=NOW)),
        "invalid_dpop_proof",
        "algorithm not allowed",
    ),
    ("missing proof", lambda: dpop(BOUND, None), "invalid_dpop_proof", "no DPoP proof"),
    (
        "two proofs",
        lambda: [
            *dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)),
            ("DPoP", proof(CLIENT, BOUND, iat=NOW)),
        ],
        "invalid_dpop_proof",
        "more than one",
    ),
    ("garbage proof", lambda: dpop(BOUND, "not-a-jwt"), "invalid_dpop_proof", "malformed"),
    (
        "typ JWT",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, header={"typ": "JWT"})),
        "invalid_dpop_proof",
        "typ",
    ),
    (
        "no jwk",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, header={"jwk": None})),
        "invalid_dpop_proof",
        "jwk",
    ),
    (
        "private key in jwk",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, jwk={**public_jwk(CLIENT), "d": "AAAA"})),
        "invalid_dpop_proof",
        "private",
    ),
    (
        "crit header",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, header={"crit": ["exp"]})),
        "invalid_dpop_proof",
        "critical",
    ),
    (
        "ES256 claimed by a P-384 key",
        lambda: dpop(
            BOUND,
            proof(CLIENT, BOUND, iat=NOW, jwk={**public_jwk(CLIENT), "crv": "P-384"}),
        ),
        "invalid_dpop_proof",
        "jwk",
    ),
    (
        "RSA key under 2048 bits",
        lambda: (lambda k: dpop(BOUND, proof(k, BOUND, iat=NOW)))(small_rsa_key()),
        "invalid_dpop_proof",
        "does not fit",
    ),
    *[
        (
            f"no {claim}",
            (lambda c: lambda: dpop(BOUND, proof(CLIENT, BOUND, **{"iat": NOW, c: None})))(claim),
            "invalid_dpop_proof",
            claim,
        )
        for claim in ("jti", "htm", "htu", "iat")
    ],
    (
        "iat not a number",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=str(int(NOW)))),
        "invalid_dpop_proof",
        "lacks iat",
    ),
    (
        "signature tampered",
        lambda: dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)[:-4] + "AAAA"),
        "invalid_dpop_proof",
        "signature",
    ),
    (
        "token not bound to any key",
        lambda: dpop(UNBOUND, proof(CLIENT, UNBOUND, iat=NOW)),
        "invalid_token",
        "not DPoP-bound",
    ),
    (
        "bad token under a good proof",
        lambda: dpop("x.y.z", proof(CLIENT, "x.y.z", iat=NOW)),
        "invalid_token",
        "malformed",
    ),
]


@pytest.mark.parametrize(
    ("case", "headers", "error", "reason"), BAD_PROOFS, ids=[c[0] for c in BAD_PROOFS]
)
async def test_bad_proofs_are_refused_with_a_dpop_challenge(call, case, headers, error, reason):
    response = await call(headers())
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="payments", DPoP realm="payments", ')
    assert f'error="{error}"' in challenge and ALGS in challenge
    assert reason in response.json()["error_description"]
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_a_replayed_proof_is_refused(issuer):
    validator = make_validator(issuer)
    headers = dpop(BOUND, proof(CLIENT, BOUND, iat=NOW))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_for(validator)), base_url=API
    ) as client:
        first = await client.get("/read", headers=headers)
        second = await client.get("/read", headers=headers)
    assert first.status_code == 200
    assert second.status_code == 401
    assert 'error="invalid_dpop_proof"' in second.headers["www-authenticate"]
    assert second.json()["error_description"] == "the DPoP proof was already used"


async def test_a_proof_refused_for_its_token_can_not_burn_its_jti(issuer):
    """The jti is recorded only once the whole request passed."""
    validator = make_validator(issuer)
    jti = "the-jti"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_for(validator)), base_url=API
    ) as client:
        bad = await client.get(
            "/read", headers=dpop(UNBOUND, proof(CLIENT, UNBOUND, iat=NOW, jti=jti))
        )
        good = await client.get(
            "/read", headers=dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, jti=jti))
        )
    assert bad.status_code == 401 and good.status_code == 200


# -- Bearer next to DPoP (RFC 9449 §7.2) ------------------------------------------------------


async def test_a_bound_token_presented_as_bearer_is_refused(call):
    response = await call([("Authorization", f"Bearer {BOUND}")])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="payments", error="invalid_token", '
        'error_description="a DPoP-bound token must come with the DPoP scheme", '
        f'DPoP realm="payments", {ALGS}'
    )


async def test_an_unbound_bearer_token_still_works_when_dpop_is_allowed(call):
    response = await call([("Authorization", f"Bearer {UNBOUND}")])
    assert response.status_code == 200


async def test_no_token_is_answered_with_both_challenges_when_dpop_is_allowed(call):
    response = await call([])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="payments", DPoP realm="payments", {ALGS}'
    )


async def test_required_dpop_refuses_bearer_tokens_with_a_dpop_challenge_only(call):
    response = await call([("Authorization", f"Bearer {UNBOUND}")], dpop="required")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'DPoP realm="payments", error="invalid_token", '
        'error_description="this API takes DPoP-bound tokens only (RFC 9449)", ' + ALGS
    )
    missing = await call([], dpop="required")
    assert missing.headers["www-authenticate"] == f'DPoP realm="payments", {ALGS}'
    ok = await call(dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)), dpop="required")
    assert ok.status_code == 200


async def test_insufficient_scope_goes_in_the_challenge_of_the_scheme_used(issuer, call):
    token = mint(SIGNER, NOW, cnf={"jkt": JKT}, scope="write")
    response = await call(dpop(token, proof(CLIENT, token, iat=NOW)))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="payments", DPoP realm="payments", error="insufficient_scope", '
        'error_description="the token lacks a required scope", scope="read", ' + ALGS
    )


async def test_a_malformed_dpop_authorization_is_invalid_request(call):
    response = await call([("Authorization", 'DPoP a"b')])
    assert response.status_code == 400
    assert 'DPoP realm="payments", error="invalid_request"' in response.headers["www-authenticate"]


# -- DPoP off: Bearer as before, and a bound token is still no bearer token -------------------


async def test_with_dpop_off_the_dpop_scheme_counts_as_no_token(call):
    response = await call(dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)), dpop="off")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="payments"'
    anonymous = await call(dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)), dpop="off", path="/public")
    assert anonymous.json() == {"anonymous": True}


async def test_with_dpop_off_bearer_answers_are_unchanged(call):
    ok = await call([("Authorization", f"Bearer {UNBOUND}")], dpop="off")
    bad = await call([("Authorization", "Bearer x.y.z")], dpop="off")
    assert ok.status_code == 200
    assert bad.headers["www-authenticate"] == (
        'Bearer realm="payments", error="invalid_token", error_description="malformed token"'
    )


@pytest.mark.parametrize("mode", ["off", "allowed"])
async def test_a_dpop_bound_token_presented_as_bearer_is_refused_in_every_mode(call, mode):
    response = await call([("Authorization", f"Bearer {BOUND}")], dpop=mode)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "DPoP-bound" in response.headers["www-authenticate"]


# -- nonces (RFC 9449 §9) ----------------------------------------------------------------------


@pytest.fixture
def nonces() -> HmacNonceSource:
    return HmacNonceSource(b"k" * 32, lifetime=300, clock=clock)


@pytest.mark.parametrize(
    ("case", "nonce"),
    [
        ("missing nonce", None),
        ("forged nonce", "AAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"),
        ("junk", "x"),
    ],
)
async def test_a_required_nonce_that_is_missing_or_wrong_gets_use_dpop_nonce(
    issuer, call, nonces, case, nonce
):
    reason = "a DPoP nonce is required" if nonce is None else "the DPoP nonce is stale"
    verifier = DPoPVerifier(nonces=nonces, clock=clock)
    response = await call(
        dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, nonce=nonce)), dpop_verifier=verifier
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="payments", DPoP realm="payments", error="use_dpop_nonce", '
        f'error_description="{reason}", ' + ALGS
    )
    assert nonces.valid(response.headers["dpop-nonce"])


async def test_a_fresh_nonce_is_accepted_and_an_old_one_is_not(issuer, nonces):
    now = [NOW]
    stamped = HmacNonceSource(b"k" * 32, lifetime=300, clock=lambda: now[0])
    nonce = stamped.issue()
    verifier = DPoPVerifier(nonces=stamped, clock=clock)
    validator = make_validator(issuer, dpop_verifier=verifier)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_for(validator)), base_url=API
    ) as client:
        ok = await client.get(
            "/read", headers=dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, nonce=nonce))
        )
        now[0] += 301
        late = await client.get(
            "/read", headers=dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, nonce=nonce))
        )
    assert ok.status_code == 200
    assert late.status_code == 401 and "use_dpop_nonce" in late.headers["www-authenticate"]


def test_nonce_sources_do_not_accept_each_others_nonces():
    one, two = HmacNonceSource(clock=clock), HmacNonceSource(clock=clock)
    assert one.valid(one.issue()) and not two.valid(one.issue())
    with pytest.raises(ValueError):
        HmacNonceSource(b"short")


# -- where the request came from ----------------------------------------------------------------


async def test_public_url_checks_htu_against_the_external_url(issuer, call):
    outside = "https://api.example.ge/v1"
    verifier = DPoPVerifier(public_url=outside + "/", clock=clock)
    good = proof(CLIENT, BOUND, iat=NOW, htu=outside + "/read")
    ok = await call(dpop(BOUND, good), base_url="http://10.0.0.7:8001", dpop_verifier=verifier)
    assert ok.status_code == 200
    refused = await call(
        dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htu=outside + "/read")),
        base_url="http://10.0.0.7:8001",
    )
    assert refused.status_code == 401 and "htu" in refused.json()["error_description"]


async def test_htu_is_the_path_as_sent_percent_encoding_normalised(call):
    response = await call(
        dpop(BOUND, proof(CLIENT, BOUND, iat=NOW, htu=API + "/%72ead")),
    )
    assert response.status_code == 200


# -- introspection, the sync validator, the guard without middleware ----------------------------


async def test_an_opaque_token_is_bound_by_the_introspection_cnf(issuer, call):
    issuer.introspection["opaque-dpop"] = {
        "active": True,
        "token_type": "DPoP",
        "scope": "read",
        "sub": "user-42",
        "cnf": {"jkt": JKT},
    }
    ok = await call(dpop("opaque-dpop", proof(CLIENT, "opaque-dpop", iat=NOW)))
    assert ok.status_code == 200 and ok.json()["kind"] == "opaque"
    as_bearer = await call([("Authorization", "Bearer opaque-dpop")])
    assert as_bearer.status_code == 401
    issuer.introspection["opaque-dpop"].pop("cnf")
    typed_only = await call([("Authorization", "Bearer opaque-dpop")])
    assert typed_only.status_code == 401
    assert "DPoP scheme" in typed_only.json()["error_description"]
    issuer.introspection["opaque-dpop"]["cnf"] = {"jkt": JKT}
    wrong_key = await call(dpop("opaque-dpop", proof(OTHER, "opaque-dpop", iat=NOW)))
    assert "not the one the token is bound to" in wrong_key.json()["error_description"]


def test_the_sync_validator_authenticates_dpop_requests(issuer):
    validator = SyncTokenValidator(
        ISSUER, AUDIENCE, http_client=issuer.sync_client(), clock=clock, dpop="required"
    )
    token = validator.authenticate(
        "DPoP", BOUND, method="GET", url=API + "/read", dpop_proofs=[proof(CLIENT, BOUND, iat=NOW)]
    )
    assert token.sub == "user-42"
    with pytest.raises(InvalidDPoPProof) as info:
        validator.authenticate(
            "dpop", BOUND, method="GET", url=API + "/x", dpop_proofs=[proof(CLIENT, BOUND, iat=NOW)]
        )
    assert info.value.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    assert info.value.with_realm("api").headers["WWW-Authenticate"].startswith('DPoP realm="api"')


async def test_the_guard_checks_dpop_by_itself_without_middleware(issuer):
    validator = make_validator(issuer)

    @require_scopes("read", validator=validator)
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.access_token.sub})

    app = Starlette(routes=[Route("/read", endpoint)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as c:
        ok = await c.get("/read", headers=dpop(BOUND, proof(CLIENT, BOUND, iat=NOW)))
        bad = await c.get("/read", headers=dpop(BOUND, proof(OTHER, BOUND, iat=NOW)))
    assert ok.json() == {"sub": "user-42"}
    assert bad.status_code == 401 and "invalid_dpop_proof" in bad.headers["www-authenticate"]


# -- pieces --------------------------------------------------------------------------------------


def test_the_thumbprint_matches_an_independent_implementation():
    import jwskate

    for alg in ("ES256", "RS256", "EdDSA"):
        jwk = public_jwk(make_key(alg))
        assert jwk_thumbprint(jwk) == thumbprint(jwk) == jwskate.Jwk(jwk).thumbprint()


def test_the_replay_cache_forgets_expired_entries_and_stays_bounded():
    now = [NOW]
    cache = MemoryReplayCache(max_entries=3, clock=lambda: now[0])
    assert cache.first_use("a", NOW + 10) and not cache.first_use("a", NOW + 10)
    now[0] += 11
    assert cache.first_use("a", now[0] + 10)
    for key in "bcde":
        assert cache.first_use(key, now[0] + 10)
    assert len(cache._seen) == 3


def test_errors_carry_their_own_challenge_even_outside_the_guard():
    exc = UseDPoPNonce("need a nonce", nonce="n-1", realm="r")
    assert exc.status_code == 401
    assert exc.headers["WWW-Authenticate"] == (
        'DPoP realm="r", error="use_dpop_nonce", error_description="need a nonce"'
    )
    assert exc.headers["DPoP-Nonce"] == "n-1"


def test_the_dpop_option_is_checked(issuer):
    with pytest.raises(ValueError):
        make_validator(issuer, dpop="sometimes")
    with pytest.raises(ValueError):
        make_validator(issuer, dpop="off", dpop_verifier=DPoPVerifier())
    with pytest.raises(ValueError):
        DPoPVerifier(algorithms=["HS256"])
    with pytest.raises(ValueError):
        DPoPVerifier(algorithms=["none"])


# -- fuzz: never a 500 ------------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.fixed_dictionaries(
        {
            "typ": st.sampled_from(["dpop+jwt", "JWT"]),
            "alg": st.sampled_from(["ES256", "RS256", "EdDSA", "none"]),
        },
        optional={
            "jwk": st.one_of(
                JSONISH,
                st.fixed_dictionaries(
                    {"kty": st.sampled_from(["EC", "RSA", "OKP", "oct"])},
                    optional={
                        "crv": JSONISH,
                        "x": JSONISH,
                        "y": JSONISH,
                        "n": JSONISH,
                        "e": JSONISH,
                    },
                ),
            ),
            "crit": JSONISH,
        },
    ),
    claims=st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), JSONISH),
    host=st.sampled_from(["testserver", "[::1", "a b", "x:99999", ""]),
)
def test_arbitrary_proofs_never_cause_a_500(issuer, header, claims, host):
    proof_value = f"{_segment(header)}.{_segment(claims)}.c2ln"
    validator = make_validator(
        issuer, dpop_verifier=DPoPVerifier(nonces=HmacNonceSource(), clock=clock)
    )

    async def go() -> int:
        transport = httpx.ASGITransport(app=app_for(validator))
        async with httpx.AsyncClient(transport=transport, base_url=API) as client:
            response = await client.get(
                "/read",
                headers=[("Authorization", f"DPoP {BOUND}"), ("DPoP", proof_value), ("Host", host)],
            )
            return response.status_code

    assert asyncio.run(go()) in (400, 401)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    claims=st.dictionaries(
        st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]),
        JSONISH | st.sampled_from(["GET", API + "/read", "http://[::1/read", "%zz", int(NOW)]),
    ),
    host=st.sampled_from(["testserver", "[::1", "a b", "x:99999", ""]),
)
def test_arbitrary_claims_in_a_validly_signed_proof_never_cause_a_500(issuer, claims, host):
    proof_value = jwt.encode(
        claims,
        CLIENT.private,
        algorithm="ES256",
        headers={"typ": "dpop+jwt", "jwk": public_jwk(CLIENT)},
    )
    validator = make_validator(
        issuer, dpop_verifier=DPoPVerifier(nonces=HmacNonceSource(), clock=clock)
    )

    async def go() -> int:
        transport = httpx.ASGITransport(app=app_for(validator))
        async with httpx.AsyncClient(transport=transport, base_url=API) as client:
            response = await client.get(
                "/read",
                headers=[("Authorization", f"DPoP {BOUND}"), ("DPoP", proof_value), ("Host", host)],
            )
            return response.status_code

    assert asyncio.run(go()) in (400, 401)
