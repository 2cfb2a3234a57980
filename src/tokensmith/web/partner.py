"""Wiring of the partner-app flow (authorization code + refresh tokens) into the app.

Called by :func:`tokensmith.web.app.build_context` and ``create_app``: settings become a
:class:`PartnerPolicy`, refresh tokens get introspection/revocation hooks, the login and
consent pages get their services, and the purge job runs in the lifespan.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from tokensmith.core.accounts import LoginLimits, LoginService
from tokensmith.core.families import PartnerPolicy, RefreshTokens
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.passwords import Passwords
from tokensmith.core.purge import purge_forever
from tokensmith.settings import Settings
from tokensmith.web.context import AppContext
from tokensmith.web.endpoints.authorize import authorize_routes
from tokensmith.web.ui import UiServices
from tokensmith.web.ui.login import login_routes
from tokensmith.web.ui.pages import make_environment
from tokensmith.web.ui.sessions import SessionManager

__all__ = [
    "install_partner_apps",
    "partner_policy",
    "partner_routes",
    "start_purger",
]

STATIC = Path(__file__).resolve().parent / "static"


def partner_policy(settings: Settings) -> PartnerPolicy:
    return PartnerPolicy(
        code_ttl=settings.authorization_code_ttl,
        access_token_ttl=settings.partner_access_token_ttl,
        refresh_idle_ttl=settings.refresh_token_idle_ttl,
        refresh_absolute_ttl=settings.refresh_token_absolute_ttl,
        refresh_grace=settings.refresh_grace_seconds,
        require_pkce=settings.require_pkce,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def install_partner_apps(
    ctx: AppContext,
    limiter: FailureLimiter,
    partner: PartnerPolicy,
    fingerprints: Fingerprints | None = None,
) -> None:
    """Hooks and services on a freshly built context."""
    s = ctx.settings
    refresh = RefreshTokens(ctx.store, ctx.clients, ctx.clock, ctx.service.minter.binding)
    ctx.service.introspectors.append(refresh.introspect)
    ctx.service.revokers.append(refresh.revoke)
    sessions = SessionManager(
        store=ctx.store,
        users=ctx.store,
        merchants=ctx.store,
        clock=ctx.clock,
        rand=ctx.rand,
        idle_ttl=s.session_idle_ttl,
        absolute_ttl=s.session_absolute_ttl,
        secure=s.issuer_url.startswith("https://"),
        origin=_origin(s.issuer_url),
    )
    limits = LoginLimits(
        Limit(s.login_failures_per_account, s.login_failure_window),
        Limit(s.login_failures_per_address, s.login_failure_window),
    )
    login = LoginService(ctx.store, ctx.store, Passwords(), limiter, limits, fingerprints)
    ctx.ui = UiServices(sessions, login, make_environment(), partner)
    ctx.extras.setdefault("metadata", {}).update(
        {
            "authorization_endpoint": s.issuer_url + "/oauth/authorize",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
        }
    )


def partner_routes() -> list[BaseRoute]:
    return [
        *authorize_routes(),
        *login_routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def start_purger(ctx: AppContext) -> asyncio.Task[None] | None:
    """The scheduled purge job, unless ``purge_interval`` is 0."""
    s = ctx.settings
    if s.purge_interval <= 0:
        return None
    job = purge_forever(
        ctx.store, ctx.clock, s.purge_interval, s.purge_batch_size, s.session_idle_ttl
    )
    return asyncio.create_task(job, name="tokensmith-purge")
