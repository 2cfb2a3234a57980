"""DPoP in the token client (RFC 9449): keys, proofs checked independently with PyJWT and
jwskate, nonces at the token endpoint and at the resource, the binding in the caches."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwskate
import jwt
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeClock
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tokensmith.client import (
    AsyncTokenClient,
    DPoPKey,
    FileTokenCache,
    InvalidDPoPProof,
    Token,
    TokenClient,
    TokenError,
    UseDPoPNonce,
)

TOKEN_URL = ISSUER + "/o/token/"
API = "https://api.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a proof with PyJWT alone: header and claims."""
    header = jwt.get_unverified_header(proof)
    key = jwt.PyJWK(header["jwk"], algorithm=header["alg"])
    claims = jwt.decode(
        proof, key=key.key, algorithms=[header["alg"]], options={"verify_iat": False}
    )
    return header, claims


@dataclass
class DPoPServer:
    """A token endpoint and an API that speak DPoP, checking proofs with PyJWT."""

    clock: Callable[[], float]
    token_type: str = "DPoP"
    as_nonce: str | None = None  # when set, token requests must carry it
    rs_nonce: str | None = None  # when set, API requests must carry it
    always_new_nonce: bool = False
    proofs: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    api_calls: list[dict[str, str]] = field(default_factory=list)  # headers as sent
    bound: dict[str, str] = field(default_factory=dict)  # access token -> jkt

    def __post_init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def _nonce_error(self, status: int, scheme_error: bool) -> httpx.Response:
        self._n += 1
        nonce = f"nonce-{self._n}"
        if scheme_error:
            self.rs_nonce = nonce
            return httpx.Response(
                401,
                headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": nonce},
            )
        self.as_nonce = nonce
        return httpx.Response(
            status, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": nonce}
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if request.url.path == "/o/token/":
                return self._token(request)
            return self._api(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.handle(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        proof = request.headers.get("dpop")
        header, claims = verify(proof) if proof else ({}, {})
        self.proofs.append(("token", header, claims))
        form = dict(parse_qsl(request.content.decode()))
        assert form["grant_type"] in ("client_credentials", "refresh_token", "authorization_code")
        if (
            proof
            and self.as_nonce is not None
            and (claims.get("nonce") != self.as_nonce or self.always_new_nonce)
        ):
            return self._nonce_error(400, scheme_error=False)
        token = f"at-{len(self.bound) + 1}"
        self.bound[token] = jwskate.Jwk(header["jwk"]).thumbprint() if proof else ""
        body = {"access_token": token, "token_type": self.token_type, "expires_in": 600}
        return httpx.Response(200, json=body)

    def _api(self, request: httpx.Request) -> httpx.Response:
        self.api_calls.append(dict(request.headers))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        proof = request.headers.get("dpop")
        if scheme != "DPoP" or not proof:
            return httpx.Response(401, headers={"WWW-Authenticate": 'DPoP algs="ES256"'})
        header, claims = verify(proof)
        self.proofs.append(("api", header, claims))
        if self.rs_nonce is not None and (
            claims.get("nonce") != self.rs_nonce or self.always_new_nonce
        ):
            return self._nonce_error(401, scheme_error=True)
        if self.bound.get(token) != jwskate.Jwk(header["jwk"]).thumbprint():
            return httpx.Response(401, headers={"WWW-Authenticate": 'DPoP error="invalid_token"'})
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> DPoPServer:
    return DPoPServer(clock)


@pytest.fixture
def make(server: DPoPServer, clock: FakeClock):
    made: list[TokenClient] = []

    def build(**kwargs: Any) -> TokenClient:
        kwargs.setdefault("dpop", True)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", lambda _s: None)
        kwargs.setdefault("http_client", httpx.Client(transport=httpx.MockTransport(server.handle)))
        tc = TokenClient(TOKEN_URL, CLIENT_ID, CLIENT_SECRET, **kwargs)
        made.append(tc)
        return tc

    yield build
    for tc in made:
        tc.close()


def api_client(server: DPoPServer, auth: httpx.Auth) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(server.handle), base_url=API, auth=auth)


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"])
def test_a_generated_key_signs_proofs_that_pyjwt_verifies(alg):
    key = DPoPKey.generate(alg)
    proof = key.proof("get", "https://api.test/p/1?x=2#frag", iat=1_700_000_000.5, nonce="n")
    header, claims = verify(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == alg
    assert "d" not in header["jwk"] and "kid" not in header
    assert claims == {
        "jti": claims["jti"],
        "htm": "GET",
        "htu": "https://api.test/p/1",
        "iat": 1_700_000_000,
        "nonce": "n",
    }
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) >= 12  # RFC 9449 §4.2: 96 bits
    assert key.thumbprint == jwskate.Jwk(header["jwk"]).thumbprint()


def test_the_default_key_is_es256_and_jtis_are_unique():
    key = DPoPKey.generate()
    jtis = {verify(key.proof("POST", TOKEN_URL, iat=0))[1]["jti"] for _ in range(50)}
    assert key.alg == "ES256" and len(jtis) == 50


def test_a_proof_for_a_resource_carries_ath():
    key = DPoPKey.generate()
    _, claims = verify(key.proof("GET", API, iat=0, access_token="at-1"))
    assert claims["ath"] == b64(hashlib.sha256(b"at-1").digest())


@pytest.mark.parametrize(
    ("make_private", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256"),
    ],
)
def test_own_keys_from_cryptography_pem_and_jwk(make_private, alg):
    private = make_private()
    from_object = DPoPKey(private)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    from_pem = DPoPKey.from_pem(pem)
    jwk = jwskate.Jwk(private).to_dict()
    from_jwk = DPoPKey.from_jwk(jwk)
    from_json = DPoPKey.from_jwk(json.dumps(jwk))
    keys = (from_object, from_pem, from_jwk, from_json)
    assert {k.alg for k in keys} == {alg}
    assert len({k.thumbprint for k in keys}) == 1
    verify(from_jwk.proof("GET", API, iat=0))


def test_an_encrypted_pem_and_an_explicit_rsa_alg():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    key = DPoPKey.from_pem(pem.decode(), password=b"pw", alg="RS256")
    assert verify(key.proof("GET", API, iat=0))[0]["alg"] == "RS256"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DPoPKey(ec.generate_private_key(ec.SECP256R1()), "ES384"), "does not fit"),
        (lambda: DPoPKey(ec.generate_private_key(ec.SECP256R1()), "HS256"), "unsupported"),
        (lambda: DPoPKey(ec.generate_private_key(ec.SECP256R1()), "none"), "unsupported"),
        (lambda: DPoPKey(ed25519.Ed25519PrivateKey.generate(), "PS256"), "does not fit"),
        (
            lambda: DPoPKey(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "fewer than 2048",
        ),
        (lambda: DPoPKey(ec.generate_private_key(ec.SECP256K1())), "curve"),
        (lambda: DPoPKey.generate("HS256"), "unsupported"),
        (lambda: DPoPKey.from_jwk(jwskate.Jwk.generate(alg="ES256").public_jwk()), "private"),
        (lambda: DPoPKey("not a key"), "EC, RSA"),  # type: ignore[arg-type]
    ],
)
def test_unusable_keys_and_algorithms_are_refused(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_the_key_never_shows_itself():
    key = DPoPKey.generate()
    text = repr(key) + str(key)
    assert key.thumbprint in text and "ES256" in text
    d = jwskate.Jwk(key._private).to_dict()["d"]
    assert d not in text


# -- the token endpoint ---------------------------------------------------------------------------


def test_every_token_request_carries_a_fresh_proof_and_the_token_is_bound(make, server, clock):
    tc = make()
    token = tc.get_token()
    clock.advance(1000)
    tc.get_token()
    assert token.token_type == "DPoP" and token.dpop_jkt == tc.dpop_key.thumbprint
    assert token.authorization == "DPoP at-1"
    (_, h1, c1), (_, h2, c2) = server.proofs
    assert c1["htm"] == "POST" and c1["htu"] == TOKEN_URL and "ath" not in c1
    assert c1["iat"] == int(clock.now - 1000) and c2["iat"] == int(clock.now)
    assert c1["jti"] != c2["jti"] and h1["jwk"] == h2["jwk"]
    assert "dpop_jkt" in repr(token) and "at-1" not in repr(token)


def test_use_dpop_nonce_at_the_token_endpoint_is_retried_once_with_the_nonce(make, server, clock):
    server.as_nonce = "first"
    tc = make()
    assert tc.get_token().access_token == "at-1"
    claims = [c for _, _, c in server.proofs]
    assert "nonce" not in claims[0] and claims[1]["nonce"] == "nonce-1"
    clock.advance(1000)
    tc.get_token()  # the remembered nonce goes along at once
    assert len(server.proofs) == 3 and server.proofs[2][2]["nonce"] == "nonce-1"


def test_a_server_that_keeps_asking_for_a_nonce_gets_one_retry_then_an_error(make, server):
    server.as_nonce, server.always_new_nonce = "x", True
    tc = make()
    with pytest.raises(UseDPoPNonce) as info:
        tc.get_token()
    assert info.value.error == "use_dpop_nonce" and len(server.proofs) == 2


def test_invalid_dpop_proof_from_the_token_endpoint_is_its_own_error(make, server):
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_dpop_proof"})

    tc = make(http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    with pytest.raises(InvalidDPoPProof):
        tc.get_token()


def test_a_bearer_answer_to_a_dpop_request_is_used_as_a_bearer_token(make, server):
    server.token_type = "Bearer"
    tc = make()
    token = tc.get_token()
    assert token.token_type == "Bearer" and token.dpop_jkt is None and not token.is_dpop
    request = httpx.Request("GET", API + "/x")
    tc._authorize(request, token)
    assert request.headers["authorization"] == "Bearer at-1" and "dpop" not in request.headers


def test_a_client_without_dpop_still_refuses_dpop_tokens(make, server):
    tc = make(dpop=False)
    with pytest.raises(TokenError, match="unsupported token_type"):
        tc.get_token()
    assert server.proofs == [("token", {}, {})]  # and it sent no proof


def test_dpop_needs_the_oauth_dialect():
    with pytest.raises(ValueError, match="oauth dialect"):
        TokenClient.tpay("id", "secret", dpop=True)


def test_the_authorization_url_names_the_key(make):
    tc = make(authorization_endpoint=ISSUER + "/o/authorize/")
    url = httpx.URL(tc.build_authorization_url("https://app.test/cb", state="s"))
    assert url.params["dpop_jkt"] == tc.dpop_key.thumbprint


# -- calling a resource ---------------------------------------------------------------------------


def test_resource_requests_carry_the_dpop_scheme_and_a_proof_with_ath(make, server, clock):
    tc = make()
    with api_client(server, tc) as api:
        assert api.post("/payments/7?expand=1", json={"a": 1}).status_code == 200
        assert api.get("/payments/").status_code == 200
    (_, _, c1), (_, _, c2) = [p for p in server.proofs if p[0] == "api"]
    assert server.api_calls[0]["authorization"] == "DPoP at-1"
    assert c1["htm"] == "POST" and c1["htu"] == API + "/payments/7"
    assert c2["htm"] == "GET" and c2["htu"] == API + "/payments/"
    assert c1["ath"] == b64(hashlib.sha256(b"at-1").digest()) and c1["jti"] != c2["jti"]


def test_a_resource_use_dpop_nonce_is_retried_once_and_the_nonce_kept(make, server):
    server.rs_nonce = "rs-first"
    tc = make()
    with api_client(server, tc) as api:
        assert api.get("/a").status_code == 200
        assert api.get("/b").status_code == 200
    nonces = [c.get("nonce") for kind, _, c in server.proofs if kind == "api"]
    assert nonces == [None, "nonce-1", "nonce-1"]
    token_nonces = [c.get("nonce") for kind, _, c in server.proofs if kind == "token"]
    assert token_nonces == [None]  # a nonce belongs to its server


def test_a_resource_that_keeps_asking_for_nonces_gets_its_401_after_one_retry(make, server):
    server.rs_nonce, server.always_new_nonce = "x", True
    tc = make()
    with api_client(server, tc) as api:
        response = api.get("/a")
    assert response.status_code == 401 and len(server.api_calls) == 2


def test_dpop_invalid_token_from_a_resource_renews_the_token(make, server):
    tc = make()
    with api_client(server, tc) as api:
        api.get("/a")
        server.bound["at-1"] = "revoked"
        assert api.get("/b").status_code == 200
    assert [h["authorization"] for h in server.api_calls] == [
        "DPoP at-1",
        "DPoP at-1",
        "DPoP at-2",
    ]


async def test_the_async_client_does_the_same(server, clock):
    server.as_nonce, server.rs_nonce = "a", "b"
    transport = httpx.MockTransport(server.ahandle)
    atc = AsyncTokenClient(
        TOKEN_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        dpop=DPoPKey.generate("EdDSA"),
        clock=clock,
        http_client=httpx.AsyncClient(transport=transport),
    )
    async with atc, httpx.AsyncClient(transport=transport, base_url=API, auth=atc) as api:
        assert (await api.get("/a?q=1")).status_code == 200
        assert (await api.delete("/b")).status_code == 200
    kinds = [(kind, c.get("nonce"), c["htm"]) for kind, _, c in server.proofs]
    assert kinds == [
        ("token", None, "POST"),
        ("token", "nonce-1", "POST"),
        ("api", None, "GET"),
        ("api", "nonce-2", "GET"),
        ("api", "nonce-2", "DELETE"),
    ]
    assert all(h["alg"] == "EdDSA" for _, h, _ in server.proofs)


# -- caches ---------------------------------------------------------------------------------------


def test_tokens_remember_their_binding_through_to_dict():
    token = Token("at", "DPoP", 100.0, dpop_jkt="jkt")
    assert Token.from_dict(token.to_dict()) == token
    with pytest.raises(ValueError):
        Token.from_dict({"access_token": "at", "token_type": "DPoP", "expires_at": 1.0})
    with pytest.raises(ValueError):
        Token.from_dict(
            {"access_token": "a", "token_type": "Bearer", "expires_at": 1.0, "dpop_jkt": "j"}
        )


def test_the_file_cache_never_hands_a_dpop_token_to_a_bearer_client(make, server, tmp_path):
    cache = FileTokenCache(tmp_path / "tokens.json")
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    dpop_a = make(cache=cache, dpop=DPoPKey.from_pem(pem))
    dpop_b = make(cache=cache, dpop=DPoPKey.from_pem(pem))  # another worker, same key
    other_key = make(cache=cache)
    server.token_type = "Bearer"
    bearer = make(cache=cache, dpop=False)
    server.token_type = "DPoP"
    assert dpop_a.get_token().access_token == "at-1"
    assert dpop_b.get_token().access_token == "at-1"  # shared: same key
    assert other_key.get_token().access_token == "at-2"  # not shared: another key
    server.token_type = "Bearer"
    plain = bearer.get_token()
    assert plain.access_token == "at-3" and plain.token_type == "Bearer"


def test_a_dpop_record_under_a_bearer_key_is_not_adopted(make, server, tmp_path):
    cache = FileTokenCache(tmp_path / "tokens.json")
    server.token_type = "Bearer"
    bearer = make(cache=cache, dpop=False)
    planted = Token("stolen", "DPoP", bearer._clock() + 600, dpop_jkt="someone-else", issued_at=0)
    with cache.locked():
        cache.store(bearer._cache_key, planted)
    assert bearer.get_token().access_token == "at-1"


# -- reading challenges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('Bearer realm="api"', [("bearer", {"realm": "api"})]),
        (
            'Bearer realm="api", DPoP error="use_dpop_nonce", algs="ES256 EdDSA"',
            [
                ("bearer", {"realm": "api"}),
                ("dpop", {"error": "use_dpop_nonce", "algs": "ES256 EdDSA"}),
            ],
        ),
        ("DPoP error=invalid_token", [("dpop", {"error": "invalid_token"})]),
        (
            'Bearer realm="a, error=\\"invalid_token\\""',
            [("bearer", {"realm": 'a, error="invalid_token"'})],
        ),
        ("Basic, DPoP", [("basic", {}), ("dpop", {})]),
        ("", []),
    ],
)
def test_challenges_are_read_scheme_by_scheme(value, expected):
    from tokensmith.client._base import challenge_says_invalid_token, parse_challenges

    assert parse_challenges(value) == expected
    assert challenge_says_invalid_token(value) == any(
        p.get("error") == "invalid_token" for _, p in expected
    )
