"""Token families: everything issued from one authorization, revoked together.

A family starts when an authorization code is redeemed (RFC 6749 §4.1.3) and holds a chain
of refresh tokens, each spent when exchanged (rotation, RFC 9700 §4.14.2), plus every
access token minted along the way (recorded with ``family_id``). Presenting a spent
refresh token, or a used code, revokes the family.

Refresh grace window (``refresh_grace`` seconds, 30 by default, at most 60): a token that
was *rotated* (presented and exchanged) at most ``refresh_grace`` seconds ago may be
presented once more, provided the token it was exchanged for is still unspent and
unrevoked, that is, it is the token its family spent last. That replay returns a fresh
pair and, in the same transaction, spends the unseen successor as ``superseded`` and
revokes the successor's access token, so the family keeps one live chain. Anything else —
a second replay, a replay after the window, a token older than the one spent last,
presenting a ``superseded`` token — is reuse and revokes the family (RFC 9700 §4.14.2).

Why 30 seconds by default: an exchange commits before its answer is sent, so a client
whose connection drops after the commit (a server killed and restarted, a proxy timing
out) holds only the token it presented. With no window its retry is reuse, and the
family dies although nothing was stolen. The window covers a restart and a client's
backoff; a thief gains from it only a token spent within the last ``refresh_grace``
seconds whose successor is still unused, and the legitimate client's next exchange then
finds its successor superseded and revokes the family.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.credentials import new_token, random_urlsafe, token_key
from tokensmith.core.errors import UnauthorizedClient
from tokensmith.core.issuers import IssuerBinding
from tokensmith.core.models import Client, RefreshTokenRecord, TokenFamily
from tokensmith.core.ports import ClientStore, RefreshTokenStore
from tokensmith.core.randomness import Randomness

__all__ = [
    "DEFAULT_REFRESH_GRACE",
    "MAX_REFRESH_GRACE",
    "PartnerPolicy",
    "RefreshTokens",
    "new_family_id",
    "new_refresh",
]

DEFAULT_REFRESH_GRACE = 30
MAX_REFRESH_GRACE = 60


@dataclass(frozen=True, slots=True)
class PartnerPolicy:
    """Lifetimes of the authorization code flow (all seconds)."""

    code_ttl: int = 600
    access_token_ttl: int = 7200
    refresh_idle_ttl: int = 30 * 86400
    refresh_absolute_ttl: int = 180 * 86400
    refresh_grace: int = DEFAULT_REFRESH_GRACE
    #: When true, confidential clients must use PKCE too (public clients always must).
    require_pkce: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.refresh_grace <= MAX_REFRESH_GRACE:
            raise ValueError(f"refresh_grace must be between 0 and {MAX_REFRESH_GRACE} seconds")


def new_family_id(rand: Randomness) -> str:
    return "f_" + random_urlsafe(rand, 16)


def new_refresh(
    rand: Randomness,
    family: TokenFamily,
    now: float,
    policy: PartnerPolicy,
    access_jti: str | None,
    issuer_tag: str,
) -> tuple[str, RefreshTokenRecord]:
    """A refresh token (:func:`~tokensmith.core.credentials.new_token`) and its record,
    bound to the issuer of ``issuer_tag``; idle expiry capped by the family's absolute
    expiry."""
    plain = new_token(rand, now)
    record = RefreshTokenRecord(
        token_hash=token_key(plain),
        family_id=family.family_id,
        client_id=family.client_id,
        scope=family.scope,
        issued_at=now,
        expires_at=min(now + policy.refresh_idle_ttl, family.absolute_expires_at),
        access_jti=access_jti,
        issuer_tag=issuer_tag,
    )
    return plain, record


class RefreshTokens:
    """RFC 7662 introspection and RFC 7009 revocation of refresh tokens, as
    :class:`~tokensmith.core.service.TokenService` hooks.  A refresh token of another
    issuer (:mod:`tokensmith.core.issuers`) is not one of ours."""

    def __init__(
        self, store: RefreshTokenStore, clients: ClientStore, clock: Clock, binding: IssuerBinding
    ) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock
        self._binding = binding

    async def _find(self, token: str) -> RefreshTokenRecord | None:
        record = await self._store.find_refresh_token(token_key(token))
        if record is None or not self._binding.issued(record.issuer_tag):
            return None
        return record

    async def _live(self, record: RefreshTokenRecord) -> TokenFamily | None:
        now = self._clock.now()
        if record.spent_at is not None or record.revoked_at is not None:
            return None
        if now >= record.expires_at:
            return None
        family = await self._store.get_family(record.family_id)
        owner = await self._clients.get_client(record.client_id)
        if family is None or not family.live_at(now) or owner is None or not owner.active:
            return None
        if owner.token_revoked(record.issued_at):
            return None
        return family

    async def introspect(self, token: str, caller: Client) -> dict[str, Any] | None:
        """RFC 7662 §2.2 for a refresh token; ``None`` if it is not one of ours.  Its
        ``token_type`` is ``refresh_token`` (the RFC 7009 §2.1 hint's word), which a
        resource server's guard refuses (only ``Bearer`` access tokens pass)."""
        from tokensmith.core.service import INTROSPECTION_SCOPE

        record = await self._find(token)
        if record is None:
            return None
        may_see = caller.client_id == record.client_id or INTROSPECTION_SCOPE in caller.scopes
        family = await self._live(record) if may_see else None
        if family is None:
            return {"active": False}
        body: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "scope": record.scope,
            "client_id": record.client_id,
            "sub": family.merchant_id,
            "iat": int(record.issued_at),
            "exp": int(record.expires_at),
            "iss": self._binding.issuer,
        }
        if family.jkt is not None:  # bound to a public client's DPoP key (RFC 9449 §5)
            body["cnf"] = {"jkt": family.jkt}
        if family.x5t_s256 is not None:  # and to its certificate (RFC 8705 §4)
            body["cnf"] = body.get("cnf", {}) | {"x5t#S256": family.x5t_s256}
        if family.authorization_details is not None:  # what it may be refreshed for (RFC 9396)
            body["authorization_details"] = json.loads(family.authorization_details)
        if family.consent_id is not None:  # the consent resource it was authorized by
            body["consent_id"] = family.consent_id
        return body

    async def revoke(self, token: str, caller: Client) -> bool:
        """RFC 7009 §2.1: revoking a refresh token revokes its whole family, including the
        access tokens issued from it. Another client's token is ``unauthorized_client``."""
        record = await self._find(token)
        if record is None:
            return False
        if record.client_id != caller.client_id:
            raise UnauthorizedClient("the token was not issued to this client")
        await self._store.revoke_family(record.family_id, self._clock.now())
        return True
