"""The hot path: a POST to a route declared :class:`HotRoute` (the token, introspection and
revocation endpoints) skips Starlette's router and its exception layers, and nothing else.

:class:`TokensmithApp` builds two stacks from one middleware list: the full Starlette stack
(``ServerErrorMiddleware``, the app's middleware, ``ExceptionMiddleware``, the router) and
the hot stack (the same middleware around :class:`DirectDispatch`). A middleware the app is
given is in both, so the token endpoints are timed and answered by the last resort like
every other route, and none added later can miss them.

Why: the router tries every route's pattern in turn and ``ExceptionMiddleware`` wraps
``send`` for each request; for a request that can only be a POST to one of a handful of
exact paths, a dict lookup does the same. Every other request (a GET to a token endpoint
included) takes the full stack, whose 404/405 answers the hot routes need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectDispatch", "HotRoute", "TokensmithApp"]


class HotRoute(Route):
    """A route whose POSTs take the hot path. Its other methods go through the router."""


class DirectDispatch:
    """The hot stack's innermost app: the route by exact path, its handler called directly.
    Errors go up to the middleware, as they would from the router."""

    def __init__(self, routes: Iterable[HotRoute]) -> None:
        self.routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes[scope["path"]]
        scope["route"] = route
        try:
            response = await route.endpoint(Request(scope, receive))
        except ClientDisconnect:
            return
        await response(scope, receive, send)


def _wrap(app: ASGIApp, middleware: Sequence[Middleware]) -> ASGIApp:
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


class TokensmithApp(Starlette):
    """A Starlette application with a hot path for the routes declared :class:`HotRoute`.

    ``page_paths`` are the routes whose errors are HTML pages
    (:func:`tokensmith.web.errors.unavailable`)."""

    def __init__(
        self,
        *,
        routes: Iterable[BaseRoute],
        middleware: Sequence[Middleware] = (),
        page_paths: Iterable[str] = (),
        **kw: Any,
    ) -> None:
        routes = list(routes)
        super().__init__(routes=routes, middleware=list(middleware), **kw)
        self.page_paths = frozenset(page_paths)
        self._direct = DirectDispatch(r for r in routes if isinstance(r, HotRoute))
        self._hot_stack: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, and beside it the hot one from the same middleware."""
        self._hot_stack = _wrap(self._direct, self.user_middleware)
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self._direct.routes
        ):
            scope["app"] = self
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            assert self._hot_stack is not None
            await self._hot_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
