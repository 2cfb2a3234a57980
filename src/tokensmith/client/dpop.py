"""DPoP proof keys and proofs for the token client (RFC 9449).

A :class:`DPoPKey` holds the client's private key and signs DPoP proofs (RFC 9449 §4.2):
JWTs typed ``dpop+jwt`` whose header carries the public key (``jwk``) and whose claims
bind the proof to one HTTP request (``htm``, ``htu``), one moment (``iat``), one use
(``jti``) and, at a resource, one access token (``ath``).  The key's RFC 7638 thumbprint
is what a DPoP-bound access token's ``cnf.jkt`` names (RFC 9449 §6.1).

Only asymmetric algorithms are supported: ES256 (the default for a generated key),
ES384, ES512, EdDSA (Ed25519, Ed448), PS256/384/512 and RS256/384/512.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tokensmith.jwk import (
    ASYMMETRIC_ALGORITHMS,
    THUMBPRINT_MEMBERS,
    access_token_hash,
    jwk_thumbprint,
)

__all__ = [
    "DPOP_ALGORITHMS",
    "DPoPKey",
    "access_token_hash",
    "htu_of",
    "jwk_thumbprint",
]

#: Signature algorithms a :class:`DPoPKey` can sign with (RFC 9449 §4.2: asymmetric only).
DPOP_ALGORITHMS: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
_EC_CURVES: dict[str, str] = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_MIN_RSA_BITS = 2048

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def htu_of(url: str | httpx.URL) -> str:
    """``htu`` (RFC 9449 §4.2): the request's target URI without query and fragment."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


def _default_alg(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = _EC_CURVES.get(key.curve.name)
        if alg is None:
            raise ValueError(f"unsupported EC curve {key.curve.name!r} (P-256, P-384, P-521)")
        return alg
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return "EdDSA"
    return "PS256"


def _check_alg(key: PrivateKey, alg: str) -> None:
    """The algorithm must be asymmetric and fit the key (RFC 7518 §3.1, RFC 8037 §3.1)."""
    if alg not in DPOP_ALGORITHMS:
        raise ValueError(f"unsupported DPoP algorithm {alg!r}; one of {DPOP_ALGORITHMS}")
    if isinstance(key, rsa.RSAPrivateKey):
        if not alg.startswith(("PS", "RS")):
            raise ValueError(f"{alg} does not fit an RSA key (PS256 ... RS512)")
        if key.key_size < _MIN_RSA_BITS:
            raise ValueError(f"RSA keys of fewer than {_MIN_RSA_BITS} bits are refused")
    elif _default_alg(key) != alg:
        raise ValueError(f"{alg} does not fit this key (use {_default_alg(key)})")


def _public_jwk(key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    data: dict[str, Any]
    if isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {m: data[m] for m in THUMBPRINT_MEMBERS[data["kty"]]}


class DPoPKey:
    """A DPoP proof-of-possession key (RFC 9449).

    ``DPoPKey.generate()`` makes a new P-256 key (ES256); ``DPoPKey(private_key)`` takes
    a ``cryptography`` private key (EC P-256/384/521, Ed25519/Ed448, RSA >= 2048 bits,
    PS256 by default); :meth:`from_pem` and :meth:`from_jwk` read one.  ``repr()`` shows
    the algorithm and the thumbprint, never the key.
    """

    __slots__ = ("_private", "alg", "public_jwk", "thumbprint")

    def __init__(self, private_key: PrivateKey, alg: str | None = None) -> None:
        if not isinstance(
            private_key,
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            raise TypeError("a DPoP key is an EC, RSA, Ed25519 or Ed448 private key")
        alg = alg or _default_alg(private_key)
        _check_alg(private_key, alg)
        self._private = private_key
        self.alg = alg
        #: The public key as a JWK (RFC 7517) with its required members only.
        self.public_jwk: Mapping[str, Any] = _public_jwk(private_key)
        #: The RFC 7638 thumbprint: the ``jkt`` a bound token's ``cnf`` carries.
        self.thumbprint = jwk_thumbprint(self.public_jwk)

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A new key for ``alg`` (ES256 by default; RSA keys are 2048 bits)."""
        key: PrivateKey
        if alg in _EC_CURVES.values():
            curves: dict[str, ec.EllipticCurve] = {
                "ES256": ec.SECP256R1(),
                "ES384": ec.SECP384R1(),
                "ES512": ec.SECP521R1(),
            }
            key = ec.generate_private_key(curves[alg])
        elif alg == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
        elif alg in DPOP_ALGORITHMS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=_MIN_RSA_BITS)
        else:
            raise ValueError(f"unsupported DPoP algorithm {alg!r}; one of {DPOP_ALGORITHMS}")
        return cls(key, alg)

    @classmethod
    def from_pem(
        cls, pem: bytes | str, *, password: bytes | None = None, alg: str | None = None
    ) -> DPoPKey:
        """Read a PEM private key (PKCS#8, or traditional EC/RSA)."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(
            key,
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            raise TypeError("a DPoP key is an EC, RSA, Ed25519 or Ed448 private key")
        return cls(key, alg)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any] | str, *, alg: str | None = None) -> DPoPKey:
        """Read a private JWK (RFC 7517), given as a mapping or as JSON text."""
        data = orjson.loads(jwk) if isinstance(jwk, str) else dict(jwk)
        if not isinstance(data, dict) or "d" not in data:
            raise ValueError("a DPoP key needs a private JWK (with 'd')")
        alg = alg or (data["alg"] if isinstance(data.get("alg"), str) else None)
        key = jwt.PyJWK(data, algorithm=alg or _jwk_default_alg(data)).key
        return cls(key, alg)

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, thumbprint={self.thumbprint!r})"

    __str__ = __repr__

    def proof(
        self,
        htm: str,
        htu: str | httpx.URL,
        *,
        iat: float,
        access_token: str | None = None,
        nonce: str | None = None,
        jti: str | None = None,
    ) -> str:
        """A DPoP proof JWT (RFC 9449 §4.2) for one request.

        ``htu`` loses its query and fragment; ``jti`` defaults to 128 random bits;
        ``access_token`` adds ``ath`` (RFC 9449 §4.2, for a resource request) and
        ``nonce`` the server-provided nonce (RFC 9449 §8, §9).
        """
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": htm.upper(),
            "htu": htu_of(htu),
            "iat": int(iat),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        headers = {"typ": "dpop+jwt", "jwk": dict(self.public_jwk)}
        return jwt.encode(claims, self._private, algorithm=self.alg, headers=headers)


def _jwk_default_alg(jwk: Mapping[str, Any]) -> str:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return "PS256"
    if kty == "OKP":
        return "EdDSA"
    return {"P-384": "ES384", "P-521": "ES512"}.get(crv if isinstance(crv, str) else "", "ES256")
