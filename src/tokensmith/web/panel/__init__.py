"""The merchant panel at ``/panel``: API keys, partner apps, authorized apps, consents,
developer app keys, activity, users and the audit log, on the same login as the authorization flow.

Server-rendered pages (Jinja2, ``templates/panel/``) that work without JavaScript;
``/static/panel.js`` adds a copy button and chart tooltips. Access rules are in
:mod:`.access`; the one-time display of secrets in :mod:`.reveal`; token activity is
counted by :mod:`tokensmith.core.activity` and flushed by a background job of the app's
lifespan (:class:`tokensmith.web.tasks.BackgroundJobs`). See ``docs/panel.md``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tokensmith.web.panel.access import switch_merchant
from tokensmith.web.panel.activity import activity_routes
from tokensmith.web.panel.apps import app_routes
from tokensmith.web.panel.audit import audit_routes
from tokensmith.web.panel.authorized import authorized_routes
from tokensmith.web.panel.consents import consent_routes
from tokensmith.web.panel.devkeys import devkey_routes
from tokensmith.web.panel.keys import key_routes
from tokensmith.web.panel.reveal import reveal_page
from tokensmith.web.panel.services import PanelServices, panel_of
from tokensmith.web.panel.users import user_routes

__all__ = ["PanelServices", "panel_of", "panel_routes"]


async def _home(request: Request) -> Response:
    return RedirectResponse("/panel/keys", 303)


def panel_routes() -> list[BaseRoute]:
    return [
        Route("/panel", _home, methods=["GET"]),
        Route("/panel/merchant", switch_merchant, methods=["POST"]),
        Route("/panel/reveal/{rid}", reveal_page, methods=["GET"]),
        *key_routes(),
        *app_routes(),
        *authorized_routes(),
        *consent_routes(),
        *devkey_routes(),
        *activity_routes(),
        *user_routes(),
        *audit_routes(),
    ]
