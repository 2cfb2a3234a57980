"""JWT access tokens per RFC 9068, signed with the active key (RFC 7515)."""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import Algorithm, get_default_algorithms

from tokensmith.core.keys import LoadedKey, PrivateKey

__all__ = ["JwtCodec", "looks_like_jwt"]

_JWT_TYPE = "at+jwt"
_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()
#: Verified tokens remembered per codec (a codec lives until the next key reload).
_VERIFIED_CACHE_SIZE = 10_000
_ES256 = ec.ECDSA(hashes.SHA256())


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _es256_signer(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    """ES256 straight through ``cryptography``: the DER signature becomes the 64-byte
    ``R || S`` of RFC 7518 §3.4 (what PyJWT's algorithm object does, without its per-call
    checks and objects)."""

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, _ES256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def _signer(alg: str, key: PrivateKey) -> Callable[[bytes], bytes]:
    if (
        alg == "ES256"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return _es256_signer(key)
    algorithm: Algorithm = _ALGORITHMS[alg]
    return lambda data: algorithm.sign(data, key)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class JwtCodec:
    """Signs with one key, verifies against every published one."""

    def __init__(self, signing: LoadedKey, published: Sequence[LoadedKey], issuer: str) -> None:
        self._signing = signing
        self._by_kid = {k.kid: k for k in published}
        self._by_kid[signing.kid] = signing
        self._public = {k.kid: k.private_key.public_key() for k in self._by_kid.values()}
        self._issuer = issuer
        header = {"alg": signing.alg, "typ": _JWT_TYPE, "kid": signing.kid}
        self._header_b64 = _b64(orjson.dumps(header)) + b"."
        self._sign = _signer(signing.alg, signing.private_key)
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @property
    def signing_kid(self) -> str:
        return self._signing.kid

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set (RFC 7517 §5) of every published key."""
        return {"keys": [k.public_jwk for k in self._by_kid.values()]}

    def encode(self, claims: Mapping[str, Any]) -> str:
        """RFC 7515 §7.1 compact serialization of ``claims`` with header ``typ: at+jwt``
        (RFC 9068 §2.1). The header segment is encoded once per key."""
        signing_input = self._header_b64 + _b64(orjson.dumps(claims))
        signature = self._sign(signing_input)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def decode(self, token: str, now: float) -> dict[str, Any] | None:
        """Verify a token this server signed; ``None`` if it is not one, or it expired.

        RFC 9068 §4: checks ``typ``, the signature with the key named by ``kid``,
        ``iss`` and ``exp``. A token verified before is not verified again (the keys of a
        codec never change); its expiry is checked every time.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if claims is None:
                return None
            self._verified[token] = claims
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now >= exp:
            return None
        return claims

    def _verify(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        key = self._by_kid.get(str(header.get("kid", "")))
        if key is None or header.get("typ") != _JWT_TYPE or header.get("alg") != key.alg:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public[key.kid],
                algorithms=[key.alg],
                issuer=self._issuer,
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except (jwt.PyJWTError, ValueError):
            return None
        return claims
