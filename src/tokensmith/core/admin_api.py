"""What the admin REST API (``/admin/v1``) needs of the core beyond the services the CLI
and the panel share: who is calling (:class:`AdminAccess`, an access token of this server
as RFC 6750 §2.1 ``Bearer`` or RFC 9449 §7.1 ``DPoP``), what each caller may reach
(:class:`AdminPrincipal`: scopes per resource family, one merchant or the platform),
paging (:func:`paginate`), and revoking every token of a client or a merchant
(:class:`TokenRevocations`, RFC 7009 §2.1 for all of them at once).

No HTTP here: the web layer passes the header values and renders what comes back.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import orjson

from tokensmith.core.authorizations import Authorizations
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.dpop import DpopVerifier, jkt_of
from tokensmith.core.errors import InvalidDpopProof, UseDpopNonce
from tokensmith.core.models import Client, Grantor
from tokensmith.core.ports import ClientReader
from tokensmith.core.requests import DpopRequest
from tokensmith.core.service import TokenService

__all__ = [
    "ADMIN_ALL",
    "ADMIN_SCOPES",
    "MAX_PAGE_SIZE",
    "AdminAccess",
    "AdminApiServices",
    "AdminDenied",
    "AdminPrincipal",
    "BadCursor",
    "Page",
    "Revoked",
    "TokenRevocations",
    "paginate",
    "search_text",
]

#: One scope per resource family; a token needs the family's scope (or ``admin:all``).
ADMIN_SCOPES = (
    "admin:merchants",
    "admin:users",
    "admin:clients",
    "admin:keys",
    "admin:tokens",
    "admin:consents",
    "admin:audit",
)
#: Every family at once (a platform operator's automation); granted like any scope: only
#: to a client registered with it. Not ``admin``: that is a merchant-API scope the panel
#: lets merchants give their keys (``TOKENSMITH_PANEL_SCOPES``), and it grants nothing here.
ADMIN_ALL = "admin:all"
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

Scheme = Literal["Bearer", "DPoP"]
T = TypeVar("T")


class AdminDenied(Exception):
    """A refused admin request: ``status`` 401 (``invalid_token``, RFC 6750 §3.1, or an
    RFC 9449 §7.1 proof error) or 403 (``insufficient_scope``)."""

    def __init__(
        self, status: int, error: str, description: str, *, nonce: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        #: RFC 9449 §8: the nonce to retry with (``use_dpop_nonce``).
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """The client behind an admin token: its granted scopes, and the merchant it is
    confined to (``None``: a platform client, which reaches every merchant)."""

    client_id: str
    merchant_id: str | None
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """The audit event's ``actor``."""
        return f"client:{self.client_id}"

    @property
    def platform(self) -> bool:
        return self.merchant_id is None

    def may(self, scope: str) -> bool:
        """Whether the token carries ``scope``, or ``admin:all``."""
        return scope in self.scopes or ADMIN_ALL in self.scopes

    def require(self, scope: str) -> None:
        """RFC 6750 §3.1 ``insufficient_scope`` unless the token carries ``scope``."""
        if not self.may(scope):
            raise AdminDenied(403, "insufficient_scope", f"this needs the {scope} scope")

    def sees(self, merchant_id: str | None) -> bool:
        """Whether an object of ``merchant_id`` is within reach (a merchant's client sees
        its merchant's objects only; another merchant's are as unknown as missing ones)."""
        return self.merchant_id is None or self.merchant_id == merchant_id

    def admin_scopes(self) -> frozenset[str]:
        """The admin scopes this principal holds (``admin:all`` counts as all of them)."""
        if ADMIN_ALL in self.scopes:
            return frozenset({ADMIN_ALL, *ADMIN_SCOPES})
        return frozenset(s for s in self.scopes if s in ADMIN_SCOPES)


class AdminAccess:
    """Checks the access token of an admin request, in process: the token service's own
    validation (a JWT's signature and ``exp`` through the key ring, an opaque token's row),
    which honours revocation, a revoked or disabled client and a client's revoked tokens.
    A refresh token is not an access token and is refused."""

    def __init__(
        self, service: TokenService, clients: ClientReader, dpop: DpopVerifier | None
    ) -> None:
        self._service = service
        self._clients = clients
        self._dpop = dpop

    async def authenticate(
        self, scheme: Scheme, token: str, dpop: DpopRequest | None
    ) -> AdminPrincipal:
        """The caller of a request presenting ``token`` under ``scheme`` with the request's
        DPoP proof, if any. RFC 9449 §7.1: a DPoP-bound token needs the ``DPoP`` scheme and
        a proof of its key whose ``ath`` is the token's hash; a Bearer token is refused
        under the ``DPoP`` scheme (it would downgrade the check)."""
        claims = await self._service.access_token_claims(token) if token else None
        if claims is None:
            raise AdminDenied(401, "invalid_token", "the access token is not active")
        bound = jkt_of(claims)
        if bound is not None or scheme == "DPoP":
            await self._check_proof(scheme, token, dpop, bound)
        client = await self._clients.get_client(str(claims.get("client_id", "")))
        if client is None or not client.active:
            raise AdminDenied(401, "invalid_token", "the access token is not active")
        if claims.get("sub") != client.subject:
            # issued for a user's merchant (authorization_code), not for the client itself
            raise AdminDenied(401, "invalid_token", "the admin API takes client tokens only")
        return AdminPrincipal(
            client.client_id, client.merchant_id, frozenset(str(claims["scope"]).split())
        )

    async def _check_proof(
        self, scheme: Scheme, token: str, dpop: DpopRequest | None, bound: str | None
    ) -> None:
        if bound is None:
            raise AdminDenied(401, "invalid_token", "the access token is not DPoP-bound")
        if scheme != "DPoP":
            raise AdminDenied(401, "invalid_token", "a DPoP-bound token needs the DPoP scheme")
        if dpop is None or self._dpop is None:
            raise AdminDenied(401, "invalid_dpop_proof", "send a DPoP proof of the token's key")
        try:
            proof = await self._dpop.verify(dpop, access_token=token)
        except UseDpopNonce as exc:
            raise AdminDenied(401, "use_dpop_nonce", exc.description, nonce=exc.nonce) from None
        except InvalidDpopProof as exc:
            raise AdminDenied(401, "invalid_dpop_proof", exc.description) from None
        if not hmac.compare_digest(proof.jkt, bound):
            raise AdminDenied(401, "invalid_dpop_proof", "the proof's key is not the token's")


class BadCursor(ValueError):
    """A paging cursor this server did not hand out."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` fetches the next (``None``: the last)."""

    items: list[T]
    next_cursor: str | None


def _encode_cursor(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, ident = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError, TypeError):
        raise BadCursor("cursor is not one this server handed out") from None
    if isinstance(at, bool) or not isinstance(at, int | float) or not isinstance(ident, str):
        raise BadCursor("cursor is not one this server handed out")
    return float(at), ident


def paginate(
    items: Sequence[T],
    key: Callable[[T], tuple[float, str]],
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    q: str | None = None,
    text: Callable[[T], str] = lambda _: "",
) -> Page[T]:
    """``items`` ordered by ``key`` (creation time, id), those matching ``q`` (a
    case-insensitive substring of ``text``), from after ``cursor``, at most ``limit``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    chosen = sorted(items, key=key)
    if q:
        needle = q.casefold()
        chosen = [i for i in chosen if needle in text(i).casefold()]
    if cursor:
        after = _decode_cursor(cursor)
        chosen = [i for i in chosen if key(i) > after]
    page = chosen[:limit]
    more = len(chosen) > limit
    return Page(page, _encode_cursor(key(page[-1])) if more and page else None)


@dataclass(frozen=True, slots=True)
class Revoked:
    """What revoking every token of a client or a merchant did."""

    clients: int
    families: int


class TokenRevocations:
    """RFC 7009 §2.1 for every token of a client or of a merchant at once: the tokens
    issued until now turn inactive (introspection, the refresh grant, the admin API),
    while the clients keep working and get new tokens."""

    def __init__(self, clients: ClientAdmin, authorizations: Authorizations) -> None:
        self._clients = clients
        self._authorizations = authorizations

    async def of_client(self, client: Client) -> Revoked:
        await self._clients.revoke_tokens(client.client_id)
        return Revoked(1, 0)

    async def of_merchant(self, merchant_id: str) -> Revoked:
        """The merchant's clients' tokens, and the partner apps' tokens its users
        authorized (their token families, withdrawn with the remembered consents)."""
        owned = await self._clients.listing(merchant_id)
        for client in owned:
            await self._clients.revoke_tokens(client.client_id)
        families = 0
        apps = await self._authorizations.of_merchant(merchant_id)
        for client_id in apps:
            done = await self._authorizations.withdraw(Grantor(merchant_id=merchant_id), client_id)
            families += done.families
        return Revoked(len(owned), families)


def search_text(*parts: Any) -> str:
    """What ``q`` is matched against: the parts joined."""
    return " ".join(str(p) for p in parts if p)


@dataclass(frozen=True, slots=True)
class AdminApiServices:
    """The admin API's own services (the rest it shares with the CLI and the panel)."""

    access: AdminAccess
    revocations: TokenRevocations
