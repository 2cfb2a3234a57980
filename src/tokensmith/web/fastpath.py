"""The hot path: POSTs to the token, introspection and revocation endpoints skip Starlette's
router and exception layers.

They keep everything that matters to a client: the same handlers, the latency metric,
the 503 of a database outage in the endpoint's dialect and the last-resort
``server_error`` answer. Every other request, a GET to a token endpoint
included, goes through the full Starlette stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.web.errors import server_error, unavailable
from tokensmith.web.observe import Observer

__all__ = ["FAST_PATHS", "TokensmithApp"]

#: Endpoints served on the hot path (POST only).
FAST_PATHS = frozenset(
    {
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
        "/oauth/auth",
        "/v2/tpay/access-token",
        "/o/token/",
    }
)


class _Endpoints:
    """Calls the route's request handler directly, timing it, with the last-resort answer."""

    def __init__(self, routes: dict[str, Route], observer: Callable[[], Observer | None]):
        self.routes = routes
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        route = self.routes[scope["path"]]
        scope["route"] = route
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request)
        except ClientDisconnect:
            return
        except TemporarilyUnavailable as exc:  # the handlers render it; this is the net
            response = unavailable(request, exc)
        except Exception:
            response = server_error(scope)
        await response(scope, receive, send)
        obs = self._observer()
        if obs is not None:
            obs.observe_latency(route.path, "POST", time.perf_counter() - start)


class TokensmithApp(Starlette):
    """A Starlette application with a direct path for the token endpoints."""

    def __init__(
        self, *, routes: Iterable[BaseRoute], observer: Callable[[], Observer | None], **kw: Any
    ) -> None:
        routes = list(routes)
        super().__init__(routes=routes, **kw)
        fast = {r.path: r for r in routes if isinstance(r, Route) and r.path in FAST_PATHS}
        self._fast_paths = frozenset(fast)
        self._fast = _Endpoints(fast, observer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self._fast_paths
        ):
            scope["app"] = self
            await self._fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
