"""Who may see and change what in the panel, and the panel's page layout.

Every panel page runs through :func:`panel_page`: it needs a login (else a 303 to
``/login``), works out the *tenant* (the merchant whose data the page shows: a merchant
user's own; for an operator, the one picked in the merchant switcher), refuses changes
by a ``member`` with 403, and checks the CSRF token of every POST. A page then looks up
objects only within ``tenant.merchant_id``; an id of another merchant's object is 404,
exactly like an id that does not exist.

A platform operator is the exception for clients: the API key and partner app pages
(``platform`` pages) show an operator every client, of every merchant and of none (made
in the CLI without ``--merchant``, or registered dynamically), and let them act on each
(``tenant.client_scope`` is ``None``); they open even before any merchant exists.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.core.models import Merchant, User
from tokensmith.web.context import ctx_of
from tokensmith.web.ui import (
    CsrfError,
    NavItem,
    check_csrf,
    read_page_form,
    redirect,
    render,
    require_login,
    ui_of,
)
from tokensmith.web.ui.pages import security_headers

__all__ = [
    "PanelPage",
    "Tenant",
    "id_ok",
    "not_found",
    "page_error",
    "panel_page",
    "panel_render",
    "switch_merchant",
]

EDITORS = ("admin", "operator")
#: Fixed messages shown after an action (``?done=<key>``); nothing from the URL is echoed.
FLASH = {
    "key-revoked": "The key was revoked. Token requests with it are refused from now on.",
    "app-revoked": "The app was deleted. Its tokens no longer work.",
    "app-saved": "The app was saved.",
    "security-saved": "The app's security settings were saved. They apply to its next request.",
    "app-keys-saved": "The app's public keys were saved. They apply to its next request.",
    "app-keys-cleared": "The app's public keys were removed.",
    "access-revoked": "Access withdrawn. The app's refresh and access tokens no longer work.",
    "consent-revoked": "The consent was revoked. The app's tokens for it no longer work.",
    "devkey-revoked": "The developer app key was revoked.",
    "user-created": "The user was created. Share the password with them over a safe channel.",
    "user-disabled": "The user was disabled and signed out everywhere.",
    "merchant-switched": "Switched merchant.",
    "delivery-queued": "The delivery was queued again.",
}


@dataclass(frozen=True, slots=True)
class Tenant:
    """The logged-in user and the merchant the page is about."""

    user: User
    merchant: Merchant | None
    #: Every merchant, for an operator's switcher; empty for merchant users.
    merchants: list[Merchant] = field(default_factory=list)

    @property
    def can_edit(self) -> bool:
        return self.user.role in EDITORS

    @property
    def merchant_id(self) -> str:
        assert self.merchant is not None, "panel_page stops before a page without merchant"
        return self.merchant.merchant_id

    @property
    def is_operator(self) -> bool:
        return self.user.role == "operator"

    @property
    def client_scope(self) -> str | None:
        """Whose clients the key and app pages show: the merchant's, or (``None``) every
        client for a platform operator."""
        return None if self.is_operator else self.merchant_id

    def merchant_name(self, merchant_id: str | None) -> str:
        """A client's merchant as an operator's list shows it."""
        if merchant_id is None:
            return "None (platform)"
        found = next((m for m in self.merchants if m.merchant_id == merchant_id), None)
        return found.name if found is not None else merchant_id


_ID = re.compile(r"[\x21-\x7e]{1,64}")


def id_ok(value: str) -> bool:
    """Whether a path id can name anything (printable ASCII, at most 64 characters); others
    are 404 without a database query (a NUL must never reach PostgreSQL)."""
    return _ID.fullmatch(value) is not None


PanelPage = Callable[[Request, Tenant, dict[str, str]], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _cookie_name(request: Request) -> str:
    secure = ui_of(request).sessions.secure
    return "__Host-tokensmith_merchant" if secure else "tokensmith_merchant"


async def _tenant(request: Request, user: User) -> Tenant:
    directory = ctx_of(request).merchants
    if user.role != "operator":
        return Tenant(user, await directory.get(user.merchant_id or ""))
    merchants = await directory.listing()
    picked = request.cookies.get(_cookie_name(request))
    chosen = next((m for m in merchants if m.merchant_id == picked), None)
    return Tenant(user, chosen or (merchants[0] if merchants else None), merchants)


def panel_page(*, edit: bool = False, platform: bool = False) -> Callable[[PanelPage], Endpoint]:
    """Decorate ``async def page(request, tenant, form)``; ``edit`` pages (every POST, and
    the forms leading to one) are for admins and operators only; ``platform`` pages (the
    clients') open for an operator even when no merchant exists."""

    def wrap(page: PanelPage) -> Endpoint:
        @functools.wraps(page)
        async def endpoint(request: Request) -> Response:
            user = await require_login(request)
            if isinstance(user, Response):
                return user
            tenant = await _tenant(request, user)
            if tenant.merchant is None and not (platform and tenant.is_operator):
                return await _no_merchant(request, tenant)
            if edit and not tenant.can_edit:
                return await page_error(request, tenant, 403, "Not allowed", _READ_ONLY)
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await read_page_form(request)
                    await check_csrf(request, form)
                except CsrfError:
                    return await page_error(request, tenant, 403, "The page expired", _EXPIRED)
                except OAuthError as exc:
                    return await page_error(request, tenant, exc.status, "Bad request", str(exc))
            return await page(request, tenant, form)

        return endpoint

    return wrap


_READ_ONLY = "Your role can view this merchant's settings but not change them. Ask an admin."
_EXPIRED = "The form was open too long or came from another site. Go back, reload, try again."

SECTIONS = (
    ("Integration \u203a API", "keys", "Open API keys", "/panel/keys"),
    ("Integration \u203a API", "apps", "Partner apps", "/panel/apps"),
    ("Integration \u203a API", "authorized", "Authorized apps", "/panel/authorized"),
    ("Integration \u203a API", "consents", "Consents", "/panel/consents"),
    ("Integration \u203a API", "devkeys", "Developer app keys", "/panel/devkeys"),
    ("Integration \u203a API", "activity", "Activity", "/panel/activity"),
    ("Team", "users", "Users", "/panel/users"),
    ("Team", "audit", "Audit", "/panel/audit"),
)
#: Sections that only admins and operators see.
_EDITORS_ONLY = frozenset({"audit"})
_TEAM = frozenset({"users", "audit"})


def _sidebar(section: str, tenant: Tenant) -> list[tuple[str, list[NavItem]]]:
    groups: dict[str, list[NavItem]] = {}
    for group, key, label, href in SECTIONS:
        if key in _EDITORS_ONLY and not tenant.can_edit:
            continue
        groups.setdefault(group, []).append(NavItem(label, href, key == section))
    return list(groups.items())


def _headers() -> dict[str, str]:
    """The pages' security headers, plus our one script file (``/static/panel.js``)."""
    headers = security_headers()
    headers["content-security-policy"] += "; script-src 'self'"
    return headers


async def panel_render(
    request: Request,
    tenant: Tenant,
    template: str,
    status: int = 200,
    *,
    section: str,
    **context: Any,
) -> Response:
    """A panel page: the base layout with the panel's sidebar and merchant bar."""
    done = request.query_params.get("done", "")
    top = [
        NavItem("Integration", "/panel/keys", section not in _TEAM),
        NavItem("Team", "/panel/users", section in _TEAM),
    ]
    return await render(
        request,
        template,
        status,
        nav=top,
        headers=_headers(),
        tenant=tenant,
        can_edit=tenant.can_edit,
        section=section,
        sidebar=_sidebar(section, tenant),
        flash=FLASH.get(done),
        now=ctx_of(request).clock.now(),
        **context,
    )


async def page_error(
    request: Request, tenant: Tenant, status: int, title: str, message: str
) -> Response:
    return await panel_render(
        request,
        tenant,
        "panel/message.html",
        status,
        section="",
        title=title,
        message=message,
    )


async def not_found(request: Request, tenant: Tenant) -> Response:
    """The answer for an unknown id and for another merchant's id alike."""
    return await page_error(
        request, tenant, 404, "Not found", "There is nothing here, or you have no access to it."
    )


async def _no_merchant(request: Request, tenant: Tenant) -> Response:
    if not tenant.is_operator:  # a merchant user's merchant vanished: nothing to show
        return await render(
            request, "error.html", 403, title="Not allowed", message="Your account has no merchant."
        )
    return await panel_render(
        request,
        tenant,
        "panel/message.html",
        200,
        section="",
        title="No merchants yet",
        message="Create a merchant with \u201ctokensmith merchants create NAME\u201d, then "
        "reload this page.",
    )


@panel_page()
async def switch_merchant(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/merchant``: an operator picks the merchant the panel shows."""
    if not tenant.is_operator:
        return await page_error(request, tenant, 403, "Not allowed", "Only operators switch.")
    chosen = next((m for m in tenant.merchants if m.merchant_id == form.get("merchant_id")), None)
    if chosen is None:
        return await not_found(request, tenant)
    response = redirect(request, "/panel/keys?done=merchant-switched")
    response.set_cookie(
        _cookie_name(request),
        chosen.merchant_id,
        path="/",
        secure=ui_of(request).sessions.secure,
        httponly=True,
        samesite="lax",
    )
    return response
