"""JWT access tokens per RFC 9068, signed with the active key (RFC 7515)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from tokensmith.core.keys import LoadedKey

__all__ = ["JwtCodec", "looks_like_jwt"]

_JWT_TYPE = "at+jwt"


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
        self._header = {"typ": _JWT_TYPE, "kid": signing.kid}

    @property
    def signing_kid(self) -> str:
        return self._signing.kid

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set (RFC 7517 §5) of every published key."""
        return {"keys": [k.public_jwk for k in self._by_kid.values()]}

    def encode(self, claims: Mapping[str, Any]) -> str:
        """Sign ``claims`` with header ``typ: at+jwt`` (RFC 9068 §2.1)."""
        return jwt.encode(
            dict(claims),
            self._signing.private_key,
            algorithm=self._signing.alg,
            headers=self._header,
        )

    def decode(self, token: str, now: float) -> dict[str, Any] | None:
        """Verify a token this server signed; ``None`` if it is not one, or it expired.

        RFC 9068 §4: checks ``typ``, the signature with the key named by ``kid``,
        ``iss`` and ``exp``.
        """
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
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now >= exp:
            return None
        return claims
