"""The application's object graph: one frozen :class:`AppContext`, built once by
:func:`tokensmith.web.compose.build_context` in the app's lifespan.

The lifespan hands it to the server as lifespan state (the ASGI ``state`` the server copies
into every request's scope), and handlers reach it with :func:`ctx_of`. Nothing replaces or
adds a service after it is built.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import HTTPConnection
from starlette.types import Scope

from tokensmith.core.activity import Activity
from tokensmith.core.admin_api import AdminApiServices
from tokensmith.core.audit import Audit
from tokensmith.core.authorization_details import DetailsTypes
from tokensmith.core.authorizations import Authorizations
from tokensmith.core.client_admin import ApiKeys, ClientAdmin
from tokensmith.core.clock import Clock
from tokensmith.core.consent_resources import ConsentResources
from tokensmith.core.directory import Merchants, Users
from tokensmith.core.models import ApiKey, Client
from tokensmith.core.par import PushedRequests
from tokensmith.core.ports import ClientReader, Store
from tokensmith.core.randomness import Randomness
from tokensmith.core.registration import Registrations
from tokensmith.core.reveals import Reveals
from tokensmith.core.service import TokenService
from tokensmith.core.sessions import Sessions
from tokensmith.settings import Settings
from tokensmith.web.dialects import Dialect
from tokensmith.web.observe import Observer

if TYPE_CHECKING:
    from tokensmith.web.panel.services import PanelServices
    from tokensmith.web.ui import UiServices

__all__ = [
    "STATE_KEY",
    "ApiKeyCache",
    "AppContext",
    "ClientCache",
    "Health",
    "ctx_of",
    "ctx_of_scope",
    "source_address",
]

#: The key of the context in the lifespan state (and so in each request's ``scope["state"]``).
STATE_KEY = "tokensmith"


class ClientCache(ClientReader, Protocol):
    """The clients as the token endpoint reads them: cached for ``client_cache_ttl``
    seconds (:class:`tokensmith.storage.cache.CachingClientStore`)."""

    def cached(self, client_id: str, /) -> Client | None:
        """The client if the cache holds it, fresh; never reads the store."""
        ...

    def invalidate(self, client_id: str | None = None, /) -> None: ...

    async def aclose(self) -> None: ...


class ApiKeyCache(Protocol):
    """Developer app keys by the SHA-256 of the key, cached like clients
    (:class:`tokensmith.storage.cache.ReadThrough`)."""

    async def get(self, key_hash: str, /) -> ApiKey | None: ...

    def invalidate(self, key_hash: str | None = None, /) -> None: ...

    async def aclose(self) -> None: ...


class SchemaReport(Protocol):
    """The migrations a database has, against those this version expects."""

    @property
    def state(self) -> str: ...

    @property
    def applied(self) -> tuple[str, ...]: ...

    @property
    def expected(self) -> tuple[str, ...]: ...


class ReadinessReport(Protocol):
    @property
    def available(self) -> bool: ...

    @property
    def ready(self) -> bool: ...

    @property
    def schema(self) -> SchemaReport | None: ...


class Health(Protocol):
    """Whether the store can serve (:class:`tokensmith.storage.health.StoreHealth`)."""

    async def failure(self) -> str | None:
        """``None`` when the database answers, else the name of the error."""
        ...

    async def readiness(self) -> ReadinessReport: ...


@dataclass(frozen=True, slots=True)
class AppContext:
    """Every service a handler may use, typed, built once. Handlers act through the
    core's services (``sessions`` ... ``reveals``); none touches the store."""

    settings: Settings
    clock: Clock
    rand: Randomness
    #: The token, introspection and revocation service (:mod:`tokensmith.core.service`).
    service: TokenService
    clients: ClientCache
    #: developer app keys of the ``tbc`` dialect by the SHA-256 of the key, cached like
    #: clients; ``api_key_admin`` invalidates it when it revokes one
    api_keys: ApiKeyCache
    observer: Observer
    dialects: Mapping[str, Dialect]
    #: RFC 8414 fields the authorization-code flow adds to the server metadata.
    metadata: Mapping[str, Any]
    #: Browser sessions (:mod:`tokensmith.core.sessions`).
    sessions: Sessions
    #: Codes, consents and their withdrawal (:mod:`tokensmith.core.authorizations`).
    authorizations: Authorizations
    #: Merchants and users (:mod:`tokensmith.core.directory`).
    merchants: Merchants
    users: Users
    #: API keys and partner apps, developer app keys (:mod:`tokensmith.core.client_admin`).
    client_admin: ClientAdmin
    api_key_admin: ApiKeys
    #: Token counts and failed authentications (:class:`tokensmith.core.activity.Activity`).
    activity: Activity
    #: Secrets shown once (:mod:`tokensmith.core.reveals`).
    reveals: Reveals
    #: Audit events (:mod:`tokensmith.core.audit`).
    audit: Audit
    #: Dynamic client registration and management (RFC 7591, RFC 7592).
    registrations: Registrations
    #: Pushed authorization requests (RFC 9126): the PAR endpoint, and the authorization
    #: endpoint's ``request_uri`` (:mod:`tokensmith.core.par`).
    par: PushedRequests
    #: Consent resources lodged at ``/oauth/consents`` (:mod:`tokensmith.core.consent_resources`).
    consents: ConsentResources
    #: The admin REST API's token check and token revocations (:mod:`tokensmith.core.admin_api`).
    admin_api: AdminApiServices
    #: Login, session cookies and pages (:mod:`tokensmith.web.ui`).
    ui: UiServices
    #: The merchant panel's services (:mod:`tokensmith.web.panel`).
    panel: PanelServices
    #: RFC 9396 ``authorization_details`` types, the CLI's re-read while running.
    details: DetailsTypes
    #: Whether the database answers and has its migrations (the probes).
    health: Health
    #: Owned here for the background jobs and the shutdown; no handler uses it.
    store: Store
    redis: Any = None


def ctx_of_scope(scope: Scope) -> AppContext | None:
    """The context in this request's lifespan state; ``None`` before the lifespan ran."""
    state = scope.get("state")
    return None if state is None else state.get(STATE_KEY)


def ctx_of(conn: HTTPConnection) -> AppContext:
    """The context of the application serving ``conn`` (a request)."""
    ctx: AppContext = conn.scope["state"][STATE_KEY]
    return ctx


def source_address(request: HTTPConnection, trusted: tuple[str, ...]) -> str:
    """The peer address; the last untrusted ``X-Forwarded-For`` hop behind trusted proxies."""
    peer = request.client.host if request.client else ""
    if not trusted or peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer
