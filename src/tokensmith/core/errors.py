"""OAuth 2.0 errors, one class per RFC error code.

Rendering to a wire dialect lives in :mod:`tokensmith.web.dialects`; the core
only says *what* went wrong.

Error map (class, ``error`` code, HTTP ``status``, where the code is defined)::

    Exception
     +-- OAuthError                  server_error               400  (base only)
          +-- InvalidRequest         invalid_request            400  RFC 6749 5.2
          +-- InvalidClient          invalid_client             401  RFC 6749 5.2
          +-- InvalidGrant           invalid_grant              400  RFC 6749 5.2
          +-- UnauthorizedClient     unauthorized_client        400  RFC 6749 5.2
          +-- UnsupportedGrantType   unsupported_grant_type     400  RFC 6749 5.2
          +-- InvalidScope           invalid_scope              400  RFC 6749 5.2
          +-- AccessDenied           access_denied              403  RFC 6749 4.1.2.1
          +-- UnsupportedResponseType  unsupported_response_type  400  RFC 6749 4.1.2.1
          +-- UnsupportedTokenType   unsupported_token_type     400  RFC 7009 2.2.1
          +-- InvalidToken           invalid_token              401  RFC 6750 3.1
          +-- ServerError            server_error               500  RFC 6749 4.1.2.1
          +-- TemporarilyUnavailable temporarily_unavailable    503  RFC 6749 4.1.2.1
          +-- RateLimited            slow_down                  429  RFC 6585 4
          +-- InvalidTarget          invalid_target             400  RFC 8707 2
          +-- InvalidRequestUri      invalid_request_uri        400  OIDC Core 3.1.2.6
          +-- RequestNotSupported    request_not_supported      400  OIDC Core 3.1.2.6
          +-- InvalidDpopProof       invalid_dpop_proof         400  RFC 9449 5, 7.1
          +-- UseDpopNonce           use_dpop_nonce             400  RFC 9449 8, 12.2
          +-- InvalidAuthorizationDetails  invalid_authorization_details  400  RFC 9396 5

Per dialect (:mod:`tokensmith.web.dialects.compat`): ``oauth``, ``tpay`` and ``dot``
answer RFC 6749 §5.2 JSON with the status above, ``WWW-Authenticate: Basic`` on an
``InvalidClient`` after a Basic login and ``Retry-After`` on 429 and 503; ``tbc`` answers
RFC 7807 ``application/problem+json`` with the code in ``code``, the same status except
400 for ``InvalidClient``, and no ``WWW-Authenticate``. Every dialect sends a
``UseDpopNonce``'s nonce in the ``DPoP-Nonce`` header (RFC 9449 §8). Two more subclasses
live next to their endpoint: ``web.endpoints.token.MethodNotAllowed`` (``invalid_request``,
405) and ``web.dialects.problem.ApiKeyRejected`` (``invalid_apikey``, 401, ``tbc`` only).
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "InvalidAuthorizationDetails",
    "InvalidClient",
    "InvalidDpopProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidRequestUri",
    "InvalidScope",
    "InvalidTarget",
    "InvalidToken",
    "OAuthError",
    "RateLimited",
    "RequestNotSupported",
    "ServerError",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
    "UseDpopNonce",
]


class OAuthError(Exception):
    """Base class. ``error`` is the RFC 6749 §5.2 code, ``status`` the HTTP status."""

    error: str = "server_error"
    status: int = 400
    #: The registered client the refusal concerns, once it was found; ``None`` before (a
    #: presented ``client_id`` that names no client may be anything, a secret included).
    client_id: str | None = None

    def __init__(self, description: str = "", *, reason: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        #: A short machine label for metrics and audit (never holds a secret).
        self.reason = reason or self.error

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2 ``invalid_request``."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2 ``invalid_client``: 401, with ``WWW-Authenticate`` under Basic."""

    error = "invalid_client"
    status = 401

    def __init__(
        self, description: str = "", *, reason: str | None = None, basic: bool = False
    ) -> None:
        super().__init__(description, reason=reason)
        self.basic = basic


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2 ``invalid_grant``."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2 ``unauthorized_client``."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2 ``unsupported_grant_type``."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2 ``invalid_scope``."""

    error = "invalid_scope"


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1 ``access_denied``."""

    error = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1 ``unsupported_response_type``."""

    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1 ``unsupported_token_type``."""

    error = "unsupported_token_type"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1 ``invalid_token``."""

    error = "invalid_token"
    status = 401


class ServerError(OAuthError):
    """RFC 6749 §4.1.2.1 ``server_error``."""

    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1 ``temporarily_unavailable``: the server cannot answer now (its
    database is unreachable), and the same request may succeed later. HTTP 503 with
    ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3), on the token endpoint's RFC 6749 §5.2
    error response as on the others."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(
        self,
        description: str = "the service is temporarily unavailable",
        *,
        reason: str | None = None,
        retry_after: int = 5,
    ) -> None:
        super().__init__(description, reason=reason)
        #: Seconds the client should wait before it tries again.
        self.retry_after = retry_after


class RateLimited(OAuthError):
    """Too many failed attempts: HTTP 429 (RFC 6585 §4) with ``Retry-After``."""

    error = "slow_down"
    status = 429

    def __init__(self, retry_after: int, description: str = "too many failed attempts") -> None:
        super().__init__(description, reason="rate_limited")
        self.retry_after = retry_after


class InvalidTarget(OAuthError):
    """RFC 8707 §2 ``invalid_target``: a ``resource`` that is invalid, unknown, malformed,
    not granted, or not one this client may have a token for
    (:mod:`tokensmith.core.resources`)."""

    error = "invalid_target"


class InvalidRequestUri(OAuthError):
    """``invalid_request_uri`` (OpenID Connect Core §3.1.2.6, the codes RFC 9101 uses): the
    ``request_uri`` of an authorization request is unknown, expired, already used or another
    client's (RFC 9126 §4). Shown to the user, never redirected: the redirect URI was in
    the pushed request."""

    error = "invalid_request_uri"


class RequestNotSupported(OAuthError):
    """``request_not_supported`` (OpenID Connect Core §3.1.2.6, the codes RFC 9101 uses): a
    ``request`` parameter (a JAR request object, RFC 9101), which is not supported."""

    error = "request_not_supported"


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5 (token endpoint) and §7.1 ``invalid_dpop_proof``: the ``DPoP`` proof is
    missing where it is required, malformed, or fails a check of §4.3."""

    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """RFC 9449 §8 ``use_dpop_nonce``: the proof must carry the server's nonce, sent in the
    ``DPoP-Nonce`` response header (``nonce``)."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str, description: str = "use the DPoP-Nonce header's nonce") -> None:
        super().__init__(description, reason="dpop_nonce")
        #: The nonce the next proof must carry (public: it is sent to anyone who asks).
        self.nonce = nonce


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5 ``invalid_authorization_details``: an unknown type, an object that does
    not conform to its type's schema, a type the client may not use (§10), or more than
    was granted (§6.2)."""

    error = "invalid_authorization_details"
