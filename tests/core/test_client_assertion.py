"""private_key_jwt assertions (RFC 7523 §3) checked by the core verifier: every refusal,
the single use of a ``jti``, keys registered inline or fetched from a ``jwks_uri``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.assertions import ISSUER, TOKEN_URL, ClientKey
from tests.dpop import DpopKey, unsigned
from tokensmith.core.client_assertion import (
    AssertionPolicy,
    AssertionRefused,
    AssertionVerifier,
    ClientKeys,
    assertion_client_id,
    check_jwks_uri,
    parse_jwks,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client
from tokensmith.core.ports import JwksUnavailable
from tokensmith.storage.replay import MemoryReplayCache

KEY = ClientKey.generate("ES256", kid="k1")
OTHER = ClientKey.generate("ES256", kid="k1")  # same kid, another key
PS = ClientKey.generate("PS256", kid="ps")
ED = ClientKey.generate("EdDSA", kid="ed")
CID = "c_assert"
PAR_URL = ISSUER + "/oauth/par"


class FakeFetcher:
    """A jwks_uri whose answer the test sets; counts fetches."""

    def __init__(self, body: str | Exception) -> None:
        self.body = body
        self.fetches = 0

    async def fetch(self, uri: str) -> bytes:
        self.fetches += 1
        if isinstance(self.body, Exception):
            raise self.body
        return self.body.encode()

    async def aclose(self) -> None:
        pass


def client(**kw: Any) -> Client:
    kw.setdefault("jwks", KEY.jwks(PS, ED))
    return Client(CID, "keyed", ("read",), auth_methods=("private_key_jwt",), **kw)


def verifier(
    clock: FrozenClock, fetcher: FakeFetcher | None = None, **policy: Any
) -> AssertionVerifier:
    p = AssertionPolicy(**policy)
    return AssertionVerifier(
        p, clock, MemoryReplayCache(clock), ClientKeys(fetcher, clock, p), (ISSUER, TOKEN_URL)
    )


@pytest.mark.parametrize("key", [KEY, PS, ED], ids=lambda k: k.alg)
async def test_each_fapi_algorithm_is_accepted(clock: FrozenClock, key: ClientKey) -> None:
    await verifier(clock).verify(client(), key.assertion(CID, clock.now()), TOKEN_URL)


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_URL, [ISSUER, "x"], PAR_URL])
async def test_the_issuer_the_token_endpoint_or_the_receiving_endpoint_is_the_audience(
    clock: FrozenClock, aud: Any
) -> None:
    await verifier(clock).verify(client(), KEY.assertion(CID, clock.now(), aud=aud), PAR_URL)


def _now(clock: FrozenClock) -> float:
    return clock.now()


HS256 = "hs256"
NONE = "none"
#: name -> (assertion maker, expected words of the description)
CASES: dict[str, tuple[Callable[[float], str], str]] = {
    "wrong iss": (lambda n: KEY.assertion(CID, n, claims={"iss": "other"}), "iss"),
    "wrong sub": (lambda n: KEY.assertion(CID, n, claims={"sub": "other"}), "sub"),
    "no sub": (lambda n: KEY.assertion(CID, n, drop=("sub",)), "sub"),
    "wrong aud": (lambda n: KEY.assertion(CID, n, aud="https://elsewhere/"), "aud"),
    "aud of another endpoint": (lambda n: KEY.assertion(CID, n, aud=PAR_URL), "aud"),
    "no aud": (lambda n: KEY.assertion(CID, n, drop=("aud",)), "aud"),
    "expired": (lambda n: KEY.assertion(CID, n - 120, lifetime=60), "expired"),
    "no exp": (lambda n: KEY.assertion(CID, n, drop=("exp",)), "exp"),
    "exp not a number": (lambda n: KEY.assertion(CID, n, claims={"exp": "soon"}), "exp"),
    "lifetime too long": (lambda n: KEY.assertion(CID, n, lifetime=301), "at most 300"),
    "too long without iat": (
        lambda n: KEY.assertion(CID, n, lifetime=400, drop=("iat",)),
        "at most 300",
    ),
    "iat in the future": (lambda n: KEY.assertion(CID, n + 60), "iat"),
    "nbf in the future": (lambda n: KEY.assertion(CID, n, claims={"nbf": int(n) + 30}), "nbf"),
    "no jti": (lambda n: KEY.assertion(CID, n, drop=("jti",)), "jti"),
    "empty jti": (lambda n: KEY.assertion(CID, n, claims={"jti": ""}), "jti"),
    "alg none": (
        lambda n: unsigned({"alg": "none", "kid": "k1"}, {"iss": CID, "sub": CID}),
        "alg",
    ),
    "signed by another key": (lambda n: OTHER.assertion(CID, n), "signature"),
    "unknown kid": (lambda n: KEY.assertion(CID, n, header={"kid": "nope"}), "signature"),
    "alg not allowed (RS256)": (
        lambda n: jwt.encode(
            {"iss": CID, "sub": CID}, PS.key.private, algorithm="RS256", headers={"kid": "ps"}
        ),
        "alg",
    ),
    "alg of another key type": (lambda n: KEY.assertion(CID, n, header={"kid": "ps"}), "sig"),
    "crit": (lambda n: KEY.assertion(CID, n, header={"crit": ["x"], "x": 1}), "crit"),
    "not a JWT": (lambda n: "abc.def", "not a signed JWT"),
    "garbage segments": (lambda n: "a!b.c.d", "well-formed"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_bad_assertion_is_refused(clock: FrozenClock, name: str) -> None:
    make, words = CASES[name]
    with pytest.raises(AssertionRefused) as caught:
        await verifier(clock).verify(client(), make(clock.now()), TOKEN_URL)
    assert words in caught.value.description


async def test_hs256_is_client_secret_jwt_and_refused_with_a_reason(clock: FrozenClock) -> None:
    """tokensmith keeps only a hash of secrets: an HMAC cannot be verified."""
    token = jwt.encode(
        {"iss": CID, "sub": CID, "aud": TOKEN_URL, "exp": clock.now() + 60, "jti": "j"},
        "a-client-secret-of-32-bytes-or-more!!",
        algorithm="HS256",
    )
    with pytest.raises(AssertionRefused) as caught:
        await verifier(clock).verify(client(), token, TOKEN_URL)
    assert caught.value.reason == "client_secret_jwt"
    assert "not accepted from this client" in caught.value.description


async def test_hs256_keyed_by_the_public_key_is_refused(clock: FrozenClock) -> None:
    """The classic alg confusion: HMAC keyed by the public JWK's bytes."""
    token = unsigned({"alg": "HS256", "kid": "k1"}, {"iss": CID, "sub": CID}, b"x" * 32)
    with pytest.raises(AssertionRefused, match="client_secret_jwt"):
        await verifier(clock).verify(client(), token, TOKEN_URL)


async def test_a_jti_is_used_once_until_exp(clock: FrozenClock) -> None:
    v = verifier(clock)
    token = KEY.assertion(CID, clock.now(), claims={"jti": "once"})
    await v.verify(client(), token, TOKEN_URL)
    with pytest.raises(AssertionRefused) as caught:
        await v.verify(client(), token, TOKEN_URL)
    assert caught.value.reason == "assertion_replay"
    # another assertion with the same jti, while the first is alive, is a replay too
    again = KEY.assertion(CID, clock.now(), claims={"jti": "once"}, lifetime=30)
    with pytest.raises(AssertionRefused, match="used before"):
        await v.verify(client(), again, TOKEN_URL)


async def test_a_refused_assertion_does_not_use_up_its_jti(clock: FrozenClock) -> None:
    v = verifier(clock)
    bad = OTHER.assertion(CID, clock.now(), claims={"jti": "j1"})
    with pytest.raises(AssertionRefused):
        await v.verify(client(), bad, TOKEN_URL)
    await v.verify(client(), KEY.assertion(CID, clock.now(), claims={"jti": "j1"}), TOKEN_URL)


async def test_the_leeway_allows_a_clock_a_little_ahead(clock: FrozenClock) -> None:
    await verifier(clock).verify(client(), KEY.assertion(CID, clock.now() + 4), TOKEN_URL)


async def test_the_algorithms_are_a_setting(clock: FrozenClock) -> None:
    v = verifier(clock, algorithms=("ES256",))
    with pytest.raises(AssertionRefused, match="alg must be one of ES256"):
        await v.verify(client(), PS.assertion(CID, clock.now()), TOKEN_URL)


# -- jwks_uri ---------------------------------------------------------------------------------


async def test_keys_at_a_jwks_uri_are_fetched_once_then_cached(clock: FrozenClock) -> None:
    fetcher = FakeFetcher(KEY.jwks())
    v = verifier(clock, fetcher)
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    for _ in range(3):
        await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 1
    clock.advance(301)
    await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 2


async def test_an_unknown_kid_refetches_once(clock: FrozenClock) -> None:
    fetcher = FakeFetcher(KEY.jwks())
    v = verifier(clock, fetcher)
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    clock.advance(11)
    fetcher.body = KEY.jwks(ED)  # the client added a key
    await v.verify(c, ED.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 2
    # a kid nobody has: one refetch at most per interval, then refused
    with pytest.raises(AssertionRefused, match="signature"):
        await v.verify(c, KEY.assertion(CID, clock.now(), header={"kid": "ghost"}), TOKEN_URL)
    assert fetcher.fetches == 2


@pytest.mark.parametrize(
    "body",
    [JwksUnavailable("no answer within 3 s"), "not json", '{"keys": []}'],
    ids=["unreachable", "not json", "empty"],
)
async def test_an_unusable_jwks_uri_refuses(clock: FrozenClock, body: Any) -> None:
    v = verifier(clock, FakeFetcher(body))
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    with pytest.raises(AssertionRefused) as caught:
        await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    assert caught.value.reason == "jwks_unavailable"


async def test_a_fetched_set_with_a_private_key_is_refused(clock: FrozenClock) -> None:
    leaked = json.dumps({"keys": [KEY.key.private_jwk() | {"kid": "k1"}]})
    v = verifier(clock, FakeFetcher(leaked))
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    with pytest.raises(AssertionRefused, match="private"):
        await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)


# -- registration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwks", "words"),
    [
        (json.dumps({"keys": [KEY.key.private_jwk()]}), "private"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "private"),
        (json.dumps({"keys": [KEY.public_jwk | {"kty": "XYZ"}]}), "not supported"),
        (json.dumps({"keys": [KEY.public_jwk | {"use": "enc"}]}), "use: sig"),
        (json.dumps({"keys": [KEY.public_jwk | {"alg": "PS256"}]}), "does not fit"),
        (json.dumps({"keys": [KEY.public_jwk | {"x": "AAAA"}]}), "not a valid key"),
        (json.dumps({"keys": []}), "non-empty"),
        (json.dumps([KEY.public_jwk]), "JSON object"),
        ("{", "not JSON"),
        ("{" + " " * 70_000 + "}", "at most"),
    ],
)
def test_a_registered_jwks_holds_public_signing_keys(jwks: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_jwks(jwks)


def test_a_small_rsa_key_is_refused() -> None:
    small = ClientKey(DpopKey.generate("PS256", 1024), "s")
    with pytest.raises(ValueError, match="2048"):
        parse_jwks(small.jwks())


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.example/jwks",
        "ftp://rp.example/jwks",
        "https://user:pw@rp.example/jwks",
        "/jwks",
        "https://rp.example/jwks#frag",
    ],
)
def test_a_jwks_uri_is_https(uri: str) -> None:
    with pytest.raises(ValueError):
        check_jwks_uri(uri)


@pytest.mark.parametrize("uri", ["https://rp.example/jwks", "http://127.0.0.1:8080/jwks"])
def test_https_or_loopback_http_jwks_uris_are_accepted(uri: str) -> None:
    assert check_jwks_uri(uri, allow_loopback=True) == uri


def test_the_client_id_of_an_assertion_is_its_sub(clock: FrozenClock) -> None:
    assert assertion_client_id(KEY.assertion(CID, clock.now())) == CID
    assert assertion_client_id("x.y.z") is None
    assert assertion_client_id(KEY.assertion(CID, clock.now(), drop=("sub",))) is None


async def test_a_failed_fetch_is_not_retried_at_once(clock: FrozenClock) -> None:
    """No one makes the server fetch a failing jwks_uri in a loop."""
    fetcher = FakeFetcher(JwksUnavailable("it answered HTTP 500"))
    v = verifier(clock, fetcher)
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    for _ in range(3):
        with pytest.raises(AssertionRefused, match="HTTP 500"):
            await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 1
    clock.advance(10)
    fetcher.body = KEY.jwks()
    await v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL)
    assert fetcher.fetches == 2


async def test_concurrent_requests_share_one_fetch(clock: FrozenClock) -> None:
    import asyncio

    release = asyncio.Event()

    class SlowFetcher(FakeFetcher):
        async def fetch(self, uri: str) -> bytes:
            self.fetches += 1
            await release.wait()
            return KEY.jwks().encode()

    fetcher = SlowFetcher(KEY.jwks())
    v = verifier(clock, fetcher)
    c = client(jwks=None, jwks_uri="https://rp.example/jwks")
    pending = [
        asyncio.ensure_future(v.verify(c, KEY.assertion(CID, clock.now()), TOKEN_URL))
        for _ in range(5)
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*pending)
    assert fetcher.fetches == 1


# -- client_secret_jwt ------------------------------------------------------------------------

SECRET = "s" * 86


def secret_client() -> Client:
    from tokensmith.core.models import ClientSecret

    sealed = ClientSecret("h" * 64, 0.0, sealed="sealed:" + SECRET)
    return Client(CID, "hs", ("read",), secrets=(sealed,), auth_methods=("client_secret_jwt",))


def hs_verifier(
    clock: FrozenClock, unseal: Callable[[str], str | None] | None
) -> AssertionVerifier:
    p = AssertionPolicy(hmac_algorithms=("HS256", "HS384", "HS512"))
    keys = ClientKeys(None, clock, p)
    return AssertionVerifier(p, clock, MemoryReplayCache(clock), keys, (ISSUER, TOKEN_URL), unseal)


def _unseal(sealed: str) -> str | None:
    return sealed.removeprefix("sealed:") if sealed.startswith("sealed:") else None


def hs_token(clock: FrozenClock, key: str = SECRET, alg: str = "HS256") -> str:
    claims = {"iss": CID, "sub": CID, "aud": TOKEN_URL, "exp": clock.now() + 60, "jti": "j"}
    return jwt.encode(claims, key, algorithm=alg)


async def test_a_client_secret_jwt_assertion_verifies_with_the_opened_secret(
    clock: FrozenClock,
) -> None:
    await hs_verifier(clock, _unseal).verify(secret_client(), hs_token(clock), TOKEN_URL)


@pytest.mark.parametrize(
    ("unseal", "token", "words"),
    [
        (None, lambda c: hs_token(c), "not accepted by this server"),
        (lambda s: None, lambda c: hs_token(c), "does not verify"),
        (_unseal, lambda c: hs_token(c, key="t" * 86), "does not verify"),
        (_unseal, lambda c: KEY.assertion(CID, c.now()), "alg must be one of HS256"),
    ],
    ids=["no unsealing", "sealed with another server key", "wrong secret", "asymmetric alg"],
)
async def test_client_secret_jwt_refusals(
    clock: FrozenClock, unseal: Any, token: Callable[[FrozenClock], str], words: str
) -> None:
    with pytest.raises(AssertionRefused, match=words):
        await hs_verifier(clock, unseal).verify(secret_client(), token(clock), TOKEN_URL)


def test_only_hmac_algorithms_may_be_hmac_algorithms() -> None:
    with pytest.raises(ValueError, match="HMAC"):
        AssertionPolicy(hmac_algorithms=("ES256",))
