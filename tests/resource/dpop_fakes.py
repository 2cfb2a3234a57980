"""DPoP proofs made by hand (PyJWT only), so that guard tests can break any part of them."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from resource_fakes import Key, b64

API = "http://testserver"


def public_jwk(key: Key) -> dict[str, Any]:
    public = key.private.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    data.pop("key_ops", None)
    return data


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638, written out independently of the library under test."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {m: jwk[m] for m in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64(hashlib.sha256(canonical).digest())


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode()).digest())


def proof(
    key: Key,
    token: str | None,
    *,
    htm: str = "GET",
    htu: str = API + "/read",
    iat: Any,
    jwk: dict[str, Any] | None = None,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A proof signed by ``key``; ``None`` values drop a claim or header member."""
    body: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": htm,
        "htu": htu,
        "iat": int(iat) if isinstance(iat, float | int) else iat,
        "ath": ath(token) if token is not None else None,
    }
    body.update(claims)
    headers: dict[str, Any] = {"typ": "dpop+jwt", "jwk": jwk or public_jwk(key)}
    headers.update(header or {})
    body = {k: v for k, v in body.items() if v is not None}
    headers = {k: v for k, v in headers.items() if v is not None}
    return jwt.encode(body, key.private, algorithm=alg or key.alg, headers=headers)


def unsigned_proof(key: Key, token: str, *, iat: float, alg: str = "none") -> str:
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(key)}
    claims = {"jti": "j", "htm": "GET", "htu": API + "/read", "iat": int(iat), "ath": ath(token)}
    enc = [b64(json.dumps(part).encode()) for part in (header, claims)]
    return f"{enc[0]}.{enc[1]}."


def hs256_proof(token: str, *, iat: float) -> str:
    secret = b"0123456789abcdef0123456789abcdef"
    jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
    claims = {"jti": "j", "htm": "GET", "htu": API + "/read", "iat": int(iat), "ath": ath(token)}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": jwk})


def small_rsa_key() -> Key:
    return Key("RS256", "small", rsa.generate_private_key(public_exponent=65537, key_size=1024))


def ed25519_key() -> Key:
    return Key("EdDSA", "ed", ed25519.Ed25519PrivateKey.generate())
