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
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from tokensmith.core.clock import Clock
from tokensmith.core.models import ApiKey
from tokensmith.core.par import PushedRequests
from tokensmith.core.ports import Store
from tokensmith.core.randomness import Randomness
from tokensmith.core.service import TokenService
from tokensmith.settings import Settings
from tokensmith.storage.cache import CachingClientStore, ReadThrough
from tokensmith.storage.health import StoreHealth
from tokensmith.web.dialects import Dialect
from tokensmith.web.observe import Observer

if TYPE_CHECKING:
    from tokensmith.web.panel.services import PanelServices
    from tokensmith.web.ui import UiServices

__all__ = ["STATE_KEY", "AppContext", "ctx_of", "ctx_of_scope", "source_address"]

#: The key of the context in the lifespan state (and so in each request's ``scope["state"]``).
STATE_KEY = "tokensmith"


@dataclass(frozen=True, slots=True)
class AppContext:
    """Every service a handler may use, typed, built once."""

    settings: Settings
    clock: Clock
    rand: Randomness
    #: The token, introspection and revocation service (:mod:`tokensmith.core.service`).
    service: TokenService
    clients: CachingClientStore
    #: developer app keys of the ``tbc`` dialect by the SHA-256 of the key, cached like
    #: clients; whatever revokes one here calls ``api_keys.invalidate()``
    api_keys: ReadThrough[ApiKey]
    observer: Observer
    dialects: Mapping[str, Dialect]
    #: RFC 8414 fields the authorization-code flow adds to the server metadata.
    metadata: Mapping[str, Any]
    #: Pushed authorization requests (RFC 9126): the PAR endpoint, and the authorization
    #: endpoint's ``request_uri`` (:mod:`tokensmith.core.par`).
    par: PushedRequests
    #: Login, sessions and pages (:mod:`tokensmith.web.ui`).
    ui: UiServices
    #: The merchant panel's services (:mod:`tokensmith.web.panel`).
    panel: PanelServices
    #: Whether the database answers and has its migrations (the probes).
    health: StoreHealth
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
