"""The composition root: :func:`create_app` wires settings, storage, core and routes."""

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
from starlette.routing import BaseRoute, Route

from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.credentials import new_secret
from tokensmith.core.families import PartnerPolicy
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.grants import Grant
from tokensmith.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.core.grants.client_credentials import client_credentials
from tokensmith.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.core.keyring import KeyRing
from tokensmith.core.keys import KeySealer
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.models import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN
from tokensmith.core.ports import Store
from tokensmith.core.randomness import Randomness, SystemRandomness
from tokensmith.core.service import TokenService
from tokensmith.core.tokens import IssuePolicy, TokenMinter
from tokensmith.settings import SETTINGS_ENV, ConfigError, Settings, secret_key_weakness
from tokensmith.storage.cache import CachingClientStore, ReadThrough
from tokensmith.storage.ratelimit import MemoryLimiter, RedisLimiter
from tokensmith.storage.revocations import RevocationView
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.web.context import AppContext
from tokensmith.web.dialects.compat import DIALECT_PATHS, dialects
from tokensmith.web.dpop import install_dpop
from tokensmith.web.endpoints import discovery, probes, tokens_admin
from tokensmith.web.endpoints.token import TokenEndpoint
from tokensmith.web.errors import LastResortMiddleware, http_exception
from tokensmith.web.fastpath import TokensmithApp
from tokensmith.web.observe import LatencyMiddleware, Observer
from tokensmith.web.panel import install_panel, panel_routes, start_activity, stop_activity
from tokensmith.web.partner import (
    install_partner_apps,
    partner_policy,
    partner_routes,
    start_purger,
)
from tokensmith.web.tasks import stop_task

__all__ = ["build_context", "create_app", "resolve_secret_keys"]

log = logging.getLogger("tokensmith")

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def resolve_secret_keys(settings: Settings, rand: Randomness | None = None) -> list[str]:
    """The key-sealing secrets: from settings (checked there), else a file made on first
    start, whose key is checked as strictly."""
    if settings.secret_key:
        return [s.strip() for s in settings.secret_key.split(",") if s.strip()]
    path = Path(settings.secret_key_file)
    if not path.exists():
        secret = new_secret(rand or SystemRandomness())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        log.warning(
            "generated a secret key in %s; set TOKENSMITH_SECRET_KEY when instances share a "
            "database",
            path,
        )
    secret = path.read_text().strip()
    weakness = secret_key_weakness(secret)
    if weakness is not None:
        raise ConfigError(f"the secret key in {path} {weakness}: use a random key")
    return [secret]


def grant_table(partner: PartnerPolicy | None = None) -> dict[str, Grant]:
    """``grant_type`` -> handler (RFC 6749 §4)."""
    partner = partner or PartnerPolicy()
    return {
        CLIENT_CREDENTIALS: client_credentials,
        AUTHORIZATION_CODE: AuthorizationCodeGrant(partner),
        REFRESH_TOKEN: RefreshTokenGrant(partner),
    }


def _limiter(settings: Settings, clock: Clock, redis: Any) -> FailureLimiter:
    if redis is None:
        return MemoryLimiter(clock)
    return RedisLimiter(
        redis, prefix=settings.redis_prefix + "fail:", fallback=MemoryLimiter(clock)
    )


async def build_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rand: Randomness | None = None,
    store: Store | None = None,
) -> AppContext:
    """Build the object graph: the one place that knows every concrete class."""
    clock = clock or SystemClock()
    rand = rand or SystemRandomness()
    if store is None:
        engine = make_engine(settings.database_url, settings.database_pool_size)
        if settings.auto_migrate:
            await migrate(engine)
        store = SqlStore(engine)
    redis = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(settings.redis_url)
    clients = CachingClientStore(store, clock, settings.client_cache_ttl)
    limits = FailureLimits(
        Limit(settings.failures_per_client, settings.failure_window),
        Limit(settings.failures_per_address, settings.failure_window),
    )
    limiter = _limiter(settings, clock, redis)
    secret_keys = resolve_secret_keys(settings, rand)
    # from the secret key every instance shares: they then count under the same keys
    fingerprints = Fingerprints.from_secret(secret_keys[0])
    authenticator = ClientAuthenticator(clients, clock, limiter, limits, fingerprints)
    sealer = KeySealer(secret_keys)
    keyring = KeyRing(store, sealer, clock, rand, settings.issuer_url, settings.key_reload_interval)
    await keyring.ensure(settings.signing_alg)
    minter = TokenMinter(
        await keyring.codec(),
        store,
        clock,
        rand,
        settings.issuer_url,
        settings.audience_value,
        legacy_issuer=settings.legacy_token_issuer,
    )
    partner = partner_policy(settings)
    service = TokenService(
        store, clients, authenticator, minter, keyring, clock, rand, grant_table(partner)
    )
    service.revocations = RevocationView(store, clock, settings.revocation_sync_interval)
    standard = IssuePolicy(settings.default_token_format, settings.access_token_ttl)
    ctx = AppContext(
        settings=settings,
        store=store,
        clients=clients,
        api_keys=ReadThrough(store.find_api_key, clock, settings.client_cache_ttl),
        service=service,
        observer=Observer(fingerprints=fingerprints),
        dialects=dialects(standard),
        clock=clock,
        rand=rand,
        redis=redis,
    )
    install_partner_apps(ctx, limiter, partner, fingerprints)
    install_dpop(ctx, secret_keys[0])
    install_panel(ctx)
    return ctx


def routes(settings: Settings) -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route("/oauth/token", TokenEndpoint("oauth").handle, methods=_METHODS),
        Route("/oauth/introspect", tokens_admin.introspect, methods=_METHODS),
        Route("/oauth/revoke", tokens_admin.revoke, methods=_METHODS),
        Route("/.well-known/oauth-authorization-server", discovery.metadata),
        Route("/.well-known/jwks.json", discovery.jwks),
        Route("/healthz", discovery.healthz),
        Route("/livez", probes.livez),
        Route("/readyz", probes.readyz),
        Route("/metrics", discovery.metrics),
        Route("/openapi.json", discovery.openapi),
    ]
    for name in settings.compat:
        endpoint = TokenEndpoint(name, require_apikey=name == "tbc")
        table.append(Route(DIALECT_PATHS[name], endpoint.handle, methods=_METHODS))
    return table


def page_routes() -> list[BaseRoute]:
    """The routes that answer HTML: login, authorization and consent, the panel."""
    return [*partner_routes(), *panel_routes()]


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rand: Randomness | None = None,
    store: Store | None = None,
) -> Starlette:
    """The ASGI application. Storage, keys and caches are set up in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx = await build_context(settings, clock=clock, rand=rand, store=store)
        app.state.ctx = ctx
        ctx.observer.start(settings.metrics_flush_interval)
        purger = start_purger(ctx)
        activity = start_activity(ctx)
        try:
            yield
        finally:
            await stop_task(purger)
            await stop_activity(ctx, activity)
            await ctx.observer.aclose()
            await _settle(ctx)
            if ctx.redis is not None:
                await ctx.redis.aclose()
            if store is None:
                await ctx.store.close()

    def observer() -> Observer | None:
        ctx = getattr(app.state, "ctx", None)
        return ctx.observer if ctx is not None else None

    pages = page_routes()
    app = TokensmithApp(
        routes=[*routes(settings), *pages],
        observer=observer,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},
    )
    #: Paths whose errors are HTML pages (:func:`tokensmith.web.errors.unavailable`).
    app.state.page_paths = frozenset(r.path for r in pages if isinstance(r, Route))

    app.user_middleware.insert(0, Middleware(LatencyMiddleware, observer=observer))
    app.user_middleware.insert(1, Middleware(LastResortMiddleware))
    return app


async def _settle(ctx: AppContext) -> None:
    """Let the background reads of the caches finish, so that none holds a connection when
    the store closes."""
    closing = [ctx.clients.aclose(), ctx.api_keys.aclose(), ctx.service.keyring.aclose()]
    if ctx.service.revocations is not None:
        closing.append(ctx.service.revocations.aclose())
    if ctx.service.dpop is not None:
        closing.append(ctx.service.dpop.aclose())
    await asyncio.gather(*closing)


def app_from_environ() -> Starlette:
    """Factory for uvicorn workers: settings come from ``tokensmith serve`` via the environment."""
    from tokensmith.logs import configure_logging

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_json, settings.log_level)
    return create_app(settings)
