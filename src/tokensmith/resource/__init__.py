"""tokensmith.resource: protect an API with tokensmith (or any RFC 9068 / RFC 7662) tokens.

* :class:`TokenValidator` (asyncio) / :class:`SyncTokenValidator`: JWT access tokens
  (RFC 9068) checked locally against the issuer's JWKS, opaque ones by introspection
  (RFC 7662); both give an :class:`AccessToken`.
* :class:`BearerAuthMiddleware` and :func:`require_scopes` for Starlette and FastAPI,
  answering per RFC 6750 §3.
* :func:`require_authorization_details` next to it: the RFC 9396 details a token carries,
  checked and handed to the endpoint; with ``consume=True`` the token's single-use
  consent is spent at the server first (``validator.consume(token)`` outside Starlette).
* DPoP (RFC 9449): ``TokenValidator(..., dpop="allowed" | "required")`` takes
  ``Authorization: DPoP`` with a proof checked by :class:`DPoPVerifier`.
* Mutual TLS (RFC 8705 §3): ``TokenValidator(..., mtls="allowed" | "required",
  trusted_proxies=(...))`` checks certificate-bound tokens against the certificate a TLS
  proxy forwards (:class:`CertificateBinding`).
"""

from .asgi import (
    AsyncValidator,
    BearerAuthMiddleware,
    ScopeGuard,
    authenticate,
    bearer_exception_handler,
    extract_bearer,
    extract_credentials,
    render_for,
    require_scopes,
)
from .details import (
    DetailsCheck,
    DetailsGuard,
    DetailsToken,
    details_of,
    require_authorization_details,
)
from .dpop import (
    DEFAULT_DPOP_ALGORITHMS,
    CheckedProof,
    DPoPMode,
    DPoPVerifier,
    HmacNonceSource,
    MemoryReplayCache,
    NonceSource,
    ReplayCache,
    jwk_thumbprint,
)
from .errors import (
    BearerError,
    ConsentNotActive,
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    UseDPoPNonce,
    ValidationUnavailable,
    dpop_challenge,
    www_authenticate,
)
from .mtls import CertificateBinding, ClientCertificate, MtlsMode
from .validator import (
    DEFAULT_ALGORITHMS,
    RFC9068_REQUIRED_CLAIMS,
    AccessToken,
    SyncTokenValidator,
    TokenValidator,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_DPOP_ALGORITHMS",
    "RFC9068_REQUIRED_CLAIMS",
    "AccessToken",
    "AsyncValidator",
    "BearerAuthMiddleware",
    "BearerError",
    "CertificateBinding",
    "CheckedProof",
    "ClientCertificate",
    "ConsentNotActive",
    "DPoPMode",
    "DPoPVerifier",
    "DetailsCheck",
    "DetailsGuard",
    "DetailsToken",
    "HmacNonceSource",
    "InsufficientScope",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "MemoryReplayCache",
    "MissingToken",
    "MtlsMode",
    "NonceSource",
    "ReplayCache",
    "ScopeGuard",
    "SyncTokenValidator",
    "TokenValidator",
    "UseDPoPNonce",
    "ValidationUnavailable",
    "authenticate",
    "bearer_exception_handler",
    "details_of",
    "dpop_challenge",
    "extract_bearer",
    "extract_credentials",
    "jwk_thumbprint",
    "render_for",
    "require_authorization_details",
    "require_scopes",
    "www_authenticate",
]
