"""The ASGI application: :func:`create_app` declares the routes and the middleware, and its
lifespan builds the services (:func:`tokensmith.web.compose.build_context`) and hands them
to every request as lifespan state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tokensmith.core.clock import Clock
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import Store
from tokensmith.core.randomness import Randomness
from tokensmith.settings import SETTINGS_ENV, Settings
from tokensmith.web.admin import admin_mount
from tokensmith.web.admin.framework import PREFIX as ADMIN_PREFIX
from tokensmith.web.compose import build_context
from tokensmith.web.context import STATE_KEY, AppContext
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.endpoints import (
    consents,
    discovery,
    par,
    probes,
    registration,
    tokens_admin,
)
from tokensmith.web.endpoints.authorize import authorize_routes
from tokensmith.web.endpoints.token import TokenEndpoint
from tokensmith.web.errors import LastResortMiddleware, http_exception
from tokensmith.web.fastpath import HotRoute, TokensmithApp
from tokensmith.web.jobs import BackgroundJobs
from tokensmith.web.observe import LatencyMiddleware, Observer, RouteLabels
from tokensmith.web.panel import panel_routes
from tokensmith.web.ui.login import login_routes

__all__ = [
    "ADMIN_PORT_PATHS",
    "app_from_environ",
    "create_app",
    "dialect_of",
    "middleware",
    "page_routes",
    "routes",
]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
STATIC = Path(__file__).resolve().parent / "static"
#: The routes served on ``metrics_port`` instead of the public port when it is set.
ADMIN_PORT_PATHS = frozenset({"/metrics", "/livez", "/readyz"})
log = logging.getLogger("tokensmith")
_TOKEN_DIALECTS = {path: name for name, path in DIALECT_PATHS.items()}


def routes(settings: Settings) -> list[BaseRoute]:
    """The JSON routes. A token endpoint (and the PAR endpoint, RFC 9126) takes every
    method, to answer the others with a 405 in its dialect; its POSTs take the hot path
    (:class:`HotRoute`)."""
    table: list[BaseRoute] = [
        HotRoute("/oauth/token", TokenEndpoint("oauth").handle, methods=_METHODS),
        HotRoute("/oauth/introspect", tokens_admin.introspect, methods=_METHODS),
        HotRoute("/oauth/revoke", tokens_admin.revoke, methods=_METHODS),
        HotRoute("/oauth/par", par.push, methods=_METHODS),
        Route(consents.CONSENTS_PATH, consents.consents, methods=_METHODS),
        Route(consents.CONSENTS_PATH + "/consume", consents.consume, methods=_METHODS),
        Route(consents.CONSENTS_PATH + "/{consent_id}", consents.consent, methods=_METHODS),
        Route("/.well-known/oauth-authorization-server", discovery.metadata),
        Route("/.well-known/jwks.json", discovery.jwks),
        Route("/healthz", discovery.healthz),
        Route("/livez", probes.livez),
        Route("/readyz", probes.readyz),
        Route("/metrics", discovery.metrics),
        Route("/openapi.json", discovery.openapi),
        admin_mount(),
    ]
    if settings.metrics_port is not None:  # served on their own port (tokensmith.web.admin_port)
        table = [r for r in table if getattr(r, "path", None) not in ADMIN_PORT_PATHS]
    if settings.registration != "off":  # RFC 7591 §3, RFC 7592 §2
        path = registration.REGISTER_PATH
        table.append(Route(path, registration.register, methods=_METHODS))
        table.append(Route(path + "/{client_id}", registration.manage, methods=_METHODS))
    for name in settings.compat:
        endpoint = TokenEndpoint(name, require_apikey=name == "tbc")
        table.append(HotRoute(DIALECT_PATHS[name], endpoint.handle, methods=_METHODS))
    return table


def page_routes() -> list[BaseRoute]:
    """The routes that answer HTML: login, authorization and consent, the panel."""
    return [
        *authorize_routes(),
        *login_routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *panel_routes(),
    ]


def observer_of(scope: Scope) -> Observer | None:
    """The observer of the app serving ``scope`` (for :class:`LatencyMiddleware`)."""
    ctx = scope.get("state", {}).get(STATE_KEY)  # ctx_of_scope, one call fewer a request
    return None if ctx is None else ctx.observer


def dialect_of(template: str) -> str | None:
    """The ``dialect`` metrics label of a route template: a token endpoint's wire dialect,
    ``oauth`` for the other standard endpoints (introspection, revocation, PAR,
    authorization, registration), ``admin`` for the admin API, ``panel`` for the merchant
    panel, else none (``other``)."""
    if template in _TOKEN_DIALECTS:
        return _TOKEN_DIALECTS[template]
    if template.startswith("/oauth/"):
        return "oauth"
    if template.startswith(ADMIN_PREFIX):
        return "admin"
    if template == "/panel" or template.startswith("/panel/"):
        return "panel"
    return None


def middleware(labels: RouteLabels | None = None) -> list[Middleware]:
    """Around every route, the hot path's included: the request metrics (labelled by
    ``labels``, found once for the app's routes), then the last-resort answers
    (``server_error``, the 503 of an outage)."""
    return [
        Middleware(LatencyMiddleware, observer=observer_of, labels=labels),
        Middleware(LastResortMiddleware),
    ]


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rand: Randomness | None = None,
    store: Store | None = None,
    passwords: Passwords | None = None,
    tracer_provider: Any = None,
) -> Starlette:
    """The ASGI application. Storage, keys and caches are set up in its lifespan; the
    keyword arguments replace the real clock, randomness, store, password hasher and (with
    ``settings.otel``) OpenTelemetry tracer provider."""
    pages = page_routes()
    table = [*routes(settings), *pages]
    labels = RouteLabels(table, dialect_of)
    stack = middleware(labels)
    tracing = tracing_middleware(settings, labels, tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppContext]]:
        ctx = await build_context(
            settings, clock=clock, rand=rand, store=store, passwords=passwords
        )
        jobs = BackgroundJobs(ctx)
        jobs.start()
        try:
            yield {STATE_KEY: ctx}
        finally:
            for traced in tracing:  # the spans still queued go out (an SDK provider)
                flush = getattr(traced.kwargs["provider"], "force_flush", None)
                if flush is not None:
                    await asyncio.to_thread(flush)
            await jobs.stop()
            await _settle(ctx)
            if ctx.redis is not None:
                await ctx.redis.aclose()
            if store is None:
                await ctx.store.close()

    return TokensmithApp(
        routes=table,
        middleware=[*tracing, *stack],
        page_paths=[r.path for r in pages if isinstance(r, Route)],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},
    )


def tracing_middleware(
    settings: Settings, labels: RouteLabels, provider: Any = None
) -> list[Middleware]:
    """With ``settings.otel``, the OpenTelemetry middleware (:mod:`tokensmith.web.tracing`)
    outside the others, so that its span covers them; else none, and ``opentelemetry`` is
    not imported."""
    if not settings.otel:
        return []
    try:
        from tokensmith.web import tracing
    except ImportError:
        log.warning(
            "TOKENSMITH_OTEL is on but opentelemetry is not installed: no traces "
            "(pip install 'tokensmith[otel]')"
        )
        return []
    provider = provider or tracing.tracer_provider()
    return [Middleware(tracing.TracingMiddleware, provider=provider, labels=labels)]


async def _settle(ctx: AppContext) -> None:
    """Let the background reads of the caches finish, so that none holds a connection when
    the store closes."""
    closing = [ctx.clients.aclose(), ctx.api_keys.aclose(), ctx.service.keyring.aclose()]
    if ctx.service.revocations is not None:
        closing.append(ctx.service.revocations.aclose())
    if ctx.service.dpop is not None:
        closing.append(ctx.service.dpop.aclose())
    if ctx.service.resources is not None:
        closing.append(ctx.service.resources.aclose())
    if ctx.service.authenticator.assertions is not None:
        closing.append(ctx.service.authenticator.assertions.aclose())
    await asyncio.gather(*closing)


def app_from_environ() -> Starlette:
    """Factory for uvicorn workers: settings come from ``tokensmith serve`` via the environment."""
    from tokensmith.logs import configure_logging

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_json, settings.log_level)
    return create_app(settings)
