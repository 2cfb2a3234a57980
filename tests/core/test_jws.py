"""Verification keys made once per JWK (``tokensmith.core.jws``): the same answers as
PyJWT's algorithms, for every signature they are given."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from tokensmith.core.jws import JwsKey, JwsKeys

DATA = b"eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0"
ALGORITHMS = get_default_algorithms()


def _key(alg: str) -> Any:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        return ec.generate_private_key(curve[alg])
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private: Any, alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = ALGORITHMS[alg].to_jwk(private.public_key(), as_dict=True)
    return jwk


def _mangled(signature: bytes) -> dict[str, bytes]:
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    return {
        "right": signature,
        "one bit flipped": flipped,
        "one byte short": signature[:-1],
        "one byte long": signature + b"\0",
        "empty": b"",
        "r and s swapped": signature[len(signature) // 2 :] + signature[: len(signature) // 2],
    }


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"])
def test_every_signature_gets_the_answer_pyjwt_gives(alg: str) -> None:
    private = _key(alg)
    key = JwsKey(_jwk(private, alg), alg)
    reference = jwt.PyJWK(_jwk(private, alg), alg)
    for name, signature in _mangled(ALGORITHMS[alg].sign(DATA, private)).items():
        expected = reference.Algorithm.verify(DATA, reference.key, signature)
        assert key.verify(DATA, signature) is expected, name
    assert key.verify(DATA, ALGORITHMS[alg].sign(DATA, private))


def test_a_signature_of_other_data_or_another_key_does_not_verify() -> None:
    private, other = _key("ES256"), _key("ES256")
    key = JwsKey(_jwk(private, "ES256"), "ES256")
    assert not key.verify(DATA + b"x", ALGORITHMS["ES256"].sign(DATA, private))
    assert not key.verify(DATA, ALGORITHMS["ES256"].sign(DATA, other))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "P-256"},
        {"kty": "oct", "k": "c2VjcmV0"},
    ],
    ids=["not on the curve", "no coordinates", "symmetric"],
)
def test_a_jwk_that_is_no_key_is_refused_every_time(jwk: dict[str, Any]) -> None:
    keys = JwsKeys()
    for _ in range(2):
        with pytest.raises(ValueError):
            keys.get(jwk, "ES256")


def test_keys_are_made_once_per_jwk_and_algorithm_and_the_oldest_leave() -> None:
    keys = JwsKeys(size=2)
    jwks = [_jwk(_key("ES256"), "ES256") for _ in range(3)]
    first = keys.get(jwks[0], "ES256")
    assert keys.get(dict(reversed(jwks[0].items())), "ES256") is first  # member order
    keys.get(jwks[1], "ES256")
    keys.get(jwks[2], "ES256")
    assert keys.get(jwks[0], "ES256") is not first  # made again after it left
