"""The consent resource ("lodging intent", as open-banking platforms call it), without HTTP.

A partner lodges what it wants the user to approve before sending the user anywhere
(:meth:`ConsentResources.lodge`): RFC 9396 ``authorization_details``, validated exactly
as at ``/oauth/par`` (§5, the client's types of §10), under a random ``consent_id``. The
authorization request then names the consent (``consent_id``) instead of carrying the
details; the user sees them on the consent page and approves or rejects them; the code,
the token family and every token carry the consent's id and its exact details.

Statuses::

    awaiting_authorization --approve--> authorized --consume--> consumed
            |                               |
            +--deny--> rejected             +--revoke--> revoked
    awaiting_authorization --cancel--> revoked
    any non-terminal, past expires_at: expired (computed on read)

Each change is one conditional UPDATE (:class:`~tokensmith.core.ports.ConsentResourceStore`),
so of concurrent approvals, or consumptions, of one consent exactly one wins. A consent
whose details include a ``payment_initiation`` is single-use: its tokens get no refresh
token and the resource server's first consumption ends it. Consuming or revoking a
consent revokes its token family through the ordinary revocation path (RFC 7009 §2.1
semantics), and introspection (RFC 7662 §2.2) calls a token of a consent that is no
longer ``authorized`` inactive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from tokensmith.core.audit import SYSTEM, Audit, By
from tokensmith.core.authorization_details import DEFAULT_TYPES, DetailsTypes, load
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import random_urlsafe
from tokensmith.core.errors import InvalidRequest, InvalidToken, OAuthError
from tokensmith.core.models import (
    CONSENT_AUTHORIZED,
    CONSENT_AWAITING,
    Client,
    ConsentResource,
    User,
)
from tokensmith.core.ports import ConsentResourceStore, RefreshTokenStore
from tokensmith.core.randomness import Randomness

__all__ = [
    "AUTHORIZED",
    "AWAITING",
    "CONSENTS_SCOPE",
    "CONSUMED",
    "EXPIRED",
    "REJECTED",
    "REVOKED",
    "STATUSES",
    "ConsentNotActive",
    "ConsentPolicy",
    "ConsentResources",
    "consent_json",
    "new_consent_id",
    "single_use",
    "summary",
]

AWAITING = CONSENT_AWAITING
AUTHORIZED = CONSENT_AUTHORIZED
REJECTED = "rejected"
CONSUMED = "consumed"
REVOKED = "revoked"
EXPIRED = "expired"
STATUSES = (AWAITING, AUTHORIZED, REJECTED, CONSUMED, REVOKED, EXPIRED)
#: The scope a partner's own token needs at ``/oauth/consents``.
CONSENTS_SCOPE = "consents"
#: A consent awaits the user at most this long (``TOKENSMITH_CONSENT_LIFETIME``).
DEFAULT_LIFETIME = 600
#: The longest ``consent_id`` the endpoints look up.
MAX_ID_LENGTH = 64


class ConsentNotActive(OAuthError):
    """The consent is not ``authorized`` (consumed, revoked, rejected, expired, or still
    awaiting the user): 409 ``consent_not_active``, with its ``current`` status."""

    error = "consent_not_active"
    status = 409

    def __init__(self, description: str, current: str) -> None:
        super().__init__(description)
        self.current = current


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """``lifetime``: seconds a consent awaits the user; ``authorized_lifetime``: seconds an
    authorized consent lasts (the authorization code's life and the token family's
    absolute life, so that it outlives every refresh token issued under it)."""

    lifetime: int = DEFAULT_LIFETIME
    authorized_lifetime: int = 600 + 180 * 86400


def new_consent_id(rand: Randomness) -> str:
    """``cns_`` and 192 random bits, base64url."""
    return "cns_" + random_urlsafe(rand, 24)


def single_use(details: str | None) -> bool:
    """Whether a consent of these details ends at its first consumption: it includes a
    ``payment_initiation`` (one payment, once)."""
    if details is None:
        return False
    return any(obj.get("type") == "payment_initiation" for obj in load(details))


def consent_json(consent: ConsentResource, now: float) -> dict[str, Any]:
    """What ``/oauth/consents`` answers for a consent, with its status at ``now``."""
    return {
        "consent_id": consent.consent_id,
        "status": consent.status_at(now),
        "client_id": consent.client_id,
        "authorization_details": load(consent.authorization_details),
        "created_at": int(consent.created_at),
        "expires_at": int(consent.expires_at),
        "status_updated_at": int(consent.status_updated_at),
    }


def summary(details: str) -> str:
    """One line of what a consent is for (the panel's listing)."""
    parts = []
    for obj in load(details):
        kind = obj.get("type")
        amount = obj.get("instructedAmount")
        if kind == "payment_initiation" and isinstance(amount, dict):
            payee = obj.get("creditorName", "")
            parts.append(f"Payment of {amount.get('amount')} {amount.get('currency')} to {payee}")
        elif kind == "account_information":
            actions = ", ".join(str(a).replace("_", " ") for a in obj.get("actions", []))
            parts.append(f"Account access: {actions}")
        else:
            parts.append(str(kind))
    return "; ".join(parts)


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _valid_id(consent_id: str) -> bool:
    """Whether ``consent_id`` can name a consent at all (and so may reach the database)."""
    return _ID.fullmatch(consent_id) is not None


class ConsentResources:
    """Lodging, reading, authorizing, consuming and revoking consent resources."""

    def __init__(
        self,
        store: ConsentResourceStore,
        families: RefreshTokenStore,
        clock: Clock,
        rand: Randomness,
        types: DetailsTypes = DEFAULT_TYPES,
        policy: ConsentPolicy | None = None,
        audit: Audit | None = None,
    ) -> None:
        self._store = store
        self._families = families
        self._clock = clock
        self._rand = rand
        self.types = types
        self.policy = policy or ConsentPolicy()
        self._audit = audit or Audit.null(clock, rand)

    def now(self) -> float:
        return self._clock.now()

    # -- the partner -------------------------------------------------------------------

    async def lodge(
        self, client: Client, details: Any, expires_in: Any = None, *, by: By | None = None
    ) -> ConsentResource:
        """A new consent of ``client`` awaiting the user: ``details`` validated as at the
        PAR endpoint (RFC 9396 §5, the client's types of §10; ``invalid_authorization_details``),
        ``expires_in`` (seconds) may only shorten the lifetime."""
        lifetime = self.policy.lifetime
        if expires_in is not None:
            if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 1:
                raise InvalidRequest("expires_in must be a positive whole number of seconds")
            lifetime = min(lifetime, expires_in)
        if details is None:
            raise InvalidRequest("authorization_details is required")
        text = json.dumps(details, ensure_ascii=False)
        canonical = self.types.parse(text, client.authorization_details_types)
        now = self._clock.now()
        consent = ConsentResource(
            consent_id=new_consent_id(self._rand),
            client_id=client.client_id,
            status=AWAITING,
            authorization_details=canonical,
            created_at=now,
            expires_at=now + lifetime,
            status_updated_at=now,
        )
        await self._store.add_consent_resource(consent)
        await self._audit.by(
            by or By(f"client:{client.client_id}"),
            "consent.created",
            merchant_id=client.merchant_id,
            subject=consent.consent_id,
            client_id=client.client_id,
        )
        return consent

    async def of_client(self, client_id: str, consent_id: str) -> ConsentResource | None:
        """The consent if it is ``client_id``'s (another client's is as unknown as none)."""
        if not _valid_id(consent_id):
            return None
        consent = await self._store.get_consent_resource(consent_id)
        return consent if consent is not None and consent.client_id == client_id else None

    async def get(self, consent_id: str) -> ConsentResource | None:
        if not _valid_id(consent_id):
            return None
        return await self._store.get_consent_resource(consent_id)

    async def cancel(
        self, client: Client, consent_id: str, *, by: By | None = None
    ) -> ConsentResource | None:
        """The partner revokes its consent (``DELETE``): ``None`` if it has none of that id;
        :class:`ConsentNotActive` if it is consumed, rejected or expired."""
        consent = await self.of_client(client.client_id, consent_id)
        if consent is None:
            return None
        return await self._revoke(consent, by or By(f"client:{client.client_id}"))

    # -- the authorization endpoint ----------------------------------------------------

    async def awaiting(self, client_id: str, consent_id: str) -> ConsentResource:
        """The consent an authorization request names: ``client_id``'s, awaiting the user,
        unexpired; else ``invalid_request``."""
        consent = await self.of_client(client_id, consent_id)
        if consent is None:
            raise InvalidRequest("consent_id is not a consent of this app")
        if consent.status_at(self._clock.now()) != AWAITING:
            raise InvalidRequest(f"consent {consent_id} is not awaiting authorization")
        return consent

    async def authorize(
        self, consent_id: str, client_id: str, user: User, family_id: str, *, by: By = SYSTEM
    ) -> None:
        """The user approved it: ``authorized``, by ``user`` for the token family
        ``family_id``; ``invalid_request`` if it was no longer awaiting (another decision
        won, or it expired)."""
        now = self._clock.now()
        won = await self._store.authorize_consent_resource(
            consent_id,
            client_id,
            user_id=user.user_id,
            merchant_id=user.merchant_id or "",
            family_id=family_id,
            at=now,
            expires_at=now + self.policy.authorized_lifetime,
        )
        if not won:
            raise InvalidRequest(f"consent {consent_id} is not awaiting authorization")
        await self._audit.by(
            by,
            "consent.authorized",
            merchant_id=user.merchant_id,
            subject=consent_id,
            client_id=client_id,
        )

    async def reject(self, consent_id: str, client_id: str, user: User, *, by: By = SYSTEM) -> bool:
        """The user denied it: ``rejected``. False if it was no longer awaiting."""
        consent = await self.of_client(client_id, consent_id)
        if consent is None:
            return False
        won = await self._store.change_consent_resource(
            consent_id,
            (AWAITING,),
            REJECTED,
            self._clock.now(),
            user_id=user.user_id,
            merchant_id=user.merchant_id,
        )
        if won:
            await self._audit.by(
                by,
                "consent.rejected",
                merchant_id=user.merchant_id,
                subject=consent_id,
                client_id=client_id,
            )
        return won

    # -- the tokens --------------------------------------------------------------------

    async def active(self, consent_id: str) -> bool:
        """Whether the tokens of this consent may act: it is ``authorized`` and unexpired."""
        consent = await self.get(consent_id)
        return consent is not None and consent.status_at(self._clock.now()) == AUTHORIZED

    async def consume(
        self, consent_id: str | None, token_revoked: bool, *, by: By = SYSTEM
    ) -> ConsentResource:
        """The resource server reports that a token of the consent was used for its one
        payment: ``authorized`` to ``consumed`` (one conditional UPDATE: of parallel calls
        one wins), and the token family revoked. ``invalid_request`` for a token with no
        consent or a consent that is not single-use; :class:`ConsentNotActive` for a
        consent no longer ``authorized``."""
        if consent_id is None:
            raise InvalidRequest("the token was not issued under a consent")
        consent = await self.get(consent_id)
        if consent is None:
            raise InvalidRequest("the token was not issued under a consent")
        if not single_use(consent.authorization_details):
            raise InvalidRequest(f"consent {consent_id} is not a single-use consent")
        now = self._clock.now()
        status = consent.status_at(now)
        if status != AUTHORIZED:
            raise ConsentNotActive(f"consent {consent_id} is {status}", status)
        if token_revoked:
            raise InvalidToken("the access token was revoked")
        if not await self._store.change_consent_resource(consent_id, (AUTHORIZED,), CONSUMED, now):
            fresh = await self.get(consent_id)
            current = fresh.status_at(self._clock.now()) if fresh else EXPIRED
            raise ConsentNotActive(f"consent {consent_id} is {current}", current)
        if consent.family_id is not None:
            await self._families.revoke_family(consent.family_id, now)
        await self._audit.by(
            by,
            "consent.consumed",
            merchant_id=consent.merchant_id,
            subject=consent_id,
            client_id=consent.client_id,
        )
        return replace(consent, status=CONSUMED, status_updated_at=now)

    # -- the panel and the admin API ----------------------------------------------------

    async def revoke(self, consent_id: str, *, by: By = SYSTEM) -> ConsentResource | None:
        """Revoke a consent and its tokens (a merchant in the panel, an operator, the admin
        API): ``None`` if there is none; :class:`ConsentNotActive` if it already ended."""
        consent = await self.get(consent_id)
        if consent is None:
            return None
        return await self._revoke(consent, by)

    async def _revoke(self, consent: ConsentResource, by: By) -> ConsentResource:
        now = self._clock.now()
        status = consent.status_at(now)
        if status == REVOKED:
            return consent
        won = status in (AWAITING, AUTHORIZED) and await self._store.change_consent_resource(
            consent.consent_id, (AWAITING, AUTHORIZED), REVOKED, now
        )
        if not won:
            fresh = await self.get(consent.consent_id)
            current = fresh.status_at(now) if fresh else EXPIRED
            if current == REVOKED and fresh is not None:
                return fresh
            raise ConsentNotActive(f"consent {consent.consent_id} is {current}", current)
        if consent.family_id is not None:
            await self._families.revoke_family(consent.family_id, now)
        await self._audit.by(
            by,
            "consent.revoked",
            merchant_id=consent.merchant_id,
            subject=consent.consent_id,
            client_id=consent.client_id,
        )
        return replace(consent, status=REVOKED, status_updated_at=now)

    async def listing(
        self,
        *,
        client_id: str | None = None,
        merchant_id: str | None = None,
        status: str | None = None,
    ) -> list[ConsentResource]:
        """Consents, newest first: of a client, or decided by a merchant's users, with the
        status (as read now) ``status``."""
        found = await self._store.list_consent_resources(
            client_id=client_id, merchant_id=merchant_id
        )
        now = self._clock.now()
        chosen = [c for c in found if status is None or c.status_at(now) == status]
        return sorted(chosen, key=lambda c: (c.created_at, c.consent_id), reverse=True)

    async def purge(self, before: float, batch: int) -> int:
        return await self._store.purge_consent_resources(before, batch)
