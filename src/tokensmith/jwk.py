"""JWK helpers the server's core, the client library and the resource guard share: RFC 7638
thumbprints and RFC 9449's ``ath``. A leaf module: it imports nothing of tokensmith, so
every package may use it (``tests/test_layers.py``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "THUMBPRINT_MEMBERS",
    "access_token_hash",
    "b64url",
    "jwk_thumbprint",
]

#: JWS algorithms with a public key (RFC 7518 §3.1, RFC 8037): what a DPoP proof may use
#: (RFC 9449 §4.2, "asymmetric").
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = (
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
)

#: RFC 7638 §3.2: the required members of a public JWK, per key type.
THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: the SHA-256 of the key's required members, as JSON without whitespace in
    lexicographic order of their names, base64url-encoded (RFC 9449 §6.1 ``jkt``).
    :class:`ValueError` for a key that is not a public EC, RSA or OKP JWK."""
    names = THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if names is None:
        raise ValueError("not a public EC, RSA or OKP JWK")
    members = {name: jwk.get(name) for name in names}
    if not all(isinstance(v, str) and v for v in members.values()):
        raise ValueError("a required member of the JWK is missing")
    return b64url(hashlib.sha256(orjson.dumps(members, option=orjson.OPT_SORT_KEYS)).digest())


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url of the SHA-256 of the token's octets (ASCII for
    any well-formed token; never an error for a malformed one)."""
    return b64url(hashlib.sha256(access_token.encode("utf-8", "surrogatepass")).digest())
