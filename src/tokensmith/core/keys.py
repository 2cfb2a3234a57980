"""Signing keys for JWT access tokens (RFC 9068), encrypted at rest.

Private keys are kept in the database under Fernet (AES-128-CBC + HMAC-SHA256),
keyed from the operator's secret by HKDF (RFC 5869), so every instance sharing
the database shares the keys and a database dump alone reveals none.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tokensmith.core.credentials import random_urlsafe
from tokensmith.core.models import SigningKeyRecord
from tokensmith.core.randomness import Randomness

__all__ = [
    "CLIENT_SECRETS",
    "SIGNING_KEYS",
    "SUPPORTED_ALGS",
    "KeyEncryptionError",
    "KeySealer",
    "LoadedKey",
    "generate_signing_key",
    "load_key",
]

SUPPORTED_ALGS = ("ES256", "RS256", "EdDSA")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class KeyEncryptionError(Exception):
    """The stored key cannot be decrypted with the configured secret."""


#: HKDF ``info`` of the key that seals signing keys.
SIGNING_KEYS = b"tokensmith/key-sealing"
#: HKDF ``info`` of the key that seals ``client_secret_jwt`` clients' secrets.
CLIENT_SECRETS = b"tokensmith/client-secret-sealing"


class KeySealer:
    """Encrypts and decrypts private keys under keys derived from operator secrets.

    The first secret encrypts; all of them decrypt, so the secret can be rotated.
    """

    def __init__(self, secrets: Sequence[str], purpose: bytes = SIGNING_KEYS) -> None:
        """``purpose`` separates the keys derived for each use (HKDF ``info``)."""
        if not secrets:
            raise ValueError("at least one secret key is needed")
        self._fernet = MultiFernet([Fernet(_derive(s, purpose)) for s in secrets])

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def open(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise KeyEncryptionError("signing key cannot be decrypted: wrong secret key") from exc


def _derive(secret: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A decrypted key ready to sign."""

    kid: str
    alg: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]


def _new_private_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {alg!r}; choose one of {SUPPORTED_ALGS}")


def _public_jwk(key: PrivateKey, kid: str, alg: str) -> dict[str, Any]:
    public = key.public_key()
    jwk: dict[str, Any]
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def generate_signing_key(
    alg: str, sealer: KeySealer, rand: Randomness, now: float
) -> SigningKeyRecord:
    """Make a new key for ``alg`` and seal its private half (RFC 7517 JWK for the public)."""
    key = _new_private_key(alg)
    kid = random_urlsafe(rand, 12)  # 16 characters, no padding to strip
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKeyRecord(
        kid=kid,
        alg=alg,
        private_key_encrypted=sealer.seal(pem),
        public_jwk=json.dumps(_public_jwk(key, kid, alg), sort_keys=True),
        created_at=now,
    )


def load_key(record: SigningKeyRecord, sealer: KeySealer) -> LoadedKey:
    """Decrypt a stored key."""
    pem = sealer.open(record.private_key_encrypted)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyEncryptionError(f"key {record.kid} has an unsupported type")
    return LoadedKey(record.kid, record.alg, key, json.loads(record.public_jwk))
