"""DPoP proofs (RFC 9449 §4.2) made the way a client makes them, with PyJWT and
``cryptography``, and bent in every way a test needs."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

TOKEN_URL = "https://auth.example.test/oauth/token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638, written out independently of the server's."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {k: jwk[k] for k in required[jwk["kty"]]}
    return b64(
        hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    )


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode()).digest())


@dataclass
class DpopKey:
    alg: str
    private: Any
    jwk: dict[str, Any]

    @classmethod
    def generate(cls, alg: str = "ES256", rsa_bits: int = 2048) -> DpopKey:
        if alg.startswith("ES"):
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
            private: Any = ec.generate_private_key(curve[alg])
            jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return cls(alg, private, dict(jwk))

    @property
    def jkt(self) -> str:
        return thumbprint(self.jwk)

    def private_jwk(self) -> dict[str, Any]:
        if self.alg.startswith("ES"):
            return dict(ECAlgorithm.to_jwk(self.private, as_dict=True))
        if self.alg == "EdDSA":
            return dict(OKPAlgorithm.to_jwk(self.private, as_dict=True))
        return dict(RSAAlgorithm.to_jwk(self.private, as_dict=True))

    def proof(
        self,
        htu: str = TOKEN_URL,
        htm: str = "POST",
        *,
        iat: float | None = None,
        jti: str | None = None,
        nonce: str | None = None,
        access_token: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A proof; ``header`` and ``claims`` override (``None`` values remove), ``drop``
        removes claims."""
        body: dict[str, Any] = {
            "jti": jti or str(uuid.uuid4()),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time() if iat is None else iat),
        }
        if nonce is not None:
            body["nonce"] = nonce
        if access_token is not None:
            body["ath"] = ath(access_token)
        body.update(claims or {})
        body = {k: v for k, v in body.items() if v is not None and k not in drop}
        head: dict[str, Any] = {"typ": "dpop+jwt", "jwk": self.jwk}
        head.update(header or {})
        alg = head.pop("alg", self.alg)
        head = {k: v for k, v in head.items() if v is not None or k == "typ"}  # typ None: none
        return jwt.encode(body, self.private, algorithm=alg, headers=head)


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS put together by hand (``alg: none``, a forged signature)."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(b64(p) for p in parts), b64(signature)])
