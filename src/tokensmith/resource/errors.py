"""Bearer token errors as defined by RFC 6750 §3.

Each error knows its HTTP status, its RFC 6750 §3.1 error code and how to render the
``WWW-Authenticate`` challenge.  They subclass Starlette's ``HTTPException`` so that
Starlette and FastAPI turn an uncaught one into the right response (never a 500).

Error map (class, RFC 6750 §3.1 ``error`` code, HTTP status)::

    HTTPException                    (starlette.exceptions)
     +-- BearerError                 -                        401  (base)
          +-- MissingToken           -                        401  bare challenge
          +-- InvalidRequest         invalid_request          400
          +-- InvalidToken           invalid_token            401
          +-- InsufficientScope      insufficient_scope       403  challenge names scope
          +-- ValidationUnavailable  temporarily_unavailable  503  Retry-After, no challenge

One dialect: every answer carries ``WWW-Authenticate: Bearer`` (RFC 6750 §3) unless noted
and an RFC 6749 §5.2-shaped JSON body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

__all__ = [
    "BearerError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "ValidationUnavailable",
    "www_authenticate",
]

# RFC 6750 §3: error_description and scope values are limited to these characters.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quote(value: str) -> str:
    return '"' + _UNSAFE.sub("?", value)[:200] + '"'


def www_authenticate(
    realm: str | None,
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    """Build a ``WWW-Authenticate: Bearer ...`` challenge (RFC 6750 §3)."""
    params: list[str] = []
    if realm:
        params.append(f"realm={_quote(realm)}")
    if error:
        params.append(f"error={_quote(error)}")
    if description:
        params.append(f"error_description={_quote(description)}")
    if scope:
        params.append(f"scope={_quote(' '.join(scope))}")
    return "Bearer " + ", ".join(params) if params else "Bearer"


class BearerError(HTTPException):
    """Base class: a request that cannot be served for a bearer-token reason."""

    status_code_default = 401
    error: str | None = None

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
        super().__init__(
            status_code=self.status_code_default,
            detail=description or self.error or "unauthorized",
            headers=self.headers_for(realm),
        )

    def headers_for(self, realm: str | None) -> dict[str, str]:
        """Response headers, with ``realm`` in the challenge."""
        return {
            "WWW-Authenticate": www_authenticate(
                realm, self.error, self.description or None, self.scope
            ),
            "Cache-Control": "no-store",
        }

    def with_realm(self, realm: str | None) -> BearerError:
        """The same error with a realm set (if it had none)."""
        if self.realm is None and realm is not None:
            self.realm = realm
            self.headers = self.headers_for(realm)
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

    def headers_for(self, realm: str | None) -> dict[str, str]:
        return {"WWW-Authenticate": www_authenticate(realm), "Cache-Control": "no-store"}

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


class ValidationUnavailable(BearerError):
    """The token could not be checked (JWKS or introspection endpoint unreachable):
    503 with ``Retry-After``, so that clients do not throw away a possibly good token."""

    status_code_default = 503
    error = "temporarily_unavailable"

    def headers_for(self, realm: str | None) -> dict[str, str]:
        return {"Retry-After": "5", "Cache-Control": "no-store"}
