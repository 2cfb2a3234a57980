"""The per-application object graph, built once by :func:`tokensmith.web.app.create_app`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from tokensmith.core.clock import Clock
from tokensmith.core.models import ApiKey
from tokensmith.core.ports import Store
from tokensmith.core.randomness import Randomness
from tokensmith.core.service import TokenService
from tokensmith.settings import Settings
from tokensmith.storage.cache import CachingClientStore, ReadThrough
from tokensmith.web.dialects import Dialect
from tokensmith.web.observe import Observer

if TYPE_CHECKING:
    from tokensmith.web.ui import UiServices

__all__ = ["AppContext", "source_address"]


@dataclass(slots=True)
class AppContext:
    """What handlers reach through ``request.app.state.ctx``."""

    settings: Settings
    store: Store
    clients: CachingClientStore
    #: developer app keys of the ``tbc`` dialect by the SHA-256 of the key, cached like
    #: clients; whatever revokes one here calls ``api_keys.invalidate()``
    api_keys: ReadThrough[ApiKey]
    service: TokenService
    observer: Observer
    dialects: dict[str, Dialect]
    clock: Clock
    rand: Randomness
    redis: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: Login, sessions and pages (:mod:`tokensmith.web.ui`), set by ``build_context``.
    ui: UiServices | None = None


def ctx_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def source_address(request: Request, trusted: tuple[str, ...]) -> str:
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
