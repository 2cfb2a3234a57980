"""The codec's signatures, checked by PyJWT's own verification (RFC 7515, RFC 7518 §3)."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import pytest

from tokensmith.core.jwt_codec import JwtCodec
from tokensmith.core.keys import SUPPORTED_ALGS, KeySealer, generate_signing_key, load_key
from tokensmith.core.randomness import SystemRandomness

ISSUER = "https://auth.example"
#: Enough ES256 signatures that some R or S begin with a zero byte (1 in 128 per token;
#: none in 1,500 has a chance of about 1 in 100,000).
TOKENS = 1500


def _codec(alg: str) -> JwtCodec:
    sealer = KeySealer(["test-secret-key-" + "x" * 32])
    key = load_key(generate_signing_key(alg, sealer, SystemRandomness(), time.time()), sealer)
    return JwtCodec(key, [key], ISSUER)


def _published_key(codec: JwtCodec) -> Any:
    """The key a verifier takes from the JWKS."""
    (jwk,) = codec.jwks()["keys"]
    return jwt.PyJWK(jwk).key


def _signature(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_tokens_verify_with_pyjwt(alg: str) -> None:
    codec = _codec(alg)
    public = _published_key(codec)
    now = int(time.time())
    for n in range(20):
        claims = {"iss": ISSUER, "sub": "c", "jti": str(n), "iat": now, "exp": now + 60}
        token = codec.encode(claims)
        assert jwt.decode(token, public, algorithms=[alg], issuer=ISSUER) == claims
        assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
        assert codec.decode(token, now) == claims


def test_es256_signature_is_r_and_s_of_32_bytes_each() -> None:
    codec = _codec("ES256")
    public = _published_key(codec)
    tokens = [codec.encode({"iss": ISSUER, "jti": str(n)}) for n in range(TOKENS)]
    signatures = [_signature(t) for t in tokens]
    assert {len(s) for s in signatures} == {64}
    padded = [t for t, s in zip(tokens, signatures, strict=True) if s[0] == 0 or s[32] == 0]
    assert padded, "no short R or S was padded"
    for token in padded:
        assert jwt.decode(token, public, algorithms=["ES256"], issuer=ISSUER)["iss"] == ISSUER


def test_a_token_of_another_issuer_is_not_decoded_even_with_the_same_key() -> None:
    """Issuers sharing a database share its signing keys: only ``iss`` (RFC 9068 §4) tells
    their tokens apart, and decode refuses a foreign one, or one without ``iss``."""
    sealer = KeySealer(["test-secret-key-" + "x" * 32])
    key = load_key(generate_signing_key("ES256", sealer, SystemRandomness(), time.time()), sealer)
    ours, theirs = JwtCodec(key, [key], ISSUER), JwtCodec(key, [key], "https://other.example")
    now = int(time.time())
    claims = {"sub": "c", "jti": "j", "iat": now, "exp": now + 60}
    for token, codec in (
        (theirs.encode({"iss": "https://other.example"} | claims), ours),
        (ours.encode({"iss": ISSUER} | claims), theirs),
        (ours.encode(claims), ours),
        (ours.encode({"iss": ISSUER + "/"} | claims), ours),
    ):
        assert codec.decode(token, now) is None
    assert theirs.decode(theirs.encode({"iss": "https://other.example"} | claims), now)
