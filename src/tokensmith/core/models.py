"""Records the core works with. Plain frozen dataclasses; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "CONSENT_AUTHORIZED",
    "CONSENT_AWAITING",
    "AccessTokenRecord",
    "ApiKey",
    "AuthorizationCode",
    "Client",
    "ClientSecret",
    "Consent",
    "ConsentResource",
    "Grantor",
    "InitialAccessToken",
    "IssuedToken",
    "Merchant",
    "Profile",
    "PushedRequest",
    "RefreshGrant",
    "RefreshTokenRecord",
    "Resource",
    "Role",
    "Session",
    "SigningKeyRecord",
    "TokenFamily",
    "TokenFormat",
    "User",
    "Withdrawal",
]

TokenFormat = Literal["jwt", "opaque"]
#: The security profile a client follows (:mod:`tokensmith.core.profile`): ``fapi2`` is the
#: FAPI 2.0 Security Profile; ``default`` the plain OAuth 2.0 rules.
Profile = Literal["default", "fapi2"]

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"

#: The statuses of a :class:`ConsentResource` (:mod:`tokensmith.core.consent_resources`).
CONSENT_AWAITING = "awaiting_authorization"
CONSENT_AUTHORIZED = "authorized"
#: The statuses a consent is still live in: past ``expires_at`` it reads ``expired``.
_CONSENT_LIVE = (CONSENT_AWAITING, CONSENT_AUTHORIZED)


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A secret's hash; ``expires_at`` is set on the old secret during a rotation overlap.

    ``sealed``: for a ``client_secret_jwt`` client only (RFC 7523 §2.2, OIDC Core §9), the
    secret encrypted with the server's client-secret sealing key, which verifies the
    client's HMAC-signed assertions; never the secret in clear."""

    secret_hash: str = field(repr=False)
    created_at: float
    expires_at: float | None = None
    sealed: str | None = field(default=None, repr=False)

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
    #: RFC 9126 §6 ``require_pushed_authorization_requests``: this client's authorization
    #: requests must be pushed (:mod:`tokensmith.core.par`).
    require_par: bool = False
    #: RFC 9449 §5.2 ``dpop_bound_access_tokens``: every token request must carry a proof.
    require_dpop: bool = False
    #: RFC 7591 §2 ``jwks``: the client's public keys, a JWK Set as JSON text, that
    #: verify its ``private_key_jwt`` assertions (RFC 7523 §2.2).
    jwks: str | None = None
    #: RFC 7591 §2 ``jwks_uri``: where the client publishes that JWK Set instead.
    jwks_uri: str | None = None
    #: The security profile this client follows; ``None``: the server's
    #: (``TOKENSMITH_PROFILE``, :func:`tokensmith.core.profile.effective_profile`).
    profile: Profile | None = None
    #: RFC 8705 §2.1.2: what identifies a ``tls_client_auth`` client's certificate: the
    #: kind (``subject_dn``, ``san_dns``, ``san_uri``, ``san_ip``, ``san_email``;
    #: :data:`tokensmith.core.mtls.SUBJECT_KINDS`) and the registered value.
    tls_auth_kind: str | None = None
    tls_auth_value: str | None = None
    #: RFC 8705 §3.4 ``tls_client_certificate_bound_access_tokens``: the client's tokens
    #: are bound to the TLS client certificate it connects with.
    cert_bound_tokens: bool = False
    #: RFC 9396 §10 ``authorization_details_types``: the types of ``authorization_details``
    #: this client may request (``None``: every type the server supports).
    authorization_details_types: tuple[str, ...] | None = None
    #: When an administrator disabled the client (reversible, unlike ``revoked_at``): its
    #: token requests fail and its tokens are inactive until it is enabled again.
    disabled_at: float | None = None
    #: RFC 7009 §2.1 for every token at once: tokens issued to the client at or before this
    #: time are inactive (the admin API's "revoke tokens"; the client keeps working).
    tokens_revoked_before: float | None = None
    #: RFC 7592 §1: the hash of the registration access token of a client registered at
    #: ``/oauth/register`` (RFC 7591); ``None`` for a client made in the CLI or the panel.
    registration_token_hash: str | None = field(default=None, repr=False)
    #: RFC 7591 §2 metadata kept only to be read back (``client_uri``, ``contacts``,
    #: ``software_id`` ...), a JSON object as text.
    registration_metadata: str | None = None

    @property
    def registered(self) -> bool:
        """Made by dynamic client registration (RFC 7591)."""
        return self.registration_token_hash is not None

    @property
    def public(self) -> bool:
        """A public client (RFC 6749 §2.1) has no secret and must use PKCE."""
        return self.auth_methods == ("none",)

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.disabled_at is None

    def token_revoked(self, issued_at: float) -> bool:
        """Whether a token issued at ``issued_at`` was revoked with all the client's."""
        cutoff = self.tokens_revoked_before
        return cutoff is not None and issued_at <= cutoff

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

    @property
    def active(self) -> bool:
        return self.disabled_at is None


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
class InitialAccessToken:
    """RFC 7591 §3: a token that lets its bearer register clients (made with ``tokensmith
    registration token create``), stored as a hash. A client registered with it belongs to
    ``merchant_id``."""

    token_id: str
    token_hash: str = field(repr=False)
    created_at: float
    expires_at: float | None = None
    merchant_id: str | None = None
    revoked_at: float | None = None

    def usable_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


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
    #: :func:`~tokensmith.core.issuers.issuer_tag` of the issuer that issued it (None:
    #: stored before migration 0006).
    issuer_tag: str | None = None
    #: RFC 9449 §6: the JWK SHA-256 thumbprint of the DPoP key the token is bound to.
    jkt: str | None = None
    #: RFC 8705 §3.1 ``x5t#S256``: the TLS client certificate the token is bound to.
    x5t_s256: str | None = None
    #: RFC 9396 §9.1: the token's ``authorization_details``, canonical JSON text.
    authorization_details: str | None = None
    #: RFC 8707: the resources the token is for, space-separated (``None``: the server's
    #: audience).
    audience: str | None = None

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
    #: RFC 9396 §7: the ``authorization_details`` granted, canonical JSON text.
    authorization_details: str | None = None
    #: The consent resource the token acts under (:mod:`tokensmith.core.consent_resources`).
    consent_id: str | None = None
    #: The access token's format, ``jwt`` (RFC 9068) or ``opaque`` (for metrics).
    token_format: TokenFormat = "jwt"
    #: Its sender constraint: ``bearer``, ``dpop`` (RFC 9449), ``mtls`` (RFC 8705) or
    #: ``dpop+mtls`` (for metrics).
    binding: str = "bearer"


Role = Literal["admin", "member", "operator"]
ROLES: tuple[Role, ...] = ("admin", "member", "operator")


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in: a merchant's ``admin`` or ``member``, or a platform ``operator``
    (no merchant). The password is stored as an argon2id hash only."""

    user_id: str
    email: str
    password_hash: str = field(repr=False)
    role: Role
    merchant_id: str | None
    created_at: float
    disabled_at: float | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """RFC 6749 §4.1.2: a code, stored as a hash, bound to everything the token request must
    match. ``family_id`` names the token family its redemption starts (§4.1.2: a reused code
    revokes every token issued from it)."""

    code_hash: str = field(repr=False)
    client_id: str
    redirect_uri: str
    #: Whether the authorization request carried ``redirect_uri`` (RFC 6749 §4.1.3).
    redirect_uri_sent: bool
    #: RFC 7636 §4.2 S256 challenge, or ``None`` when the request had none.
    code_challenge: str | None
    merchant_id: str
    user_id: str
    scope: str
    family_id: str
    issued_at: float
    expires_at: float
    used_at: float | None = None
    #: The issuer the code was issued by (:func:`~tokensmith.core.issuers.issuer_tag`).
    issuer_tag: str | None = None
    #: RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (the request's
    #: ``dpop_jkt``, or the key of the proof sent with the push); the token request must
    #: carry a proof of that key.
    dpop_jkt: str | None = None
    #: RFC 9396: the ``authorization_details`` the user approved, canonical JSON text.
    authorization_details: str | None = None
    #: RFC 8707 §2: the resources the authorization request named, space-separated.
    resources: str | None = None
    #: The consent resource the user authorized (:mod:`tokensmith.core.consent_resources`).
    consent_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenFamily:
    """Every refresh and access token descended from one authorization (RFC 9700 §4.14.2).

    ``expires_at`` follows the newest refresh token (idle lifetime); ``absolute_expires_at``
    never moves."""

    family_id: str
    client_id: str
    merchant_id: str
    user_id: str
    scope: str
    created_at: float
    expires_at: float
    absolute_expires_at: float
    revoked_at: float | None = None
    #: RFC 9449 §5: the thumbprint of the DPoP key a public client's refresh tokens are
    #: bound to (``None``: not bound).
    jkt: str | None = None
    #: RFC 8705 §4: the ``x5t#S256`` of the certificate a public client's refresh tokens
    #: are bound to (``None``: not bound).
    x5t_s256: str | None = None
    #: RFC 9396 §6.2: the ``authorization_details`` granted, which refreshes may narrow.
    authorization_details: str | None = None
    #: RFC 8707 §2.2: the resources granted, space-separated; a refresh may narrow to them.
    resources: str | None = None
    #: The consent resource the family was authorized by, if any
    #: (:mod:`tokensmith.core.consent_resources`); its tokens carry its id.
    consent_id: str | None = None

    def live_at(self, now: float) -> bool:
        return self.revoked_at is None and now < min(self.expires_at, self.absolute_expires_at)


SpentReason = Literal["rotated", "superseded"]


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """One refresh token of a family (RFC 6749 §6), stored as a hash.

    ``spent_reason`` is ``rotated`` when the token itself was presented and exchanged, and
    ``superseded`` when a grace-window replay of its parent spent it unseen.
    ``replaced_by`` is the hash of the token issued in exchange; ``replayed_at`` marks the
    one grace-window replay a rotated token is allowed."""

    token_hash: str = field(repr=False)
    family_id: str
    client_id: str
    scope: str
    issued_at: float
    expires_at: float
    access_jti: str | None = None
    spent_at: float | None = None
    spent_reason: SpentReason | None = None
    replaced_by: str | None = field(default=None, repr=False)
    replayed_at: float | None = None
    revoked_at: float | None = None
    #: The issuer the token was issued by (:func:`~tokensmith.core.issuers.issuer_tag`).
    issuer_tag: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh-token exchange checks, read together: the token, its family and the
    merchant that authorized it (``None`` where the row is gone)."""

    token: RefreshTokenRecord
    family: TokenFamily | None
    merchant: Merchant | None


@dataclass(frozen=True, slots=True)
class Consent:
    """A remembered approval of ``scope`` for one user and client."""

    user_id: str
    client_id: str
    scope: str
    granted_at: float


@dataclass(frozen=True, slots=True)
class Grantor:
    """Whose authorizations of an app a withdrawal ends: one user's (the consent page), or
    those of every user of a merchant (the panel's Authorized apps). Exactly one is set."""

    user_id: str | None = None
    merchant_id: str | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.merchant_id is None):
            raise ValueError("a grantor is a user or a merchant")


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """What a withdrawal ended: consents forgotten, and token families that were live
    (unrevoked and unexpired) and are revoked now."""

    consents: int = 0
    families: int = 0

    def __bool__(self) -> bool:
        return bool(self.consents or self.families)


@dataclass(frozen=True, slots=True)
class Session:
    """A browser session (server side). The cookie holds a random token; only its hash is
    stored. ``user_id`` is ``None`` before login (the session then only anchors CSRF)."""

    session_hash: str = field(repr=False)
    user_id: str | None
    created_at: float
    last_seen_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """An authorization request a client pushed (RFC 9126 §2), kept until it is used once or
    expires. ``request_hash`` is the :func:`~tokensmith.core.credentials.token_key` of the
    random part of its ``request_uri``, which is never stored; ``params`` are the request's
    parameters without the client's credentials."""

    request_hash: str = field(repr=False)
    client_id: str
    params: tuple[tuple[str, str], ...] = field(repr=False)
    #: :func:`~tokensmith.core.issuers.issuer_tag` of the issuer it was pushed to.
    issuer_tag: str
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A registered API (RFC 8707 §2): the identifier tokens for it carry as ``aud``, its
    name on the consent page, its scopes, and its own token lifetime and format (``None``:
    the client's, else the server's)."""

    identifier: str
    name: str
    scopes: tuple[str, ...]
    access_token_ttl: int | None = None
    token_format: TokenFormat | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ConsentResource:
    """A consent lodged by a partner before the user sees it (the open-banking "intent"):
    what it asks for (RFC 9396 ``authorization_details``, canonical JSON text), its stored
    ``status`` and who authorized it. The status read from it is
    :meth:`status_at`: a non-terminal consent is ``expired`` once ``expires_at`` passed."""

    consent_id: str
    client_id: str
    status: str
    authorization_details: str
    created_at: float
    expires_at: float
    status_updated_at: float
    #: The user who authorized or rejected it, and their merchant.
    user_id: str | None = None
    merchant_id: str | None = None
    approved_at: float | None = None
    #: The token family the authorization's code starts (revoked with the consent).
    family_id: str | None = None

    def status_at(self, now: float) -> str:
        """The status at ``now``: ``expired`` for a non-terminal consent past its expiry."""
        if self.status in _CONSENT_LIVE and now >= self.expires_at:
            return "expired"
        return self.status
