"""Records of the merchant panel: token activity and one-time secret reveals. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

__all__ = [
    "AUTH_FAILURE_REASONS",
    "DAY",
    "HOUR",
    "ActivityBatch",
    "AuthFailure",
    "Reveal",
    "TokenCount",
    "clean_field",
    "hour_of",
]

HOUR = 3600
DAY = 86400
#: Longest client id or address kept; longer ones are cut (they name no client anyway).
MAX_FIELD = 64

#: The refusal reasons that are failed authentications, in words for the panel.
AUTH_FAILURE_REASONS: dict[str, str] = {
    "bad_secret": "Wrong secret",
    "unknown_client": "Unknown client id",
    "revoked_client": "Key was revoked",
    "auth_method_not_allowed": "Authentication method not allowed",
    "no_credentials": "No credentials sent",
    "rate_limited": "Too many failures (throttled)",
    "missing_apikey": "apikey header missing",
    "invalid_apikey": "apikey not valid",
    # private_key_jwt (RFC 7523, tokensmith.core.client_assertion)
    "bad_assertion": "Client assertion not valid",
    "bad_signature": "Client assertion signed with another key",
    "assertion_expired": "Client assertion expired",
    "assertion_replay": "Client assertion used before",
    "client_secret_jwt": "client_secret_jwt (not supported)",
    "jwks_unavailable": "Client's jwks_uri unavailable",
    "no_client_keys": "No keys registered",
    "assertions_disabled": "Client assertions not accepted",
    # the FAPI 2.0 profile (tokensmith.core.profile)
    "fapi2_auth_method": "Authentication method not allowed by FAPI 2.0",
}

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def hour_of(at: float) -> int:
    """The start of the UTC hour holding ``at``, in POSIX seconds."""
    return int(at // HOUR) * HOUR


def clean_field(value: str | None) -> str | None:
    """Printable ASCII only (a NUL must never reach PostgreSQL), at most ``MAX_FIELD``."""
    if value is None:
        return None
    return _UNPRINTABLE.sub("?", value[:MAX_FIELD])


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Tokens issued to (and requests refused for) one client in one UTC hour."""

    client_id: str
    hour: int
    issued: int = 0
    refused: int = 0
    last_issued_at: float | None = None

    def plus(self, other: TokenCount) -> TokenCount:
        last = [t for t in (self.last_issued_at, other.last_issued_at) if t is not None]
        return replace(
            self,
            issued=self.issued + other.issued,
            refused=self.refused + other.refused,
            last_issued_at=max(last) if last else None,
        )


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """One failed client authentication: never the secret that was tried. ``client_id`` is
    the presented one if a client has it, else its fingerprint (``unknown:<length>:<hex>``).
    ``merchant_id`` is the presented client's merchant, filled in when the batch is
    written (``None`` for an unknown client id)."""

    at: float
    client_id: str | None
    source: str
    reason: str
    dialect: str
    merchant_id: str | None = None

    @property
    def reason_text(self) -> str:
        return AUTH_FAILURE_REASONS.get(self.reason, self.reason.replace("_", " "))


@dataclass(frozen=True, slots=True)
class ActivityBatch:
    """What a recorder counted between two flushes."""

    counts: list[TokenCount] = field(default_factory=list)
    failures: list[AuthFailure] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.failures)


@dataclass(frozen=True, slots=True)
class Reveal:
    """A secret waiting to be shown once: sealed under a key only the browser session's
    cookie can derive, bound to that session (by its hash), deleted when shown."""

    reveal_hash: str = field(repr=False)
    session_hash: str = field(repr=False)
    sealed: bytes = field(repr=False)
    created_at: float
    expires_at: float
