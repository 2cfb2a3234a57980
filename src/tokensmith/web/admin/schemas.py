"""The admin API's JSON bodies, as pydantic models: requests are parsed by them (unknown
fields refused, RFC 9457 422 on a violation) and responses rendered through them, and the
OpenAPI document's schemas are theirs (JSON Schema 2020-12, as OpenAPI 3.1 uses). No
response model has a field for a secret's hash; a secret appears only in the one-time
answers of create and rotate (``client_secret``, ``key``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tokensmith.core.admin_api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "ApiKeyPage",
    "AuthorizedAppOut",
    "AuthorizedAppPage",
    "ClientCreate",
    "ClientCreated",
    "ClientKeys",
    "ClientOut",
    "ClientPage",
    "ClientUpdate",
    "ConsentOut",
    "ConsentPage",
    "ConsentQuery",
    "KeyRotate",
    "ListQuery",
    "MerchantCreate",
    "MerchantOut",
    "MerchantPage",
    "Problem",
    "SecretRotate",
    "SecretRotated",
    "SigningKeyOut",
    "SigningKeyPage",
    "TokensRevoked",
    "UserCreate",
    "UserOut",
    "UserPage",
    "Withdrawn",
    "iso",
]

_NAME = Field(min_length=1, max_length=200)
_ID = Field(min_length=1, max_length=64)
Timestamp = str


def iso(at: float | None) -> str | None:
    """RFC 3339 UTC time of a stored timestamp."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors --------------------------------------------------------------------------------


class FieldError(_Out):
    loc: list[str | int]
    msg: str


class Problem(_Out):
    """RFC 9457 §3 problem details, with ``code`` (a stable machine-readable reason)
    and, on 422, ``errors`` (which fields, and why)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[FieldError] | None = None


# -- listing -------------------------------------------------------------------------------


class ListQuery(_In):
    """``limit`` items from after ``cursor`` (the previous page's ``next_cursor``), those
    whose name or id contains ``q``."""

    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, max_length=512)
    q: str | None = Field(None, max_length=200)
    merchant_id: str | None = Field(None, max_length=64)


# -- merchants and users -------------------------------------------------------------------


class MerchantCreate(_In):
    name: str = _NAME


class MerchantOut(_Out):
    merchant_id: str
    name: str
    status: Literal["active", "disabled"]
    created_at: Timestamp
    disabled_at: Timestamp | None


class MerchantPage(_Out):
    items: list[MerchantOut]
    next_cursor: str | None


class UserCreate(_In):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    #: Write-only: checked against the password policy, stored as an argon2id hash.
    password: str = Field(min_length=1, max_length=1024)
    role: Literal["admin", "member"] = "member"


class UserOut(_Out):
    user_id: str
    email: str
    role: Literal["admin", "member", "operator"]
    merchant_id: str | None
    status: Literal["active", "disabled"]
    created_at: Timestamp
    disabled_at: Timestamp | None


class UserPage(_Out):
    items: list[UserOut]
    next_cursor: str | None


# -- clients -------------------------------------------------------------------------------

GrantType = Literal["client_credentials", "authorization_code", "refresh_token"]


def _client_credentials() -> list[GrantType]:
    return ["client_credentials"]


class ClientCreate(_In):
    """RFC 7591 §2-style metadata of a new client. ``jwks`` or ``jwks_uri`` make it a
    ``private_key_jwt`` client without a secret."""

    name: str = _NAME
    scope: str = Field("read", min_length=1, max_length=1000)
    grant_types: list[GrantType] = Field(
        default_factory=_client_credentials, min_length=1, max_length=3
    )
    merchant_id: str | None = Field(None, max_length=64)
    token_format: Literal["jwt", "opaque"] | None = None
    access_token_ttl: int | None = Field(None, ge=1, le=10**7)
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    public: bool = False
    default_scope: str | None = Field(None, max_length=1000)
    require_par: bool = False
    require_dpop: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(None, max_length=2000)


class ClientUpdate(_In):
    """The fields to change (a list replaces the client's whole list)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    scope: str | None = Field(None, min_length=1, max_length=1000)
    grant_types: list[GrantType] | None = Field(None, min_length=1, max_length=3)
    token_format: Literal["jwt", "opaque"] | None = None
    access_token_ttl: int | None = Field(None, ge=1, le=10**7)
    redirect_uris: list[str] | None = Field(None, max_length=20)


class ClientKeys(_In):
    """RFC 7591 §2: exactly one of ``jwks`` (a JWK Set of public keys) or ``jwks_uri``."""

    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(None, max_length=2000)


class ClientOut(_Out):
    client_id: str
    name: str
    merchant_id: str | None
    kind: Literal["key", "app"]
    status: Literal["active", "disabled", "revoked"]
    scope: str
    default_scope: str | None
    grant_types: list[str]
    token_endpoint_auth_methods: list[str]
    token_format: Literal["jwt", "opaque"] | None
    access_token_ttl: int | None
    redirect_uris: list[str]
    require_par: bool
    require_dpop: bool
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    #: How many secrets work now (their values are never shown again, nor their hashes).
    live_secrets: int
    created_at: Timestamp
    disabled_at: Timestamp | None
    revoked_at: Timestamp | None
    tokens_revoked_before: Timestamp | None


class ClientCreated(ClientOut):
    #: Shown once; stored only as a hash. ``null`` for public and key-based clients.
    client_secret: str | None


class ClientPage(_Out):
    items: list[ClientOut]
    next_cursor: str | None


class SecretRotate(_In):
    #: Seconds the old secrets keep working (a deployment's overlap).
    keep_old_for: int = Field(0, ge=0, le=30 * 86400)


class SecretRotated(_Out):
    client_id: str
    #: Shown once; stored only as a hash.
    client_secret: str
    old_secrets_expire_at: Timestamp


class TokensRevoked(_Out):
    #: Tokens issued at or before this time are inactive.
    revoked_before: Timestamp
    clients: int
    families: int


# -- developer API keys --------------------------------------------------------------------


class ApiKeyCreate(_In):
    name: str = _NAME
    merchant_id: str | None = Field(None, max_length=64)


class ApiKeyOut(_Out):
    key_id: str
    name: str
    merchant_id: str | None
    status: Literal["active", "revoked"]
    created_at: Timestamp
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKeyOut):
    #: Shown once; stored only as a SHA-256 hash.
    key: str


class ApiKeyPage(_Out):
    items: list[ApiKeyOut]
    next_cursor: str | None


# -- signing keys --------------------------------------------------------------------------


class KeyRotate(_In):
    alg: Literal["ES256", "RS256", "EdDSA"] | None = None
    #: Publish now, sign this many seconds later (300 or more lets cached key sets learn it).
    activate_after: int = Field(0, ge=0, le=7 * 86400)


class SigningKeyOut(_Out):
    kid: str
    alg: str
    status: Literal["signing", "next", "published", "expired"]
    created_at: Timestamp
    retired_at: Timestamp | None
    publish_until: Timestamp | None
    #: The public key only (RFC 7517 §4).
    public_jwk: dict[str, Any]


class SigningKeyPage(_Out):
    items: list[SigningKeyOut]
    next_cursor: str | None


# -- authorizations ------------------------------------------------------------------------


class AuthorizedAppOut(_Out):
    client_id: str
    name: str
    #: scope -> what it lets the app do
    scopes: dict[str, str]
    users: list[str]
    remembered: bool
    live_grants: int
    first_at: Timestamp | None
    last_at: Timestamp | None


class AuthorizedAppPage(_Out):
    items: list[AuthorizedAppOut]
    next_cursor: str | None


class Withdrawn(_Out):
    client_id: str
    consents: int
    families: int


# -- audit events --------------------------------------------------------------------------


ConsentStatus = Literal[
    "awaiting_authorization", "authorized", "rejected", "consumed", "revoked", "expired"
]


class ConsentQuery(ListQuery):
    """A listing of consent resources, also by ``status`` (as it reads now) and by the
    ``client_id`` that lodged them; ``merchant_id`` is the merchant whose user decided."""

    status: ConsentStatus | None = None
    client_id: str | None = Field(None, max_length=64)


class ConsentOut(_Out):
    """A consent resource (docs/consents.md#the-consent-resource)."""

    consent_id: str
    status: ConsentStatus
    client_id: str
    authorization_details: list[dict[str, Any]]
    created_at: Timestamp
    expires_at: Timestamp
    status_updated_at: Timestamp
    #: the user who authorized or rejected it, and their merchant
    user_id: str | None
    merchant_id: str | None
    approved_at: Timestamp | None


class ConsentPage(_Out):
    items: list[ConsentOut]
    next_cursor: str | None


class AuditQueryIn(_In):
    """Events newest first, ``limit`` from after ``cursor``; ``type`` matches a type or a
    prefix of one (``client`` matches ``client.created``)."""

    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, max_length=128)
    merchant_id: str | None = Field(None, max_length=64)
    type: str | None = Field(None, max_length=64)
    actor: str | None = Field(None, max_length=200)


class AuditEventOut(_Out):
    id: str
    at: Timestamp
    type: str
    actor: str
    outcome: Literal["success", "failure"]
    merchant_id: str | None
    source: str | None
    subject: str | None
    details: dict[str, str | int | float | bool | None]


class AuditEventPage(_Out):
    items: list[AuditEventOut]
    next_cursor: str | None
