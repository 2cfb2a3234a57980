"""tokensmith.client: an OAuth 2.0 token client.

* client_credentials (RFC 6749 §4.4) against any RFC 6749 server, with RFC 8414
  discovery, and the tpay / TBC gateway dialects;
* authorization code with PKCE (RFC 6749 §4.1, RFC 7636) and rotating refresh tokens
  (RFC 6749 §6) persisted through a :class:`RefreshTokenStore`;
* caching with single-flight renewal, an optional cross-process :class:`FileTokenCache`,
  retries with backoff, and ``httpx.Auth`` / ``requests`` integration;
* DPoP sender-constrained tokens (RFC 9449) with ``dpop=True`` or ``dpop=DPoPKey(...)``;
* JWT client authentication (RFC 7523 §2.2): ``private_key_jwt`` with ``private_key=...``
  (or a :class:`PrivateKeyJwt`), ``client_secret_jwt`` with ``auth_method=``;
* consents a partner app registers before its user approves them
  (``create_consent`` / ``get_consent`` / ``revoke_consent``, a :class:`Consent`).

This package does not depend on the tokensmith server packages.
"""

from ._base import AuthMethod, ClientCert, Dialect, RetryPolicy, tls_verify
from .aio import AsyncTokenClient
from .assertion import ClientSecretJwt, PrivateKeyJwt
from .cache import FileTokenCache
from .consents import Consent
from .dpop import DPoPKey
from .errors import (
    InvalidAuthorizationDetails,
    InvalidClient,
    InvalidDPoPProof,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    RateLimited,
    ServerError,
    TokenError,
    UnauthorizedClient,
    UnsupportedGrantType,
    UseDPoPNonce,
)
from .pkce import PKCE, build_authorization_url, code_challenge_s256, make_code_verifier, make_state
from .requests_auth import RequestsAuth
from .stores import FileRefreshTokenStore, MemoryRefreshTokenStore, RefreshTokenStore
from .sync import TokenClient
from .token import Token

__all__ = [
    "PKCE",
    "AsyncTokenClient",
    "AuthMethod",
    "ClientCert",
    "ClientSecretJwt",
    "Consent",
    "DPoPKey",
    "Dialect",
    "FileRefreshTokenStore",
    "FileTokenCache",
    "InvalidAuthorizationDetails",
    "InvalidClient",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "MemoryRefreshTokenStore",
    "PrivateKeyJwt",
    "RateLimited",
    "RefreshTokenStore",
    "RequestsAuth",
    "RetryPolicy",
    "ServerError",
    "Token",
    "TokenClient",
    "TokenError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UseDPoPNonce",
    "build_authorization_url",
    "code_challenge_s256",
    "make_code_verifier",
    "make_state",
    "tls_verify",
]
