"""``/login`` and ``/logout``: e-mail and password, throttled, into a server-side session.

After a login the browser goes to ``next``, a path of ours. When that is a page that may
send it on to another site (the authorization endpoint, which redirects to the app), the
login form's answer is the continue page rather than a 303: Chromium would apply the login
page's ``form-action 'self'`` to the redirect to the app and stop there
(:mod:`tokensmith.web.ui.pages`).
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.accounts import LoginRefused
from tokensmith.core.errors import OAuthError, RateLimited, TemporarilyUnavailable
from tokensmith.web.context import ctx_of, source_address
from tokensmith.web.ui import (
    CsrfError,
    check_csrf,
    continue_page,
    end_session,
    read_page_form,
    redirect,
    render,
    safe_next,
    start_login_session,
    ui_of,
)

__all__ = ["ONWARD_PATHS", "leads_onward", "login_page", "login_routes"]

#: Our pages that may redirect the browser to another site.
ONWARD_PATHS = frozenset({"/oauth/authorize"})


async def login_page(
    request: Request,
    next_url: str,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    app_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The login form; after login the browser goes to ``next_url`` (a local path)."""
    return await render(
        request,
        "login.html",
        status,
        headers=headers,
        next=safe_next(next_url),
        error=error,
        email=email,
        app_name=app_name,
        title="Sign in",
    )


async def show_login(request: Request) -> Response:
    return await login_page(request, request.query_params.get("next", ""))


async def do_login(request: Request) -> Response:
    """Check the form and the password; on success a new session and a 303 to ``next``."""
    try:
        form = await read_page_form(request)
    except OAuthError as exc:
        return await login_page(request, "", status=exc.status, error=exc.description)
    next_url = safe_next(form.get("next"))
    email = form.get("email", "")[:320]
    try:
        await check_csrf(request, form)
        source = source_address(request, ctx_of(request).settings.trusted_proxies)
        user = await ui_of(request).login.login(email, form.get("password", ""), source)
    except CsrfError:
        return await login_page(
            request, next_url, status=403, email=email, error="The page expired. Please try again."
        )
    except LoginRefused as exc:
        return await login_page(request, next_url, status=400, email=email, error=str(exc))
    except RateLimited as exc:
        minutes = max(1, round(exc.retry_after / 60))
        return await login_page(
            request,
            next_url,
            status=429,
            email=email,
            error=f"Too many failed attempts. Try again in {minutes} minute(s).",
            headers={"retry-after": str(exc.retry_after)},
        )
    await start_login_session(request, user)
    if leads_onward(next_url):
        return await continue_page(request, next_url, title="Signed in")
    return redirect(request, next_url)


def leads_onward(next_url: str) -> bool:
    """Whether ``next_url`` (a path of ours) is a page that may redirect to another site,
    however its path is spelled (``/panel/../oauth/authorize``, ``/oauth/%61uthorize``,
    a trailing slash): the router decodes it, and the browser resolves dot segments."""
    path = posixpath.normpath(unquote(next_url.split("?", 1)[0]))
    return path in ONWARD_PATHS


async def do_logout(request: Request) -> Response:
    try:
        await check_csrf(request, await read_page_form(request))
    except TemporarilyUnavailable:
        raise  # the outage page, not "the page expired"
    except (CsrfError, OAuthError):
        return await login_page(request, "", status=403, error="The page expired.")
    await end_session(request)
    return redirect(request, "/login")


def login_routes() -> list[BaseRoute]:
    return [
        Route("/login", show_login, methods=["GET"]),
        Route("/login", do_login, methods=["POST"]),
        Route("/logout", do_logout, methods=["POST"]),
    ]
