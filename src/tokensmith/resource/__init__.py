"""tokensmith.resource: protect an API with tokensmith (or any RFC 9068 / RFC 7662) tokens.

* :class:`TokenValidator` (asyncio) / :class:`SyncTokenValidator`: JWT access tokens
  (RFC 9068) checked locally against the issuer's JWKS, opaque ones by introspection
  (RFC 7662); both give an :class:`AccessToken`.
* :class:`BearerAuthMiddleware` and :func:`require_scopes` for Starlette and FastAPI,
  answering per RFC 6750 §3.
"""

from .asgi import (
    AsyncValidator,
    BearerAuthMiddleware,
    ScopeGuard,
    bearer_exception_handler,
    extract_bearer,
    require_scopes,
)
from .errors import (
    BearerError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ValidationUnavailable,
    www_authenticate,
)
from .validator import (
    DEFAULT_ALGORITHMS,
    RFC9068_REQUIRED_CLAIMS,
    AccessToken,
    SyncTokenValidator,
    TokenValidator,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "RFC9068_REQUIRED_CLAIMS",
    "AccessToken",
    "AsyncValidator",
    "BearerAuthMiddleware",
    "BearerError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "ScopeGuard",
    "SyncTokenValidator",
    "TokenValidator",
    "ValidationUnavailable",
    "bearer_exception_handler",
    "extract_bearer",
    "require_scopes",
    "www_authenticate",
]
