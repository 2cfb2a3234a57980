"""JWT client authentication for the token client (RFC 7523 §2.2, §3; OIDC Core §9).

A client authenticates at the token endpoint with a short-lived JWT it signed itself,
sent as ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
and ``client_assertion``:

* ``private_key_jwt``: signed with the client's private key (:class:`PrivateKeyJwt`);
  the server holds the public key (the client's ``jwks`` or ``jwks_uri``);
* ``client_secret_jwt``: an HMAC keyed by the client secret (:class:`ClientSecretJwt`).

Every assertion carries ``iss`` = ``sub`` = the client_id, ``aud`` (the token endpoint URL
unless configured otherwise, e.g. the issuer), a random ``jti``, ``iat`` and an ``exp`` at
most 60 seconds later; a new one is made for every request, retries included, since the
server accepts each ``jti`` once.  Neither class ever shows its key in ``repr``/``str``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .dpop import DPOP_ALGORITHMS, PrivateKey, _check_alg, _default_alg, _jwk_default_alg

__all__ = [
    "ASSERTION_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "JWT_BEARER",
    "ClientSecretJwt",
    "PrivateKeyJwt",
]

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT assertion.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Asymmetric algorithms a :class:`PrivateKeyJwt` signs with.
ASSERTION_ALGORITHMS: tuple[str, ...] = DPOP_ALGORITHMS
#: HMAC algorithms a :class:`ClientSecretJwt` signs with (RFC 7518 §3.2).
HMAC_ALGORITHMS: tuple[str, ...] = ("HS256", "HS384", "HS512")
#: The longest lifetime an assertion gets (seconds).
MAX_LIFETIME = 60
_PRIVATE_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def _claims(client_id: str, audience: str, now: float, lifetime: int) -> dict[str, Any]:
    """RFC 7523 §3: iss and sub the client, aud the server, exp close, a unique jti."""
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(16),
        "iat": int(now),
        "exp": int(now) + lifetime,
    }


def _check_lifetime(lifetime: int) -> int:
    if not 1 <= lifetime <= MAX_LIFETIME:
        raise ValueError(f"an assertion lives between 1 and {MAX_LIFETIME} seconds")
    return lifetime


def _load_private(
    key: PrivateKey | str | bytes | Mapping[str, Any], password: bytes | None, alg: str | None
) -> tuple[PrivateKey, str | None, str | None]:
    """A private key from a ``cryptography`` key, PEM text/bytes or a private JWK; with
    the JWK's ``alg`` and ``kid`` when it has them."""
    if isinstance(key, _PRIVATE_TYPES):
        return key, None, None
    if isinstance(key, Mapping) or (isinstance(key, str) and key.lstrip().startswith("{")):
        data = orjson.loads(key) if isinstance(key, str) else dict(key)
        if not isinstance(data, dict) or "d" not in data:
            raise ValueError("private_key_jwt needs a private JWK (with 'd')")
        jwk_alg = data.get("alg") if isinstance(data.get("alg"), str) else None
        loaded = jwt.PyJWK(data, algorithm=alg or jwk_alg or _jwk_default_alg(data)).key
        kid = data.get("kid") if isinstance(data.get("kid"), str) else None
        if not isinstance(loaded, _PRIVATE_TYPES):
            raise TypeError("a private_key_jwt key is an EC, RSA, Ed25519 or Ed448 private key")
        return loaded, jwk_alg, kid
    if isinstance(key, str | bytes):
        data_pem = key.encode("ascii") if isinstance(key, str) else key
        loaded_pem = serialization.load_pem_private_key(data_pem, password=password)
        if not isinstance(loaded_pem, _PRIVATE_TYPES):
            raise TypeError("a private_key_jwt key is an EC, RSA, Ed25519 or Ed448 private key")
        return loaded_pem, None, None
    raise TypeError("private_key: a cryptography private key, PEM, or a private JWK")


class PrivateKeyJwt:
    """Signs ``private_key_jwt`` assertions (RFC 7523 §2.2) with the client's private key.

    ``key``: a ``cryptography`` private key (EC P-256/384/521, Ed25519/Ed448, RSA >= 2048
    bits), PEM text or bytes (``password`` for an encrypted one), or a private JWK (a
    mapping or JSON text; its ``kid`` and ``alg`` are used unless given).  ``alg``
    defaults from the key (ES256 for P-256, PS256 for RSA, EdDSA); ``key_id`` goes to the
    ``kid`` header so the server picks the right registered key; ``audience`` overrides
    the ``aud`` (the token endpoint URL by default); ``lifetime`` is at most 60 seconds.
    """

    __slots__ = ("_private", "alg", "audience", "key_id", "lifetime")

    def __init__(
        self,
        key: PrivateKey | str | bytes | Mapping[str, Any],
        *,
        key_id: str | None = None,
        alg: str | None = None,
        audience: str | None = None,
        lifetime: int = MAX_LIFETIME,
        password: bytes | None = None,
    ) -> None:
        private, jwk_alg, jwk_kid = _load_private(key, password, alg)
        chosen = alg or jwk_alg or _default_alg(private)
        if chosen not in ASSERTION_ALGORITHMS:
            raise ValueError(
                f"unsupported private_key_jwt algorithm {chosen!r}; one of {ASSERTION_ALGORITHMS}"
            )
        _check_alg(private, chosen)
        self._private = private
        self.alg = chosen
        self.key_id = key_id or jwk_kid
        self.audience = audience
        self.lifetime = _check_lifetime(lifetime)

    def __repr__(self) -> str:
        return f"PrivateKeyJwt(alg={self.alg!r}, key_id={self.key_id!r})"

    __str__ = __repr__

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        """A new signed assertion for one request (RFC 7523 §3); ``self.audience``, when
        set, replaces ``audience``."""
        claims = _claims(client_id, self.audience or audience, now, self.lifetime)
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self._private, algorithm=self.alg, headers=headers)


class ClientSecretJwt:
    """Signs ``client_secret_jwt`` assertions (RFC 7523 §2.2, OIDC Core §9): an HMAC
    (HS256 by default) keyed by the client secret."""

    __slots__ = ("_secret", "alg", "audience", "lifetime")

    def __init__(
        self,
        secret: str,
        *,
        alg: str = "HS256",
        audience: str | None = None,
        lifetime: int = MAX_LIFETIME,
    ) -> None:
        if alg not in HMAC_ALGORITHMS:
            raise ValueError(f"client_secret_jwt signs with one of {HMAC_ALGORITHMS}")
        if not secret:
            raise ValueError("client_secret_jwt needs the client secret")
        self._secret = secret
        self.alg = alg
        self.audience = audience
        self.lifetime = _check_lifetime(lifetime)

    def __repr__(self) -> str:
        return f"ClientSecretJwt(alg={self.alg!r})"

    __str__ = __repr__

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        """A new HMAC-signed assertion for one request (RFC 7523 §3)."""
        claims = _claims(client_id, self.audience or audience, now, self.lifetime)
        return jwt.encode(claims, self._secret, algorithm=self.alg)


AssertionSigner = PrivateKeyJwt | ClientSecretJwt
