"""Public keys that check compact JWS signatures (RFC 7515 §5.2), made once per JWK.

The two JWTs of a ``private_key_jwt`` + DPoP token request (the client assertion, RFC 7523
§3, and the proof, RFC 9449 §4.3) each need one signature checked. :class:`JwsKey` is the
verification key of one JWK and one algorithm, made once and kept by the verifiers
(:class:`JwsKeys`, a bounded LRU keyed by the JWK's canonical JSON), so that a request
builds no key object and no PyJWT object: an ECDSA signature (RFC 7518 §3.4, the 64-byte
``R || S`` of ES256) becomes DER with
:func:`~cryptography.hazmat.primitives.asymmetric.utils.encode_dss_signature` and is
verified by ``cryptography`` with an ``ECDSA`` object made once per key. This is what
PyJWT's ``ECAlgorithm.verify`` computes (a wrong length is a bad signature), without its
per-call objects. RSA and EdDSA keys verify through PyJWT's algorithm objects, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import Algorithm

from tokensmith.jwk import jwk_thumbprint

__all__ = ["JwsKey", "JwsKeys", "canonical_jwk"]

#: RFC 7518 §3.4: the hash of each ECDSA algorithm.
_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "ES256": hashes.SHA256,
    "ES384": hashes.SHA384,
    "ES512": hashes.SHA512,
}


def canonical_jwk(jwk: Mapping[str, Any]) -> str | None:
    """The JWK as JSON with sorted member names (a cache key: equal JWKs, equal text);
    ``None`` if it cannot be written as JSON."""
    try:
        return orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return None


class JwsKey:
    """The verification key of one JWK for one JWS algorithm (RFC 7515 §5.2 step 8)."""

    __slots__ = ("_algorithm", "_ecdsa", "_jwk", "_size", "_thumbprint", "alg", "key")

    def __init__(self, jwk: Mapping[str, Any], alg: str) -> None:
        """Raises :class:`ValueError` when ``jwk`` is not a valid key for ``alg``."""
        try:
            made = jwt.PyJWK(dict(jwk), alg)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise ValueError("not a valid key for " + alg) from None
        self.alg = alg
        self._jwk = jwk
        self._thumbprint: str | None = None
        #: The ``cryptography`` public key.
        self.key: Any = made.key
        self._algorithm: Algorithm = made.Algorithm
        self._ecdsa: ec.ECDSA | None = None
        self._size = 0
        if alg in _ECDSA_HASHES and isinstance(made.key, ec.EllipticCurvePublicKey):
            self._ecdsa = ec.ECDSA(_ECDSA_HASHES[alg]())
            self._size = (made.key.curve.key_size + 7) // 8

    def thumbprint(self) -> str:
        """The JWK's RFC 7638 thumbprint (DPoP's ``jkt``, RFC 9449 §6.1), computed once;
        :class:`ValueError` if the JWK lacks a required member."""
        if self._thumbprint is None:
            self._thumbprint = jwk_thumbprint(self._jwk)
        return self._thumbprint

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``signing_input``; never raises."""
        if self._ecdsa is None:
            try:
                return bool(self._algorithm.verify(signing_input, self.key, signature))
            except (jwt.PyJWTError, ValueError, TypeError):
                return False
        size = self._size
        if len(signature) != 2 * size:
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
        try:
            self.key.verify(der, signing_input, self._ecdsa)
        except InvalidSignature:
            return False
        return True


class JwsKeys:
    """:class:`JwsKey` objects by JWK and algorithm, the ``size`` most recently used kept
    (a client signs many assertions, and a DPoP key many proofs, with one key). A JWK that
    is no valid key is not kept: it raises :class:`ValueError` each time."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, str], JwsKey] = OrderedDict()

    def get(self, jwk: Mapping[str, Any], alg: str, canonical: str | None = None) -> JwsKey:
        """The key of ``jwk`` for ``alg`` (``canonical``: :func:`canonical_jwk` of it, if
        the caller has it)."""
        text = canonical if canonical is not None else canonical_jwk(jwk)
        if text is None:
            raise ValueError("the JWK is not JSON")
        found = self._keys.get((text, alg))
        if found is not None:
            self._keys.move_to_end((text, alg))
            return found
        key = JwsKey(jwk, alg)
        self._keys[(text, alg)] = key
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return key
