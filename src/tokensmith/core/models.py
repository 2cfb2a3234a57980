"""Records the core works with. Plain frozen dataclasses; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "AccessTokenRecord",
    "ApiKey",
    "Client",
    "ClientSecret",
    "IssuedToken",
    "Merchant",
    "SigningKeyRecord",
    "TokenFormat",
]

TokenFormat = Literal["jwt", "opaque"]

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A secret's hash; ``expires_at`` is set on the old secret during a rotation overlap."""

    secret_hash: str = field(repr=False)
    created_at: float
    expires_at: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class Client:
    """An OAuth client (RFC 6749 §2): an API key or a partner app."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...] = (CLIENT_CREDENTIALS,)
    default_scopes: tuple[str, ...] | None = None
    secrets: tuple[ClientSecret, ...] = field(default=(), repr=False)
    token_format: TokenFormat | None = None
    access_token_ttl: int | None = None
    merchant_id: str | None = None
    redirect_uris: tuple[str, ...] = ()
    form_uri: str | None = None
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    created_at: float = 0.0
    revoked_at: float | None = None

    @property
    def public(self) -> bool:
        """A public client (RFC 6749 §2.1) has no secret and must use PKCE."""
        return self.auth_methods == ("none",)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def subject(self) -> str:
        """The token ``sub``: the merchant it acts for, else the client itself."""
        return self.merchant_id or self.client_id

    def granted_default_scopes(self) -> tuple[str, ...]:
        return self.default_scopes if self.default_scopes is not None else self.scopes

    def evolve(self, **changes: object) -> Client:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Merchant:
    """A company that owns API keys and authorizes partner apps."""

    merchant_id: str
    name: str
    created_at: float
    disabled_at: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A developer app key for the ``apikey`` header of the ``tbc`` dialect."""

    key_id: str
    name: str
    key_hash: str = field(repr=False)
    created_at: float
    merchant_id: str | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """A stored access token: opaque tokens, family-bound tokens, and revocation tombstones."""

    jti: str
    client_id: str
    subject: str
    scope: str
    issued_at: float
    expires_at: float
    token_hash: str | None = field(default=None, repr=False)
    family_id: str | None = None
    revoked_at: float | None = None

    def active_at(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """A JWS signing key. The private key is stored encrypted."""

    kid: str
    alg: str
    private_key_encrypted: bytes = field(repr=False)
    public_jwk: str
    created_at: float
    retired_at: float | None = None
    publish_until: float | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token response, before a dialect renders it (RFC 6749 §5.1)."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    issued_at: int
    jti: str
    client_id: str
    subject: str
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
