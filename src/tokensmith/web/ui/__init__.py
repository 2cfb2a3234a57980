"""The browser-facing foundation: login, sessions, CSRF, and the page layout.

The authorization endpoint's login and consent pages use it, and so will the merchant
panel (``/panel``). What a new page needs:

``await current_user(request) -> User | None``
    The logged-in user (roles ``admin``/``member`` of a merchant, or ``operator``), or
    ``None``. Disabled users and users of disabled merchants count as logged out.

``await require_login(request, roles=None) -> User | Response``
    The user, or a response to return at once: a 303 to ``/login?next=<this page>``, or
    a 403 page if the user's role is not in ``roles``. The decorator
    :func:`login_required` wraps an ``async def page(request, user)`` the same way.

``await csrf_token(request)`` / ``await check_csrf(request, form)``
    Every ``<form method="post">`` carries ``<input type="hidden" name="csrf_token"
    value="{{ csrf_token }}">`` (``render`` puts ``csrf_token`` in every template);
    handlers call ``check_csrf`` on the parsed form, which raises :class:`CsrfError`.

``await render(request, "page.html", status, nav=[NavItem(...)], **context)``
    A page extending ``base.html`` (blocks ``title``, ``nav``, ``content``), with the
    security headers (no framing, strict CSP, no-store) and the session cookie set.
    ``redirect(request, url)`` is the matching 303. A form whose answer may send the
    browser to another site answers ``await continue_page(request, url)`` instead (CSP
    ``form-action 'self'`` stops a form's redirects to other sites).

``await read_page_form(request)``
    The ``application/x-www-form-urlencoded`` body, single-valued, size-limited.

Login lives at ``GET/POST /login?next=/path`` and ``POST /logout``; ``next`` must be a
path on this server. Routes: :func:`ui_routes`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.accounts import LoginService
from tokensmith.core.errors import InvalidRequest
from tokensmith.core.families import PartnerPolicy
from tokensmith.core.models import User
from tokensmith.web.ui.pages import NavItem, continue_page, error_page, redirect, render
from tokensmith.web.ui.sessions import (
    CSRF_FIELD,
    CsrfError,
    SessionCookie,
    check_csrf,
    csrf_token,
    current_user,
    end_session,
    start_login_session,
)

__all__ = [
    "CSRF_FIELD",
    "PAGE_ROOTS",
    "CsrfError",
    "NavItem",
    "UiServices",
    "check_csrf",
    "continue_page",
    "csrf_token",
    "current_user",
    "end_session",
    "error_page",
    "is_page_path",
    "login_required",
    "read_page_form",
    "redirect",
    "render",
    "require_login",
    "safe_next",
    "start_login_session",
    "ui_of",
]

DEFAULT_LANDING = "/panel"
#: Where the browser pages live: these paths and those under them. Every answer there is
#: an HTML page or a redirect, errors included (a path or method no route has, too).
PAGE_ROOTS = ("/login", "/logout", "/account", "/panel", "/oauth/authorize")
#: The apps page's Withdraw form, a page under ``/oauth/consents`` (the rest of which is
#: the JSON API of the consent resource).
_WITHDRAW = re.compile(r"/oauth/consents/.*/withdraw(/.*)?", re.DOTALL)


def is_page_path(path: str) -> bool:
    """Whether ``path`` is a browser page's (see :data:`PAGE_ROOTS`)."""
    if any(path == root or path.startswith(root + "/") for root in PAGE_ROOTS):
        return True
    return _WITHDRAW.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class UiServices:
    """Everything the pages use; built by ``build_context`` and kept at ``ctx.ui``."""

    #: the session cookie (the sessions are ``ctx.sessions``)
    sessions: SessionCookie
    login: LoginService
    templates: Environment
    partner: PartnerPolicy


def ui_of(request: Request) -> UiServices:
    from tokensmith.web.context import ctx_of

    return ctx_of(request).ui


def safe_next(value: str | None, default: str = DEFAULT_LANDING) -> str:
    """``value`` if it is a path on this server (no open redirect), else ``default``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\\\r\n\t") or ":" in value.split("?", 1)[0]:
        return default
    return value


async def require_login(request: Request, roles: Iterable[str] | None = None) -> User | Response:
    """The logged-in user, else a response: 303 to the login page, or 403 for a role
    outside ``roles``."""
    user = await current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, "/login?next=" + quote(target, safe=""))
    if roles is not None and user.role not in set(roles):
        return await render(
            request,
            "error.html",
            403,
            title="Not allowed",
            message="Your account does not have access to this page.",
        )
    return user


Page = Callable[[Request, User], Awaitable[Response]]


def login_required(
    roles: Iterable[str] | None = None,
) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """Decorate ``async def page(request, user) -> Response`` as a Starlette endpoint."""
    allowed = None if roles is None else tuple(roles)

    def wrap(page: Page) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(page)
        async def endpoint(request: Request) -> Response:
            found = await require_login(request, allowed)
            if isinstance(found, Response):
                return found
            return await page(request, found)

        return endpoint

    return wrap


async def read_page_form(request: Request) -> dict[str, str]:
    """The posted form (urlencoded, single-valued, at most ``max_body_bytes``), without a
    NUL anywhere: no one types one into a page, and PostgreSQL refuses it in text, so it is
    ``invalid_request`` here rather than an error in whichever store call a page makes."""
    from tokensmith.web.context import ctx_of
    from tokensmith.web.forms import read_form

    form = await read_form(request, ctx_of(request).settings.max_body_bytes)
    if any("\x00" in name or "\x00" in value for name, value in form.items()):
        raise InvalidRequest("the form holds a NUL character")
    return form
