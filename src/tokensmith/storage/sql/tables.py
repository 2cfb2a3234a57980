"""Table definitions (SQLAlchemy Core). Times are POSIX seconds; secrets are hashes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)


def _issuer_tag() -> Column[Any]:
    """The tag of the issuer that issued a stored token (migration 0006;
    :mod:`tokensmith.core.issuers`), NULL in rows written before it."""
    return Column("issuer_tag", String(16))


def _jkt() -> Column[Any]:
    """The RFC 7638 thumbprint of the DPoP key a token is bound to (migration 0007; RFC 9449
    §6), NULL for a token bound to none."""
    return Column("jkt", String(64))


def _x5t() -> Column[Any]:
    """The ``x5t#S256`` of the TLS client certificate a token is bound to (migration 0010;
    RFC 8705 §3), NULL for a token bound to none."""
    return Column("x5t_s256", String(64))


def _details() -> Column[Any]:
    """RFC 9396 ``authorization_details`` as canonical JSON text (migration 0013), NULL
    where none were requested."""
    return Column("authorization_details", Text)


def row_of(record: Any) -> dict[str, Any]:
    """A record (a dataclass of :mod:`tokensmith.core.models`) as the row of its table:
    its field names are the column names."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

merchants = Table(
    "merchants",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("disabled_at", Double),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("merchant_id", String(64), ForeignKey("merchants.merchant_id"), index=True),
    Column("scopes", Text, nullable=False),
    Column("default_scopes", Text),
    Column("grant_types", Text, nullable=False),
    Column("token_format", String(16)),
    Column("access_token_ttl", Integer),
    Column("redirect_uris", Text, nullable=False, default="[]"),
    Column("form_uri", Text),
    Column("auth_methods", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    # 0008: RFC 9126 §6 require_pushed_authorization_requests
    Column("require_par", Boolean, nullable=False, server_default=false()),
    # 0007: RFC 9449 §5.2 dpop_bound_access_tokens
    Column("require_dpop", Boolean, nullable=False, server_default=false()),
    # 0009: RFC 7591 §2 jwks and jwks_uri (private_key_jwt, RFC 7523 §2.2)
    Column("jwks", Text),
    Column("jwks_uri", Text),
    # 0015: the client's security profile (default, fapi2); NULL follows the server's
    Column("profile", String(16)),
    # 0010: RFC 8705 §2.1.2 tls_client_auth_* and §3.4 certificate-bound tokens
    Column("tls_auth_kind", String(16)),
    Column("tls_auth_value", Text),
    Column("cert_bound_tokens", Boolean, nullable=False, server_default=false()),
    # 0013: RFC 9396 §10 authorization_details_types, a JSON array (NULL: every type)
    Column("authorization_details_types", Text),
    # 0017: the admin API's reversible disable and "revoke every token of the client"
    Column("disabled_at", Double),
    Column("tokens_revoked_before", Double),
    # 0012: RFC 7592 registration access token (hash) and RFC 7591 metadata (JSON)
    Column("registration_token_hash", String(64)),
    Column("registration_metadata", Text),
)

client_secrets = Table(
    "client_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),
    # 0016: the secret sealed with the server's key, for client_secret_jwt (RFC 7523 §2.2)
    Column("sealed", Text),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("token_hash", String(64), unique=True),
    Column("client_id", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("scope", Text, nullable=False),
    Column("family_id", String(64)),
    Column("issued_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("revoked_at", Double),
    _issuer_tag(),
    _jkt(),
    _x5t(),
    _details(),
    # RFC 8707: the resources the token is for, space-separated (migration 0014)
    Column("audience", Text),
)


def _partial(name: str, column: Column[Any]) -> Index:
    """An index of the rows where ``column`` is set (migration 0005): most access tokens
    belong to no family and are never revoked, and their inserts skip it."""
    where = column.is_not(None)
    return Index(name, column, postgresql_where=where, sqlite_where=where)


_partial("ix_access_tokens_family_id", access_tokens.c.family_id)
_partial("ix_access_tokens_revoked_at", access_tokens.c.revoked_at)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_key_encrypted", LargeBinary, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("retired_at", Double),
    Column("publish_until", Double),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("merchant_id", String(64), ForeignKey("merchants.merchant_id"), index=True),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
)

# -- 0002: users, authorization codes, refresh token families, consents, sessions ------------

users = Table(
    "users",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("merchant_id", String(64), ForeignKey("merchants.merchant_id"), index=True),
    Column("created_at", Double, nullable=False),
    Column("disabled_at", Double),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_sent", Boolean, nullable=False),
    Column("code_challenge", String(128)),
    Column("merchant_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("family_id", String(64), nullable=False),
    Column("issued_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("used_at", Double),
    _issuer_tag(),
    # 0015: RFC 9449 §10 dpop_jkt, the DPoP key the code is bound to
    Column("dpop_jkt", String(64)),
    _details(),
    # RFC 8707: the resources the authorization request named (migration 0014)
    Column("resources", Text),
    # 0018: the consent resource the user authorized
    Column("consent_id", String(64)),
)

token_families = Table(
    "token_families",
    metadata,
    Column("family_id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("merchant_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # the idle expiry, moved by every rotation: not indexed, so that the move is an
    # in-place (HOT) update on PostgreSQL (migration 0004)
    Column("expires_at", Double, nullable=False),
    Column("absolute_expires_at", Double, nullable=False, index=True),
    Column("revoked_at", Double),
    _jkt(),
    _x5t(),
    _details(),
    # RFC 8707 §2.2: the resources granted, which a refresh may narrow to (migration 0014)
    Column("resources", Text),
    # 0018: the consent resource the family was authorized by
    Column("consent_id", String(64)),
    postgresql_with={"fillfactor": 70},
)

Index("ix_token_families_user_id_client_id", token_families.c.user_id, token_families.c.client_id)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "family_id",
        String(64),
        ForeignKey("token_families.family_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("client_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("issued_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("access_jti", String(64)),
    Column("spent_at", Double),
    Column("spent_reason", String(16)),
    Column("replaced_by", String(64)),
    Column("replayed_at", Double),
    Column("revoked_at", Double),
    _issuer_tag(),
    postgresql_with={"fillfactor": 85},
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("scope", Text, nullable=False),
    Column("granted_at", Double, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", String(64), index=True),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=False, index=True),
    Column("expires_at", Double, nullable=False, index=True),
)

# -- 0003: merchant panel: hourly token counts, failed authentications, one-time reveals ----

token_stats = Table(
    "token_stats",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("hour", BigInteger, primary_key=True, autoincrement=False),
    Column("issued", BigInteger, nullable=False, default=0),
    Column("refused", BigInteger, nullable=False, default=0),
    Column("last_issued_at", Double),
)

Index("ix_token_stats_hour", token_stats.c.hour)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False, index=True),
    Column("client_id", String(64)),
    Column("merchant_id", String(64)),
    Column("source", String(64), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("dialect", String(16), nullable=False),
)

Index("ix_auth_failures_merchant_id_at", auth_failures.c.merchant_id, auth_failures.c.at)

panel_reveals = Table(
    "panel_reveals",
    metadata,
    Column("reveal_hash", String(64), primary_key=True),
    Column("session_hash", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
)

# -- 0007: DPoP (RFC 9449): proof jtis seen, bound tokens -----------------------------------

replay_keys = Table(
    "replay_keys",
    metadata,
    Column("replay_key", String(64), primary_key=True),
    Column("expires_at", Double, nullable=False, index=True),
)


# -- 0008: pushed authorization requests (RFC 9126) -------------------------------------------

pushed_requests = Table(
    "pushed_requests",
    metadata,
    # the token_key of the request_uri's random part; the request_uri itself is not stored
    Column("request_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    # the pushed parameters (without the client's credentials), a JSON object
    Column("params", Text, nullable=False),
    Column("issuer_tag", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("used_at", Double),
)


# -- 0013: rich authorization requests (RFC 9396): the types registered with the CLI --------

authorization_details_types = Table(
    "authorization_details_types",
    metadata,
    Column("type", String(200), primary_key=True),
    # the type's JSON Schema, as JSON text
    Column("schema", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

# -- 0012: initial access tokens of dynamic client registration (RFC 7591 §3) ---------------

initial_access_tokens = Table(
    "initial_access_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("merchant_id", String(64), ForeignKey("merchants.merchant_id")),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),
    Column("revoked_at", Double),
)
# -- 0014: resource indicators (RFC 8707) ------------------------------------------------------

resources = Table(
    "resources",
    metadata,
    # the absolute URI tokens for the resource carry as aud
    Column("identifier", String(512), primary_key=True),
    Column("name", String(200), nullable=False),
    # the resource's scopes, space-separated
    Column("scopes", Text, nullable=False),
    Column("access_token_ttl", Integer),
    Column("token_format", String(16)),
    Column("created_at", Double, nullable=False),
)

# -- 0011: audit events and their webhook outbox (tokensmith.core.audit) --------------------

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("at", Double, nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("merchant_id", String(64)),
    Column("source", String(64)),
    Column("subject", String(200)),
    # a JSON object of scalars; never a secret (Audit.record refuses one)
    Column("details", Text, nullable=False),
)

Index("ix_audit_events_merchant_id_at", audit_events.c.merchant_id, audit_events.c.at)
Index("ix_audit_events_actor_at", audit_events.c.actor, audit_events.c.at)

audit_outbox = Table(
    "audit_outbox",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("next_at", Double, nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(200)),
    Column("dead_at", Double),
    Column("lease_owner", String(64)),
    Column("lease_until", Double),
)

# -- 0018: consent resources (tokensmith.core.consent_resources) ----------------------------

consent_resources = Table(
    "consent_resources",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False, index=True),
    # awaiting_authorization, authorized, rejected, consumed or revoked (expired is read)
    Column("status", String(32), nullable=False),
    # RFC 9396 authorization_details, canonical JSON text
    Column("authorization_details", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("status_updated_at", Double, nullable=False),
    Column("user_id", String(64)),
    Column("merchant_id", String(64), index=True),
    Column("approved_at", Double),
    Column("family_id", String(64)),
)
