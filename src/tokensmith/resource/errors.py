"""Bearer and DPoP token errors as defined by RFC 6750 §3 and RFC 9449 §7.1.

Each error knows its HTTP status, its RFC 6750 §3.1 / RFC 9449 §7.1 error code and how to
render the ``WWW-Authenticate`` challenge.  They subclass Starlette's ``HTTPException`` so
that Starlette and FastAPI turn an uncaught one into the right response (never a 500).

Error map (class, RFC 6750 §3.1 / RFC 9449 §7.1 ``error`` code, HTTP status)::

    HTTPException                    (starlette.exceptions)
     +-- BearerError                 -                        401  (base)
          +-- MissingToken           -                        401  bare challenge
          +-- InvalidRequest         invalid_request          400
          +-- InvalidToken           invalid_token            401
          +-- InsufficientScope      insufficient_scope       403  challenge names scope
          |    +-- ConsentNotActive  insufficient_scope       403  consent spent, no scope
          +-- InvalidDPoPProof       invalid_dpop_proof       401  in the DPoP challenge
          +-- UseDPoPNonce           use_dpop_nonce           401  DPoP challenge, DPoP-Nonce
          +-- ValidationUnavailable  temporarily_unavailable  503  Retry-After, no challenge

One dialect: every answer carries ``WWW-Authenticate: Bearer`` (RFC 6750 §3) unless noted
and an RFC 6749 §5.2-shaped JSON body.  With DPoP on (:meth:`BearerError.with_dpop`)
the challenges follow RFC 9449 §7.1: the error goes in the challenge of the scheme the
request used (always ``DPoP`` for the DPoP-only codes), ``DPoP`` carries ``algs``, and
``Bearer`` is offered too unless DPoP is required.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

__all__ = [
    "BearerError",
    "ConsentNotActive",
    "InsufficientScope",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "UseDPoPNonce",
    "ValidationUnavailable",
    "dpop_challenge",
    "www_authenticate",
]

Scheme = Literal["bearer", "dpop"]

# RFC 6750 §3: error_description and scope values are limited to these characters.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quote(value: str) -> str:
    return '"' + _UNSAFE.sub("?", value)[:200] + '"'


def _params(
    realm: str | None,
    error: str | None,
    description: str | None,
    scope: Iterable[str] | None,
) -> list[str]:
    params: list[str] = []
    if realm:
        params.append(f"realm={_quote(realm)}")
    if error:
        params.append(f"error={_quote(error)}")
    if description:
        params.append(f"error_description={_quote(description)}")
    if scope:
        params.append(f"scope={_quote(' '.join(scope))}")
    return params


def www_authenticate(
    realm: str | None,
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    """Build a ``WWW-Authenticate: Bearer ...`` challenge (RFC 6750 §3)."""
    params = _params(realm, error, description, scope)
    return "Bearer " + ", ".join(params) if params else "Bearer"


def dpop_challenge(
    realm: str | None,
    algs: Iterable[str],
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    """Build a ``WWW-Authenticate: DPoP ...`` challenge (RFC 9449 §7.1) naming the
    accepted proof algorithms in ``algs``."""
    params = _params(realm, error, description, scope)
    names = " ".join(algs)
    if names:
        params.append(f"algs={_quote(names)}")
    return "DPoP " + ", ".join(params) if params else "DPoP"


class BearerError(HTTPException):
    """Base class: a request that cannot be served for a bearer-token reason."""

    status_code_default = 401
    error: str | None = None
    #: The scheme whose challenge carries the error whatever the request used.
    own_scheme: Scheme | None = None

    def __init__(
        self,
        description: str = "",
        *,
        realm: str | None = None,
        scope: Iterable[str] | None = None,
    ) -> None:
        self.description = description
        self.realm = realm
        self.scope = tuple(scope) if scope else None
        self.dpop = "off"
        self.dpop_algs: tuple[str, ...] = ()
        self.scheme: Scheme = "bearer"
        super().__init__(
            status_code=self.status_code_default,
            detail=description or self.error or "unauthorized",
            headers=self.headers_for(realm),
        )

    def _error_params(self) -> tuple[str | None, str | None, tuple[str, ...] | None]:
        return self.error, self.description or None, self.scope

    def challenge(self, realm: str | None) -> str:
        """The ``WWW-Authenticate`` value: RFC 6750 §3, or RFC 9449 §7.1 with DPoP on."""
        error = self._error_params()
        mode = self.dpop
        if mode == "off":
            if self.own_scheme != "dpop":
                return www_authenticate(realm, *error)
            mode = "required"  # a DPoP-only error raised outside a DPoP-aware guard
        in_dpop = (self.own_scheme or self.scheme) == "dpop" or mode == "required"
        none: tuple[None, None, None] = (None, None, None)
        dpop = dpop_challenge(realm, self.dpop_algs, *(error if in_dpop else none))
        if mode == "required":
            return dpop
        return www_authenticate(realm, *(none if in_dpop else error)) + ", " + dpop

    def headers_for(self, realm: str | None) -> dict[str, str]:
        """Response headers, with ``realm`` in the challenge."""
        return {"WWW-Authenticate": self.challenge(realm), "Cache-Control": "no-store"}

    def with_realm(self, realm: str | None) -> BearerError:
        """The same error with a realm set (if it had none)."""
        if self.realm is None and realm is not None:
            self.realm = realm
            self.headers = self.headers_for(realm)
        return self

    def with_dpop(self, mode: str, algs: Iterable[str], scheme: Scheme) -> BearerError:
        """The same error rendered for an API whose DPoP ``mode`` is ``allowed`` or
        ``required`` (RFC 9449 §7.1), for a request that used ``scheme``."""
        self.dpop = mode
        self.dpop_algs = tuple(algs)
        self.scheme = scheme
        self.headers = self.headers_for(self.realm)
        return self

    def body(self) -> dict[str, str]:
        """JSON body in the RFC 6749 §5.2 shape."""
        out: dict[str, str] = {}
        if self.error:
            out["error"] = self.error
        if self.description:
            out["error_description"] = self.description
        if self.scope:
            out["scope"] = " ".join(self.scope)
        return out

    def to_response(self, realm: str | None = None) -> Response:
        """A Starlette response carrying the challenge and a small JSON body."""
        self.with_realm(realm)
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status_code,
            headers=self.headers_for(self.realm),
            media_type="application/json",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class MissingToken(BearerError):
    """No bearer token in the request: 401 with a bare challenge (RFC 6750 §3.1)."""

    def _error_params(self) -> tuple[str | None, str | None, tuple[str, ...] | None]:
        return None, None, None

    def body(self) -> dict[str, str]:
        return {"error_description": self.description} if self.description else {}


class InvalidRequest(BearerError):
    """Malformed ``Authorization`` header: 400 ``invalid_request`` (RFC 6750 §3.1)."""

    status_code_default = 400
    error = "invalid_request"


class InvalidToken(BearerError):
    """Expired, revoked, malformed or otherwise invalid token: 401 ``invalid_token``."""

    error = "invalid_token"


class InsufficientScope(BearerError):
    """The token lacks a required scope: 403 ``insufficient_scope`` with ``scope=``."""

    status_code_default = 403
    error = "insufficient_scope"


class ConsentNotActive(InsufficientScope):
    """The token's single-use consent was spent already, or is revoked or expired (or the
    token has none where one is needed): 403 ``insufficient_scope`` without ``scope=``.

    RFC 6750 §3.1 ``insufficient_scope`` fits: the token is genuine, but the authorization
    it carries no longer covers this request, and only a new consent would. Not
    ``invalid_token``: §3.1 pairs it with 401, which clients (``tokensmith.client``
    among them) answer by renewing the token and resending the request, a payment
    included; a token renewed from the same consent is spent all the same.
    """

    #: The consent's status as the server reported it (``consumed``, ``revoked``, ...).
    consent_status: str | None = None

    @classmethod
    def for_status(cls, status: str | None) -> ConsentNotActive:
        """The refusal for a consent the server reports as ``status``."""
        text = "consent already used" if status == "consumed" else "consent not active"
        error = cls(text if status is None else f"{text} ({status})")
        error.consent_status = status
        return error


class InvalidDPoPProof(BearerError):
    """The DPoP proof is missing, malformed, for another request or key, stale or
    replayed: 401 ``invalid_dpop_proof`` in the ``DPoP`` challenge (RFC 9449 §7.1)."""

    error = "invalid_dpop_proof"
    own_scheme = "dpop"


class UseDPoPNonce(BearerError):
    """The proof lacks the server's nonce (RFC 9449 §9): 401 ``use_dpop_nonce`` in the
    ``DPoP`` challenge, with the nonce to use in the ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"
    own_scheme = "dpop"

    def __init__(self, description: str = "", *, nonce: str, realm: str | None = None) -> None:
        self.nonce = nonce
        super().__init__(description, realm=realm)

    def headers_for(self, realm: str | None) -> dict[str, str]:
        return {**super().headers_for(realm), "DPoP-Nonce": self.nonce}


class ValidationUnavailable(BearerError):
    """The token could not be checked (JWKS or introspection endpoint unreachable):
    503 with ``Retry-After``, so that clients do not throw away a possibly good token."""

    status_code_default = 503
    error = "temporarily_unavailable"

    def headers_for(self, realm: str | None) -> dict[str, str]:
        return {"Retry-After": "5", "Cache-Control": "no-store"}
