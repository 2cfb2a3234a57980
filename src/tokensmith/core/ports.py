"""The ports of the core: the narrow interfaces it needs from storage.

The core declares them and depends on nothing else; the storage layer implements them.
One SQLAlchemy implementation serves SQLite and PostgreSQL
(:mod:`tokensmith.storage.sql`); :mod:`tokensmith.storage.memory` serves the
core's tests; :class:`tokensmith.storage.revocations.RevocationView` implements
:class:`RevocationLookup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tokensmith.core.audit import AuditStore
from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    AuthorizationCode,
    Client,
    ClientSecret,
    Consent,
    ConsentResource,
    Grantor,
    InitialAccessToken,
    Merchant,
    PushedRequest,
    RefreshGrant,
    RefreshTokenRecord,
    Resource,
    Session,
    SigningKeyRecord,
    TokenFamily,
    User,
    Withdrawal,
)
from tokensmith.core.panel_models import AuthFailure, Reveal, TokenCount

__all__ = [
    "ActivityReader",
    "ActivityStore",
    "ApiKeyKeeper",
    "ApiKeyStore",
    "AuthorizationCodeStore",
    "ClientReader",
    "ClientStore",
    "CodeWriter",
    "ConsentResourceStore",
    "ConsentStore",
    "DetailsTypeStore",
    "GrantStore",
    "InitialTokenStore",
    "JwksFetcher",
    "JwksUnavailable",
    "KeyStore",
    "MerchantFamilyStore",
    "MerchantReader",
    "MerchantStore",
    "PanelStore",
    "PurgeStore",
    "PushedRequestStore",
    "RefreshTokenStore",
    "ReplayCache",
    "ResourceReader",
    "ResourceStore",
    "RevealKeeper",
    "RevealStore",
    "RevocationLookup",
    "ServiceStore",
    "SessionEnder",
    "SessionKeeper",
    "SessionStore",
    "Store",
    "TokenStore",
    "UserLister",
    "UserReader",
    "UserStore",
    "WithdrawalStore",
]


class ClientReader(Protocol):
    async def get_client(self, client_id: str) -> Client | None: ...


class ClientStore(ClientReader, Protocol):
    async def add_client(self, client: Client) -> None: ...

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]: ...

    async def update_client(self, client: Client) -> None:
        """Replace the client's mutable fields (not its secrets)."""
        ...

    async def revoke_client(self, client_id: str, at: float) -> bool: ...

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        """Add ``new``; live secrets without an end get ``old_expires_at``; drop ended ones."""
        ...

    async def delete_client(self, client_id: str) -> bool:
        """Remove the client with its secrets, its access tokens, refresh token families,
        authorization codes, consents and pushed requests, in one transaction; False if
        there is no such client."""
        ...


class InitialTokenStore(Protocol):
    """RFC 7591 §3 initial access tokens, by the hash of the token."""

    async def add_initial_token(self, token: InitialAccessToken) -> None: ...

    async def find_initial_token(self, token_hash: str) -> InitialAccessToken | None: ...

    async def list_initial_tokens(self) -> list[InitialAccessToken]: ...

    async def revoke_initial_token(self, token_id: str, at: float) -> bool:
        """Set ``revoked_at`` if unset; False if unknown or already revoked."""
        ...


class TokenStore(Protocol):
    async def add_access_token(self, record: AccessTokenRecord) -> None: ...

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None: ...

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None: ...

    @property
    def revocation_generation(self) -> int:
        """Counts the access-token revocations made through this store object."""
        ...

    async def revoked_since(self, since: float, now: float) -> list[tuple[str, float, float]]:
        """``(jti, revoked_at, expires_at)`` of tokens revoked at or after ``since`` that
        are unexpired at ``now``."""
        ...

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        """Mark ``record`` revoked, inserting it as a tombstone if it is not stored (a JWT)."""
        ...

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` tokens that expired before ``before``; return the count."""
        ...


class RevocationLookup(Protocol):
    """When a JWT was revoked (:class:`tokensmith.storage.revocations.RevocationView`)."""

    async def revoked_at(self, jti: str) -> float | None: ...

    async def aclose(self) -> None:
        """Wait for any read still in flight (at shutdown, before the store closes)."""
        ...


class ReplayCache(Protocol):
    """Values that may be used once: the ``jti`` of a DPoP proof (RFC 9449 §11.1), later
    of a client assertion (RFC 7523 §3).  Shared by every instance that shares the
    backing store (:mod:`tokensmith.storage.replay`, :mod:`tokensmith.storage.sql.replay`)."""

    async def first_use(self, key: str, expires_at: float) -> bool:
        """Remember ``key`` until ``expires_at``; True if it was not remembered already.
        Atomic: of concurrent callers with one key, on any instance, exactly one gets True.
        ``key`` is at most 64 characters."""
        ...

    async def aclose(self) -> None:
        """Release what the cache holds of its own (at shutdown, before the store closes)."""
        ...


class JwksUnavailable(Exception):
    """A ``jwks_uri`` could not be fetched; the message says why (no secret in it)."""


class JwksFetcher(Protocol):
    """Fetches a client's JWK Set from its ``jwks_uri`` (RFC 7591 §2) for
    ``private_key_jwt`` (:mod:`tokensmith.core.client_assertion`)."""

    async def fetch(self, uri: str) -> bytes:
        """The body at ``uri``; raises :class:`JwksUnavailable` on any failure."""
        ...

    async def aclose(self) -> None:
        """Close its connections (at shutdown)."""
        ...


class KeyStore(Protocol):
    async def list_signing_keys(self) -> list[SigningKeyRecord]: ...

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        """Store ``key``; if ``retire_others_at`` is set, the others stop signing then."""
        ...

    async def add_first_signing_key(self, key: SigningKeyRecord) -> bool:
        """Store ``key`` only if no key signs yet; atomic against concurrent callers."""
        ...

    async def set_publish_until(self, kid: str, until: float) -> None: ...


class ApiKeyKeeper(Protocol):
    """Developer app keys as an administrator sees them
    (:class:`tokensmith.core.client_admin.ApiKeys`)."""

    async def add_api_key(self, key: ApiKey) -> None: ...

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: str, at: float) -> bool: ...

    async def replace_api_key_hash(self, key_id: str, key_hash: str) -> bool:
        """Give a live key a new value's hash (the old value is refused from then on);
        False if no live key has this id."""
        ...


class ApiKeyStore(ApiKeyKeeper, Protocol):
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...


class MerchantReader(Protocol):
    async def get_merchant(self, merchant_id: str) -> Merchant | None: ...


class MerchantStore(MerchantReader, Protocol):
    async def add_merchant(self, merchant: Merchant) -> None: ...

    async def find_merchant_by_name(self, name: str) -> Merchant | None: ...

    async def list_merchants(self) -> list[Merchant]: ...

    async def disable_merchant(self, merchant_id: str, at: float) -> bool:
        """Set ``disabled_at`` if unset; False if unknown or already disabled."""
        ...


class UserReader(Protocol):
    async def get_user(self, user_id: str) -> User | None: ...


class UserLister(Protocol):
    async def list_users(self, merchant_id: str | None = None) -> list[User]: ...


class UserStore(UserReader, UserLister, Protocol):
    async def add_user(self, user: User) -> None:
        """Raises ``KeyError`` if the e-mail address is taken."""
        ...

    async def find_user_by_email(self, email: str) -> User | None: ...

    async def disable_user(self, user_id: str, at: float) -> bool: ...

    async def update_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace the user's password hash if it is still ``old_hash`` (a conditional
        UPDATE: a password changed meanwhile wins); False if nothing was replaced."""
        ...


class CodeWriter(Protocol):
    async def add_code(self, code: AuthorizationCode) -> None: ...


class AuthorizationCodeStore(CodeWriter, Protocol):
    async def find_code(self, code_hash: str) -> AuthorizationCode | None: ...

    async def redeem_code(
        self,
        code_hash: str,
        at: float,
        family: TokenFamily,
        first: RefreshTokenRecord | None,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """In one transaction: mark the code used if it is unused (a conditional UPDATE), and
        store the family, its first refresh token (if any) and ``access``, the access token
        issued with them. False, and nothing written, if the code was already used."""
        ...

    async def purge_codes(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` codes that expired before ``before``."""
        ...


class RefreshTokenStore(Protocol):
    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None: ...

    async def find_refresh_grant(self, token_hash: str) -> RefreshGrant | None:
        """The token with its family and the family's merchant, in one read."""
        ...

    async def get_family(self, family_id: str) -> TokenFamily | None: ...

    async def rotate_refresh_token(
        self,
        old_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """In one transaction: spend ``old_hash`` (``rotated``) only if it is unspent and
        unrevoked and its family is live, store ``new`` (and ``access``, the access token
        issued with it), and move the family's idle expiry to ``new.expires_at``. False, and
        nothing written, otherwise."""
        ...

    async def replay_refresh_token(
        self,
        old_hash: str,
        successor_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """The grace-window replay, in one transaction: mark ``old_hash`` replayed (only if it
        was ``rotated`` into ``successor_hash`` and never replayed), spend ``successor_hash``
        as ``superseded`` (only if unspent and unrevoked, in a live family), revoke the access
        token issued with ``successor_hash``, store ``new`` and ``access`` and move the
        family's idle expiry. All or nothing: False, and nothing written, otherwise, so of
        two replays of one token at most one succeeds."""
        ...

    async def revoke_family(self, family_id: str, at: float) -> bool:
        """Revoke the family, its refresh tokens and its access tokens. True if it was live."""
        ...

    async def revoke_families(self, user_id: str, client_id: str, at: float) -> int:
        """Revoke every family a user granted a client; return how many were live."""
        ...

    async def purge_families(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` families (with their refresh tokens) that ended before
        ``before``: idle or absolute expiry. Return the number of refresh tokens deleted."""
        ...


class ConsentStore(Protocol):
    async def get_consent(self, user_id: str, client_id: str) -> Consent | None: ...

    async def save_consent(self, consent: Consent) -> None:
        """Insert or replace the consent of ``(user_id, client_id)``."""
        ...

    async def delete_consent(self, user_id: str, client_id: str) -> bool: ...

    async def list_consents(self, user_id: str) -> list[Consent]: ...


class ConsentResourceStore(Protocol):
    """Consent resources (:mod:`tokensmith.core.consent_resources`). Every change of
    status is one conditional UPDATE: of concurrent callers at most one gets True."""

    async def add_consent_resource(self, consent: ConsentResource) -> None: ...

    async def get_consent_resource(self, consent_id: str) -> ConsentResource | None: ...

    async def authorize_consent_resource(
        self,
        consent_id: str,
        client_id: str,
        *,
        user_id: str,
        merchant_id: str,
        family_id: str,
        at: float,
        expires_at: float,
    ) -> bool:
        """``awaiting_authorization`` (and unexpired at ``at``, and ``client_id``'s) to
        ``authorized`` by the user, for the token family ``family_id``, now lasting until
        ``expires_at``. False, and nothing written, otherwise."""
        ...

    async def change_consent_resource(
        self,
        consent_id: str,
        old: Sequence[str],
        new: str,
        at: float,
        *,
        user_id: str | None = None,
        merchant_id: str | None = None,
    ) -> bool:
        """From a status of ``old`` (and unexpired at ``at``) to ``new``; ``user_id`` and
        ``merchant_id``, when given, record who decided. False, and nothing written,
        otherwise."""
        ...

    async def list_consent_resources(
        self, *, client_id: str | None = None, merchant_id: str | None = None
    ) -> list[ConsentResource]:
        """The consents of a client, or authorized (or rejected) by a merchant's users."""
        ...

    async def purge_consent_resources(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` consents that expired before ``before`` (an authorized
        one outlives its token family)."""
        ...


class SessionKeeper(Protocol):
    """One browser session at a time (:class:`tokensmith.core.sessions.Sessions`)."""

    async def add_session(self, session: Session) -> None: ...

    async def get_session(self, session_hash: str) -> Session | None: ...

    async def touch_session(self, session_hash: str, at: float) -> None:
        """Record activity (the idle timer restarts at ``at``)."""
        ...

    async def delete_session(self, session_hash: str) -> None: ...


class SessionEnder(Protocol):
    async def delete_user_sessions(self, user_id: str) -> int: ...


class SessionStore(SessionKeeper, SessionEnder, Protocol):
    async def purge_sessions(self, idle_before: float, now: float, batch: int) -> int:
        """Delete up to ``batch`` sessions last seen before ``idle_before`` or past their
        absolute expiry at ``now``."""
        ...


class WithdrawalStore(Protocol):
    """Ending an authorization (:class:`tokensmith.core.authorizations.Authorizations`)."""

    async def withdraw_authorization(
        self, grantor: Grantor, client_id: str, at: float
    ) -> Withdrawal:
        """In one transaction: forget the consents the grantor's users gave ``client_id``
        and revoke every token family they granted it, with its refresh and access tokens
        (RFC 7009 §2.1 semantics). The grantor is one user, or every user of a merchant
        with the merchant's families. Concurrent with a refresh of one of those families,
        either the refresh loses or its new tokens are revoked too."""
        ...


class PushedRequestStore(Protocol):
    """Pushed authorization requests (RFC 9126), by the hash of their ``request_uri``."""

    async def add_pushed_request(self, pushed: PushedRequest) -> None: ...

    async def find_pushed_request(self, request_hash: str) -> PushedRequest | None: ...

    async def use_pushed_request(self, request_hash: str, client_id: str, at: float) -> bool:
        """Mark the client's request used at ``at`` if it is unused and unexpired then (a
        conditional UPDATE): of concurrent callers at most one gets True (RFC 9126 §4)."""
        ...

    async def purge_pushed_requests(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` requests that expired before ``before``."""
        ...


class DetailsTypeStore(Protocol):
    """The ``authorization_details`` types registered with the CLI (RFC 9396 §2): each
    type's JSON Schema as JSON text."""

    async def list_details_types(self) -> dict[str, str]: ...

    async def save_details_type(self, name: str, schema: str, at: float) -> None:
        """Register ``name``, or replace its schema."""
        ...

    async def remove_details_type(self, name: str) -> bool: ...


class GrantStore(AuthorizationCodeStore, RefreshTokenStore, MerchantStore, Protocol):
    """What the grants read and write (:class:`tokensmith.core.grants.GrantContext`)."""


class ServiceStore(TokenStore, GrantStore, Protocol):
    """What :class:`tokensmith.core.service.TokenService` uses: access tokens, and the
    grants' stores it hands on."""


class PurgeStore(
    TokenStore,
    RefreshTokenStore,
    AuthorizationCodeStore,
    SessionStore,
    PushedRequestStore,
    AuditStore,
    ConsentResourceStore,
    Protocol,
):
    """The tables :mod:`tokensmith.core.purge` deletes expired rows from."""


# -- merchant panel (tokensmith.web.panel) -----------------------------------------------


class ActivityReader(Protocol):
    """What the panel reads of the token activity
    (:class:`tokensmith.core.activity.Activity`)."""

    async def token_counts(self, client_ids: Sequence[str], since: int) -> list[TokenCount]:
        """The rows of these clients from the hour ``since`` on, oldest first."""
        ...

    async def last_used(self, client_ids: Sequence[str]) -> dict[str, float]:
        """When each of these clients last got a token, as far as the rows still say."""
        ...

    async def recent_auth_failures(self, merchant_id: str | None, limit: int) -> list[AuthFailure]:
        """The newest failures of the merchant's clients (``None``: of unknown client ids)."""
        ...


class ActivityStore(ActivityReader, Protocol):
    """Hourly token counts per client and recent failed authentications."""

    async def add_token_counts(self, counts: Sequence[TokenCount]) -> None:
        """Add each count to its ``(client_id, hour)`` row, creating it (one upsert each);
        ``last_issued_at`` keeps the later time."""
        ...

    async def add_auth_failures(self, failures: Sequence[AuthFailure]) -> None: ...

    async def purge_activity(self, stats_before: int, failures_before: float, keep: int) -> int:
        """Delete counts of hours before ``stats_before``, failures before
        ``failures_before`` and all but the newest ``keep`` failures; return rows deleted."""
        ...


class RevealKeeper(Protocol):
    """Secrets waiting to be shown once (sealed; see :class:`Reveal`)."""

    async def add_reveal(self, reveal: Reveal) -> None: ...

    async def take_reveal(self, reveal_hash: str, session_hash: str, now: float) -> Reveal | None:
        """Delete and return the reveal if it belongs to the session and is unexpired; of
        concurrent callers at most one gets it."""
        ...


class RevealStore(RevealKeeper, Protocol):
    async def purge_reveals(self, before: float) -> int: ...


class MerchantFamilyStore(Protocol):
    async def merchant_families(self, merchant_id: str) -> list[TokenFamily]:
        """The unrevoked token families (partner app authorizations) of a merchant."""
        ...


class PanelStore(ActivityStore, RevealStore, MerchantFamilyStore, Protocol):
    """What the merchant panel adds to storage."""


class ResourceReader(Protocol):
    """Registered APIs (RFC 8707; :mod:`tokensmith.core.resources`)."""

    async def get_resource(self, identifier: str) -> Resource | None: ...


class ResourceStore(ResourceReader, Protocol):
    async def add_resource(self, resource: Resource) -> None:
        """Raises :class:`KeyError` if the identifier is registered."""
        ...

    async def list_resources(self) -> list[Resource]: ...

    async def remove_resource(self, identifier: str) -> bool: ...


class Store(
    ClientStore,
    TokenStore,
    KeyStore,
    ApiKeyStore,
    MerchantStore,
    UserStore,
    AuthorizationCodeStore,
    RefreshTokenStore,
    ConsentStore,
    ConsentResourceStore,
    WithdrawalStore,
    SessionStore,
    PanelStore,
    PushedRequestStore,
    DetailsTypeStore,
    InitialTokenStore,
    ResourceStore,
    AuditStore,
    Protocol,
):
    """Everything a composition root wires together."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...
