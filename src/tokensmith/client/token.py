"""The :class:`Token` value and the parsing of token responses (RFC 6749 §5.1)."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import TokenError

__all__ = ["Token", "default_margin", "parse_token_response"]

logger = logging.getLogger("tokensmith.client")

#: Lifetime assumed when a response carries neither ``expires_in`` nor a JWT ``exp``
#: (RFC 6749 §5.1 makes ``expires_in`` only RECOMMENDED).
DEFAULT_LIFETIME = 300.0


def _mask(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(frozen=True, slots=True)
class Token:
    """An access token as returned by a token endpoint (RFC 6749 §5.1).

    ``expires_at`` and ``issued_at`` are epoch seconds on the client's clock;
    ``scope`` is the space-delimited granted scope (RFC 6749 §3.3) or None.
    ``repr()``/``str()`` never show ``access_token`` nor ``refresh_token``.
    A DPoP-bound token (RFC 9449 §5, ``token_type`` ``DPoP``) carries in ``dpop_jkt`` the
    RFC 7638 thumbprint of the key it is bound to; it is only usable with that key.
    """

    access_token: str
    token_type: str
    expires_at: float
    scope: str | None = None
    refresh_token: str | None = None
    issued_at: float = 0.0
    dpop_jkt: str | None = None

    def __repr__(self) -> str:
        return (
            f"Token(access_token={_mask(self.access_token)}, token_type={self.token_type!r}, "
            f"expires_at={self.expires_at!r}, scope={self.scope!r}, "
            f"refresh_token={_mask(self.refresh_token)}, issued_at={self.issued_at!r}"
            + (f", dpop_jkt={self.dpop_jkt!r})" if self.dpop_jkt else ")")
        )

    __str__ = __repr__

    @property
    def lifetime(self) -> float:
        """Seconds between ``issued_at`` and ``expires_at``."""
        return max(0.0, self.expires_at - self.issued_at)

    def expires_in(self, now: float) -> float:
        """Seconds left at ``now`` (negative once expired)."""
        return self.expires_at - now

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scope as a set of scope tokens."""
        return frozenset(self.scope.split()) if self.scope else frozenset()

    @property
    def is_dpop(self) -> bool:
        """True for a DPoP-bound token (RFC 9449 §5): each use needs a DPoP proof."""
        return self.dpop_jkt is not None

    @property
    def authorization(self) -> str:
        """Value of the ``Authorization`` header: ``Bearer ...`` (RFC 6750 §2.1) or
        ``DPoP ...`` (RFC 9449 §7.1)."""
        return f"{self.token_type} {self.access_token}"

    def to_dict(self, *, include_refresh_token: bool = True) -> dict[str, Any]:
        """Serialisable form (used by :class:`~tokensmith.client.FileTokenCache`)."""
        data: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "issued_at": self.issued_at,
        }
        if include_refresh_token and self.refresh_token is not None:
            data["refresh_token"] = self.refresh_token
        if self.dpop_jkt is not None:
            data["dpop_jkt"] = self.dpop_jkt
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on malformed input, such as
        a DPoP token that does not name its key."""
        access_token = data.get("access_token")
        token_type = data.get("token_type")
        expires_at = data.get("expires_at")
        if not isinstance(access_token, str) or not isinstance(token_type, str):
            raise ValueError("malformed token record")
        if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
            raise ValueError("malformed token record")
        scope = data.get("scope")
        refresh = data.get("refresh_token")
        issued = data.get("issued_at", 0.0)
        jkt = data.get("dpop_jkt")
        if jkt is not None and not isinstance(jkt, str):
            raise ValueError("malformed token record")
        if (token_type.lower() == "dpop") != (jkt is not None):
            raise ValueError("malformed token record")
        return cls(
            access_token=access_token,
            token_type=token_type,
            expires_at=float(expires_at),
            scope=scope if isinstance(scope, str) else None,
            refresh_token=refresh if isinstance(refresh, str) else None,
            issued_at=float(issued) if isinstance(issued, int | float) else 0.0,
            dpop_jkt=jkt,
        )


def default_margin(lifetime: float) -> float:
    """Default renewal margin: ``max(30 s, 10 % of the lifetime)``."""
    return max(30.0, 0.1 * lifetime)


def jwt_exp(token: str) -> float | None:
    """Read the ``exp`` claim of a JWS compact token *without verifying it*.

    Only used to learn when a token expires; never for any trust decision.
    Returns None when ``token`` is not a JWT or has no numeric ``exp``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse_token_response(
    body: Any,
    *,
    now: float,
    requested_scope: str | None = None,
    default_lifetime: float = DEFAULT_LIFETIME,
    dpop_jkt: str | None = None,
) -> Token:
    """Turn a successful token response into a :class:`Token`.

    ``expires_at`` is the earliest of: ``now + expires_in`` (RFC 6749 §5.1),
    ``issued_at + expires_in`` (tpay: the server may hand back a token issued earlier)
    and the JWT ``exp`` claim (RFC 7519 §4.1.4) when the access token is a JWT.  If a
    server clock is so far off that these would declare the token already expired, the
    local ``now + expires_in`` is used instead (with a warning).  When the response omits
    ``scope`` it is the requested scope (RFC 6749 §5.1).

    ``token_type`` must be ``Bearer`` or, when the request carried a DPoP proof of the key
    whose thumbprint is ``dpop_jkt``, ``DPoP`` (RFC 9449 §5); such a token remembers
    ``dpop_jkt``.  A server that answers ``Bearer`` to a DPoP request gives a plain bearer
    token (RFC 9449 §5 lets it), which is used as one.
    """
    if not isinstance(body, Mapping):
        raise TokenError("token response is not a JSON object", error="invalid_response")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenError("token response has no access_token", error="invalid_response")
    token_type = body.get("token_type", "Bearer")
    kind = token_type.lower() if isinstance(token_type, str) else None
    if kind != "bearer" and not (kind == "dpop" and dpop_jkt is not None):
        shown = token_type if isinstance(token_type, str) else type(token_type).__name__
        raise TokenError(f"unsupported token_type {shown[:40]!r}", error="invalid_response")
    if kind == "bearer" and dpop_jkt is not None:
        logger.warning("asked for a DPoP-bound token, got a bearer token (RFC 9449 §5)")

    expires_in = _number(body.get("expires_in"))
    local_exp = now + expires_in if expires_in is not None else None
    candidates: list[float] = []
    if local_exp is not None:
        candidates.append(local_exp)
        issued_at = _number(body.get("issued_at"))
        if issued_at is not None and expires_in is not None:
            candidates.append(issued_at + expires_in)
    exp = jwt_exp(access_token)
    if exp is not None:
        candidates.append(exp)
    if candidates:
        expires_at = min(candidates)
        if expires_at <= now and local_exp is not None and local_exp > now:
            logger.warning(
                "token endpoint clock disagrees with ours (token would be expired on "
                "arrival); trusting expires_in"
            )
            expires_at = local_exp
    else:
        expires_at = now + default_lifetime

    scope = body.get("scope")
    if isinstance(scope, list):
        scope = " ".join(str(s) for s in scope)
    if not isinstance(scope, str):
        scope = requested_scope
    refresh = body.get("refresh_token")
    bound = dpop_jkt if kind == "dpop" else None
    return Token(
        access_token=access_token,
        token_type="DPoP" if bound else "Bearer",
        expires_at=expires_at,
        scope=scope or None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        issued_at=now,
        dpop_jkt=bound,
    )


def join_scope(scope: str | Iterable[str] | None) -> str | None:
    """Normalise a scope given as a string or an iterable to RFC 6749 §3.3 form."""
    if scope is None:
        return None
    if isinstance(scope, str):
        parts = scope.split()
    else:
        parts = [s for item in scope for s in str(item).split()]
    return " ".join(dict.fromkeys(parts)) or None
