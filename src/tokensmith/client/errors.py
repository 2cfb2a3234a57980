"""Typed token-endpoint errors.

Errors are built from two wire formats:

* RFC 6749 §5.2 error responses: ``{"error": "invalid_client", "error_description": "..."}``;
* RFC 9457 (formerly RFC 7807) ``application/problem+json`` documents as used by the TBC
  tpay gateway: ``{"title": ..., "status": "400", "detail": ..., "code": "invalid_client",
  "systemCode": "tpay-access-token.400.001"}`` (``status`` may be a string or an int).

When neither carries a known code the HTTP status decides (RFC 6585 §4 for 429, RFC 9110
§15.6 for 5xx).  Messages carry the server's description but never a credential: callers
pass the secrets they know and every occurrence is replaced by ``***``.

Error map (class, the ``error``/``code`` values it is raised for, then the HTTP statuses
that decide when no code is known; a 429 and a 5xx decide whatever the body says)::

    Exception
     +-- TokenError                token_error (any other code)     any other status
          +-- InvalidRequest       invalid_request                  400
          +-- InvalidClient        invalid_client, invalid_apikey   401
          +-- InvalidGrant         invalid_grant                    -
          +-- UnauthorizedClient   unauthorized_client              403
          +-- UnsupportedGrantType unsupported_grant_type           -
          +-- InvalidScope         invalid_scope                    -
          +-- InvalidDPoPProof     invalid_dpop_proof               -
          +-- UseDPoPNonce         use_dpop_nonce                   -
          +-- InvalidAuthorizationDetails invalid_authorization_details -
          +-- RateLimited          rate_limited, too_many_requests, 429 (always)
          |                        slow_down
          +-- ServerError          server_error,                    5xx (always), or no
                                   temporarily_unavailable          answer at all

Both wire dialects map alike: RFC 6749 §5.2 ``error`` (oauth, tpay, dot) and RFC 9457
problem+json ``code`` (tbc).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "InvalidAuthorizationDetails",
    "InvalidClient",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "RateLimited",
    "ServerError",
    "TokenError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UseDPoPNonce",
    "error_from_response",
    "parse_retry_after",
]

_MAX_DESCRIPTION = 300


class TokenError(Exception):
    """Base class of every error raised while obtaining a token.

    Attributes mirror RFC 6749 §5.2: ``error`` (the code), ``description``
    (``error_description``), ``error_uri``; plus the HTTP ``status_code`` and, for
    problem+json responses, ``system_code``.  ``str(exc)`` never contains a secret.
    """

    default_code = "token_error"

    def __init__(
        self,
        description: str = "",
        *,
        error: str | None = None,
        status_code: int | None = None,
        error_uri: str | None = None,
        system_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.error = error or self.default_code
        self.description = description
        self.status_code = status_code
        self.error_uri = error_uri
        self.system_code = system_code
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        msg = self.error
        if self.description:
            msg += f": {self.description}"
        extras = []
        if self.status_code is not None:
            extras.append(f"HTTP {self.status_code}")
        if self.system_code:
            extras.append(self.system_code)
        if extras:
            msg += f" ({', '.join(extras)})"
        return msg

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # keep exceptions picklable across processes
        return (
            _rebuild,
            (
                type(self),
                self.description,
                self.error,
                self.status_code,
                self.error_uri,
                self.system_code,
                self.retry_after,
            ),
        )


def _rebuild(
    cls: type[TokenError],
    description: str,
    error: str | None,
    status_code: int | None,
    error_uri: str | None,
    system_code: str | None,
    retry_after: float | None,
) -> TokenError:
    return cls(
        description,
        error=error,
        status_code=status_code,
        error_uri=error_uri,
        system_code=system_code,
        retry_after=retry_after,
    )


class InvalidRequest(TokenError):
    """RFC 6749 §5.2 ``invalid_request``: the request is malformed."""

    default_code = "invalid_request"


class InvalidClient(TokenError):
    """RFC 6749 §5.2 ``invalid_client``: client authentication failed.

    Also raised for the TBC gateway's ``invalid_apikey`` (wrong ``apikey`` header).
    """

    default_code = "invalid_client"


class InvalidGrant(TokenError):
    """RFC 6749 §5.2 ``invalid_grant``: code or refresh token invalid, expired or revoked.

    Also raised when a refresh is needed but no refresh token is stored: in both cases
    the user has to go through the authorization code flow again.
    """

    default_code = "invalid_grant"


class UnauthorizedClient(TokenError):
    """RFC 6749 §5.2 ``unauthorized_client``: the client may not use this grant type."""

    default_code = "unauthorized_client"


class UnsupportedGrantType(TokenError):
    """RFC 6749 §5.2 ``unsupported_grant_type``."""

    default_code = "unsupported_grant_type"


class InvalidScope(TokenError):
    """RFC 6749 §5.2 ``invalid_scope``: unknown scope or beyond what the client may get."""

    default_code = "invalid_scope"


class InvalidDPoPProof(TokenError):
    """RFC 9449 §5 ``invalid_dpop_proof``: the server refused the DPoP proof."""

    default_code = "invalid_dpop_proof"


class UseDPoPNonce(TokenError):
    """RFC 9449 §8 ``use_dpop_nonce``: the server wants its nonce (``DPoP-Nonce``) in the
    proof.  The client retries once with the nonce by itself; this is raised only when the
    server asks again."""

    default_code = "use_dpop_nonce"


class InvalidAuthorizationDetails(TokenError):
    """RFC 9396 §5 ``invalid_authorization_details``: the ``authorization_details`` were
    refused (unknown type, not the type's schema, a type the client may not use)."""

    default_code = "invalid_authorization_details"


class RateLimited(TokenError):
    """HTTP 429 (RFC 6585 §4).  ``retry_after`` holds the ``Retry-After`` delay in seconds."""

    default_code = "rate_limited"


class ServerError(TokenError):
    """The token endpoint failed (5xx, ``server_error``, ``temporarily_unavailable``)
    or could not be reached at all (then ``status_code`` is None and ``__cause__`` holds
    the transport error)."""

    default_code = "server_error"


_BY_CODE: dict[str, type[TokenError]] = {
    "invalid_request": InvalidRequest,
    "invalid_client": InvalidClient,
    "invalid_apikey": InvalidClient,
    "invalid_grant": InvalidGrant,
    "unauthorized_client": UnauthorizedClient,
    "unsupported_grant_type": UnsupportedGrantType,
    "invalid_scope": InvalidScope,
    "invalid_dpop_proof": InvalidDPoPProof,
    "use_dpop_nonce": UseDPoPNonce,
    "invalid_authorization_details": InvalidAuthorizationDetails,
    "server_error": ServerError,
    "temporarily_unavailable": ServerError,
    "rate_limited": RateLimited,
    "too_many_requests": RateLimited,
    "slow_down": RateLimited,
}

_BY_STATUS: dict[int, type[TokenError]] = {
    400: InvalidRequest,
    401: InvalidClient,
    403: UnauthorizedClient,
    429: RateLimited,
}


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Parse an HTTP ``Retry-After`` header (RFC 9110 §10.2.3): delta-seconds or an
    HTTP-date.  Returns seconds from ``now`` (never negative), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


def _clean(value: Any, secrets: Iterable[str | None]) -> str:
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())  # no control characters or newlines in messages/logs
    text = redact(text, secrets)
    if len(text) > _MAX_DESCRIPTION:
        text = text[: _MAX_DESCRIPTION - 1] + "…"
    return text


def error_from_response(
    status_code: int,
    body: Mapping[str, Any] | None,
    *,
    retry_after: float | None = None,
    secrets: Iterable[str | None] = (),
) -> TokenError:
    """Build the typed error for a failed token response.

    ``body`` is the decoded JSON object (or None when the body was not JSON).  Both
    RFC 6749 §5.2 (``error``/``error_description``) and problem+json
    (``code``/``detail``/``title``/``status``/``systemCode``) are understood.  A 429
    is always :class:`RateLimited` and a 5xx always :class:`ServerError`, whatever the
    body says, so that retry decisions depend on the status alone.
    """
    secrets = list(secrets)
    body = body or {}
    code: str | None = None
    description = ""
    system_code: str | None = None
    error_uri: str | None = None

    raw_error = body.get("error")
    if isinstance(raw_error, str) and raw_error:
        code = raw_error
        description = _clean(body.get("error_description"), secrets)
        uri = body.get("error_uri")
        error_uri = uri if isinstance(uri, str) else None
    else:
        raw_code = body.get("code")
        if isinstance(raw_code, str) and raw_code:
            code = raw_code
        description = _clean(body.get("detail"), secrets) or _clean(body.get("title"), secrets)
        sc = body.get("systemCode")
        system_code = _clean(sc, secrets) or None
        uri = body.get("type")
        error_uri = uri if isinstance(uri, str) and uri != "about:blank" else None
        body_status = _int_or_none(body.get("status"))
        if status_code in (0, 200) and body_status:  # some gateways put the status in the body
            status_code = body_status

    code = _clean(code, secrets) or None
    cls: type[TokenError]
    if status_code == 429:
        cls = RateLimited
    elif status_code >= 500:
        cls = ServerError
    elif code is not None and code.lower() in _BY_CODE:
        cls = _BY_CODE[code.lower()]
    else:
        cls = _BY_STATUS.get(status_code, TokenError)
    return cls(
        description,
        error=code,
        status_code=status_code,
        error_uri=error_uri,
        system_code=system_code,
        retry_after=retry_after,
    )
