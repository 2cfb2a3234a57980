"""The DPoP proof checks of RFC 9449 §4.3, the RFC 7638 thumbprint, server nonces (§8) and
the refresh-token key binding of §5, in the core (no HTTP, no database)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.dpop import TOKEN_URL, DpopKey, b64, unsigned
from tokensmith.core.clock import FrozenClock
from tokensmith.core.dpop import (
    DpopNonces,
    DpopPolicy,
    DpopVerifier,
    access_token_hash,
    check_refresh_binding,
    jwk_thumbprint,
    normalize_htu,
    proof_key,
)
from tokensmith.core.errors import InvalidDpopProof, InvalidGrant, UseDpopNonce
from tokensmith.core.models import Client
from tokensmith.core.requests import DpopRequest, TokenRequest
from tokensmith.storage.replay import MemoryReplayCache

SECRET = "dpop-test-secret-Hq3Zt7Lm1Vc9Rw5Kb2Ny8Pd4Gs6Jf0Xa"
ES256 = DpopKey.generate("ES256")
OTHER = DpopKey.generate("ES256")
PS256 = DpopKey.generate("PS256")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(float(int(time.time())))


def verifier(clock: FrozenClock, **policy: Any) -> DpopVerifier:
    nonces = DpopNonces.from_secret(SECRET, clock) if policy.get("require_nonce") else None
    return DpopVerifier(DpopPolicy(**policy), clock, MemoryReplayCache(clock), nonces)


def request(*proofs: str, method: str = "POST", uri: str = TOKEN_URL) -> DpopRequest:
    return DpopRequest(tuple(proofs), method, uri)


# -- RFC 7638 ---------------------------------------------------------------------------------

#: RFC 7638 §3.1: the example key and its thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
    "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6We"
    "Zu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_thumbprint_is_rfc7638s_example() -> None:
    assert jwk_thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_thumbprint_uses_only_the_required_members(alg: str) -> None:
    key = DpopKey.generate(alg)
    assert jwk_thumbprint(key.jwk | {"kid": "k1", "use": "sig"}) == key.jkt


def test_access_token_hash_is_base64url_sha256() -> None:
    # RFC 9449 §7.1's example token and its ath
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


# -- proofs that pass -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
async def test_a_valid_proof_answers_its_keys_thumbprint(clock: FrozenClock, alg: str) -> None:
    key = DpopKey.generate(alg)
    proof = await verifier(clock).verify(request(key.proof(iat=clock.now())))
    assert proof.jkt == key.jkt


@pytest.mark.parametrize(
    "htu",
    [
        "https://auth.example.test/oauth/token",
        "HTTPS://Auth.Example.TEST/oauth/token",
        "https://auth.example.test:443/oauth/token",
        "https://auth.example.test/oauth/token?x=1",
        "https://auth.example.test/oauth/token#frag",
        "https://auth.example.test/oauth/%74oken",
    ],
)
async def test_htu_is_compared_after_normalization(clock: FrozenClock, htu: str) -> None:
    """§4.3: query and fragment ignored; RFC 3986 §6.2.2-6.2.3 normalization."""
    await verifier(clock).verify(request(ES256.proof(htu, iat=clock.now())))


async def test_a_proof_is_accepted_at_the_edges_of_its_window(clock: FrozenClock) -> None:
    v = verifier(clock, max_age=60, leeway=5)
    await v.verify(request(ES256.proof(iat=clock.now() - 60)))
    await v.verify(request(ES256.proof(iat=clock.now() + 5)))


async def test_ath_is_checked_when_an_access_token_is_presented(clock: FrozenClock) -> None:
    v = verifier(clock)
    proof = ES256.proof(iat=clock.now(), access_token="at-123")
    await v.verify(request(proof), access_token="at-123")


# -- proofs that fail: RFC 9449 §4.3, one row per check ------------------------------------


def _hs256(now: float) -> str:
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": int(now)}
    return jwt.encode(claims, "x" * 32, "HS256", headers={"typ": "dpop+jwt", "jwk": ES256.jwk})


def _none(now: float) -> str:
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": int(now)}
    return unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": ES256.jwk}, claims)


def _forged(now: float) -> str:
    head, body, _ = ES256.proof(iat=now).split(".")
    return f"{head}.{body}.{b64(b'x' * 64)}"


def _swapped_claims(now: float) -> str:
    head, _, sig = ES256.proof(iat=now).split(".")
    _, body, _ = ES256.proof(iat=now, htm="GET").split(".")
    return f"{head}.{body}.{sig}"


def _small_rsa(now: float) -> str:
    with warnings.catch_warnings():  # PyJWT warns of the key size: the point of the case
        warnings.simplefilter("ignore")
        return DpopKey.generate("PS256", rsa_bits=1024).proof(iat=now)


Maker = Callable[[float], str]
#: (case, what the refusal says, the proof)
REFUSED: list[tuple[str, str, Maker]] = [
    (
        "wrong htu",
        "htu",
        lambda now: ES256.proof("https://auth.example.test/oauth/revoke", iat=now),
    ),
    ("wrong host", "htu", lambda now: ES256.proof("https://evil.example/oauth/token", iat=now)),
    (
        "http not https",
        "htu",
        lambda now: ES256.proof("http://auth.example.test/oauth/token", iat=now),
    ),
    (
        "other port",
        "htu",
        lambda now: ES256.proof("https://auth.example.test:8443/oauth/token", iat=now),
    ),
    ("wrong htm", "htm", lambda now: ES256.proof(htm="GET", iat=now)),
    ("lowercase htm", "htm", lambda now: ES256.proof(htm="post", iat=now)),
    ("stale iat", "too old", lambda now: ES256.proof(iat=now - 61)),
    ("future iat", "future", lambda now: ES256.proof(iat=now + 6)),
    ("iat a string", "needs an iat", lambda now: ES256.proof(claims={"iat": str(int(now))})),
    ("no iat", "needs an iat", lambda now: ES256.proof(drop=("iat",))),
    ("no jti", "needs a jti", lambda now: ES256.proof(iat=now, drop=("jti",))),
    ("jti not a string", "needs a jti", lambda now: ES256.proof(iat=now, claims={"jti": 7})),
    ("no htm", "htm", lambda now: ES256.proof(iat=now, drop=("htm",))),
    ("no htu", "htu", lambda now: ES256.proof(iat=now, drop=("htu",))),
    ("alg none", "alg must be", _none),
    ("alg HS256", "alg must be", _hs256),
    ("alg RS256 not allowed", "alg must be", lambda now: DpopKey.generate("RS256").proof(iat=now)),
    (
        "jwk of another key type",
        "not a key for PS256",
        lambda now: PS256.proof(iat=now, header={"jwk": ES256.jwk}),
    ),
    (
        "private key in jwk",
        "private key",
        lambda now: ES256.proof(iat=now, header={"jwk": ES256.private_jwk()}),
    ),
    ("no jwk", "no jwk", lambda now: ES256.proof(iat=now, header={"jwk": None})),
    ("jwk not an object", "no jwk", lambda now: ES256.proof(iat=now, header={"jwk": "key"})),
    (
        "crv not a string",
        "not a key for ES256",
        lambda now: ES256.proof(iat=now, header={"jwk": ES256.jwk | {"crv": ["P-256"]}}),
    ),
    (
        "jwk of another key",
        "signature",
        lambda now: ES256.proof(iat=now, header={"jwk": OTHER.jwk}),
    ),
    ("bad signature", "signature", _forged),
    ("claims swapped under a signature", "signature", _swapped_claims),
    ("missing typ", "typ", lambda now: ES256.proof(iat=now, header={"typ": None})),
    ("typ JWT", "typ", lambda now: ES256.proof(iat=now, header={"typ": "JWT"})),
    ("RSA key under 2048 bits", "2048 bits", _small_rsa),
    ("not a JWT", "not one JWT", lambda now: "not-a-jwt"),
    ("garbage JWT", "well-formed", lambda now: "a.b.c"),
]


@pytest.mark.parametrize(("case", "says", "make"), REFUSED, ids=[c for c, _, _ in REFUSED])
async def test_a_bad_proof_is_refused_with_invalid_dpop_proof(
    clock: FrozenClock, case: str, says: str, make: Maker
) -> None:
    v = verifier(clock, algorithms=("ES256", "PS256", "EdDSA"), max_age=60, leeway=5)
    with pytest.raises(InvalidDpopProof, match=says) as raised:
        await v.verify(request(make(clock.now())))
    assert raised.value.error == "invalid_dpop_proof" and raised.value.status == 400


async def test_two_dpop_headers_are_refused(clock: FrozenClock) -> None:
    v = verifier(clock)
    with pytest.raises(InvalidDpopProof, match="exactly one"):
        await v.verify(request(ES256.proof(iat=clock.now()), ES256.proof(iat=clock.now())))


async def test_a_replayed_proof_is_refused(clock: FrozenClock) -> None:
    v = verifier(clock)
    proof = ES256.proof(iat=clock.now())
    await v.verify(request(proof))
    clock.advance(30)
    with pytest.raises(InvalidDpopProof, match="used before") as raised:
        await v.verify(request(proof))
    assert raised.value.reason == "dpop_replay"


async def test_the_same_jti_under_another_key_is_another_proof(clock: FrozenClock) -> None:
    v = verifier(clock)
    await v.verify(request(ES256.proof(iat=clock.now(), jti="shared")))
    await v.verify(request(OTHER.proof(iat=clock.now(), jti="shared")))


async def test_a_refused_proof_does_not_spend_its_jti(clock: FrozenClock) -> None:
    """The jti is remembered only once every other check passed."""
    v = verifier(clock)
    with pytest.raises(InvalidDpopProof):
        await v.verify(request(ES256.proof(iat=clock.now(), jti="j1")), access_token="at")
    await v.verify(request(ES256.proof(iat=clock.now(), jti="j1")))


@pytest.mark.parametrize(
    "ath", [None, "wrong", access_token_hash("another token")], ids=["none", "junk", "other"]
)
async def test_a_wrong_ath_is_refused(clock: FrozenClock, ath: str | None) -> None:
    v = verifier(clock)
    proof = ES256.proof(iat=clock.now(), claims={"ath": ath})
    with pytest.raises(InvalidDpopProof, match="ath"):
        await v.verify(request(proof), access_token="the token")


# -- nonces (§8) ----------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", [None, "", "made-up", 42], ids=["none", "empty", "forged", "int"])
async def test_without_a_good_nonce_a_valid_proof_gets_use_dpop_nonce(
    clock: FrozenClock, nonce: Any
) -> None:
    v = verifier(clock, require_nonce=True)
    with pytest.raises(UseDpopNonce) as raised:
        await v.verify(request(ES256.proof(iat=clock.now(), claims={"nonce": nonce})))
    assert raised.value.error == "use_dpop_nonce" and raised.value.status == 400
    assert raised.value.nonce == v.nonce


async def test_the_servers_nonce_is_accepted_and_the_refusal_spent_no_jti(
    clock: FrozenClock,
) -> None:
    v = verifier(clock, require_nonce=True)
    with pytest.raises(UseDpopNonce) as raised:
        await v.verify(request(ES256.proof(iat=clock.now(), jti="j")))
    await v.verify(request(ES256.proof(iat=clock.now(), jti="j", nonce=raised.value.nonce)))


async def test_a_bad_proof_gets_invalid_dpop_proof_not_a_nonce(clock: FrozenClock) -> None:
    v = verifier(clock, require_nonce=True)
    with pytest.raises(InvalidDpopProof):
        await v.verify(request(_forged(clock.now())))


def test_nonces_live_one_to_two_slots_and_agree_across_instances(clock: FrozenClock) -> None:
    a = DpopNonces.from_secret(SECRET, clock, lifetime=100)
    b = DpopNonces.from_secret(SECRET, clock, lifetime=100)
    other = DpopNonces.from_secret(SECRET[::-1], clock, lifetime=100)
    clock.advance(100 - clock.now() % 100)  # the start of a slot
    nonce = a.current()
    assert b.current() == nonce and other.current() != nonce and not other.accepts(nonce)
    clock.advance(199)
    assert a.accepts(nonce) and a.current() != nonce
    clock.advance(1)
    assert not a.accepts(nonce) and not b.accepts(nonce)


# -- binding (§5) ---------------------------------------------------------------------------


def test_an_unbound_refresh_token_takes_any_proof_or_none() -> None:
    check_refresh_binding(None, None)
    check_refresh_binding(None, "jkt-a")


@pytest.mark.parametrize(("presented", "reason"), [(None, "missing"), ("jkt-b", "mismatch")])
def test_a_bound_refresh_token_needs_a_proof_of_its_key(presented: str | None, reason: str) -> None:
    with pytest.raises(InvalidGrant) as raised:
        check_refresh_binding("jkt-a", presented)
    assert raised.value.reason == f"dpop_key_{reason}"


async def test_a_client_that_requires_dpop_is_refused_without_a_proof(clock: FrozenClock) -> None:
    client = Client("c1", "c", ("read",), require_dpop=True)
    req = TokenRequest("client_credentials", {}, None)
    with pytest.raises(InvalidDpopProof, match="must send a DPoP proof"):
        await proof_key(verifier(clock), req, client)
    assert await proof_key(verifier(clock), req, Client("c2", "c", ("read",))) is None


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("HTTPS://A.Example/x", "https://a.example/x"),
        ("https://a.example", "https://a.example/"),
        ("http://a.example:80/x?q#f", "http://a.example/x"),
        ("http://a.example:8080/x", "http://a.example:8080/x"),
        ("https://[::1]:443/t", "https://[::1]/t"),
        ("https://a.example/%7euser/%2f", "https://a.example/~user/%2F"),
        ("ftp://a.example/x", None),
        ("/oauth/token", None),
        ("https://user@a.example/x", None),
        ("https://a.example:99999/x", None),
    ],
)
def test_normalize_htu(uri: str, normal: str | None) -> None:
    assert normalize_htu(uri) == normal


def test_policy_refuses_symmetric_and_unknown_algorithms() -> None:
    for algs in (("HS256",), ("none",), ()):
        with pytest.raises(ValueError):
            DpopPolicy(algorithms=algs)
