"""Rendering HTML pages: Jinja2 templates, the base layout, and security headers.

Every page extends ``base.html``, which has blocks ``title``, ``nav`` (the slot for a
panel's navigation; empty by default), ``content`` and ``footer``. :func:`render` gives
each template ``csrf_token``, ``user``, ``nav`` (a list of :class:`NavItem`) and
``static`` (the CSS URL), and sets the headers every page needs:

* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` (no framing, RFC 6749
  §10.13 clickjacking), a CSP allowing only our own stylesheet, and ``form-action 'self'``
  on every page, without exception;
* ``Cache-Control: no-store``, ``nosniff``, ``Referrer-Policy: same-origin`` (no
  ``Referer`` to other sites, yet browsers still send our ``Origin`` on POST, which
  :func:`~tokensmith.web.ui.sessions.check_csrf` checks; ``no-referrer`` would make it
  ``null``).

Chromium applies ``form-action`` to every redirect that follows a form's POST, the
redirects of other sites included. So a form whose answer sends the browser on to
another site (the app's redirect URI, RFC 6749 §4.1.2) ends on :func:`continue_page`, a
page of ours that goes on with a plain navigation (RFC 6749 §3.1.2 lets the
authorization server redirect "by other means available to it via the user-agent").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tokensmith.core.uris import SCRIPT_SCHEMES, split_uri
from tokensmith.web.ui.sessions import apply_cookie, csrf_token, current_user

__all__ = [
    "NavItem",
    "continue_page",
    "error_page",
    "make_environment",
    "redirect",
    "render",
    "security_headers",
    "unavailable_page",
]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: What Starlette's ``RedirectResponse`` leaves unescaped in a ``Location``.
LOCATION_SAFE = ":/%#?=@[]!$&'()*+,;"
STATIC_URL = "/static/tokensmith.css"


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the base layout's navigation slot."""

    label: str
    href: str
    current: bool = False


def make_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def security_headers() -> dict[str, str]:
    """Headers for every HTML page."""
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "content-security-policy": csp,
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cache-control": "no-store",
        "cross-origin-opener-policy": "same-origin",
    }


async def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    nav: Iterable[NavItem] = (),
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """Render ``template`` with the standard context and headers."""
    from tokensmith.web.ui import ui_of

    env = ui_of(request).templates
    body = env.get_template(template).render(
        csrf_token=await csrf_token(request),
        user=await current_user(request),
        nav=list(nav),
        static=STATIC_URL,
        **context,
    )
    response = HTMLResponse(body, status, headers=security_headers() | (headers or {}))
    apply_cookie(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """A 303 See Other (RFC 9110 §15.4.4; RFC 9700 §4.12 after a POST), with the session
    cookie if it changed."""
    response = RedirectResponse(url, 303, headers={"cache-control": "no-store"})
    apply_cookie(request, response)
    return response


def unavailable_page(templates: Environment, retry_after: int) -> Response:
    """The 503 page of a database outage (RFC 6749 §4.1.2.1 ``temporarily_unavailable``),
    with ``Retry-After`` (RFC 9110 §10.2.3). Unlike :func:`render` it reads no session:
    there is no database to read it from, so the page has no user and sets no cookie."""
    body = templates.get_template("error.html").render(
        csrf_token="",
        user=None,
        nav=[],
        static=STATIC_URL,
        title="Service temporarily unavailable",
        message="tokensmith cannot reach its database right now. "
        f"Try again in {retry_after} seconds.",
    )
    headers = security_headers() | {"retry-after": str(retry_after)}
    return HTMLResponse(body, 503, headers=headers)


async def continue_page(request: Request, url: str, *, title: str = "Continuing") -> Response:
    """The answer to a form whose next stop may be another site: a page of ours that sends
    the browser to ``url`` (an absolute URI or a path of ours) with a refresh, a navigation
    that no ``form-action`` restricts, and a link for a browser that does not refresh.

    ``url`` is percent-encoded as a redirect's ``Location`` is. A URI whose scheme runs
    script is never a destination (RFC 9700 §4.1): an error page.
    """
    url = quote(url, safe=LOCATION_SAFE)
    parts = split_uri(url)
    if parts is None or parts.scheme.lower() in SCRIPT_SCHEMES:
        return await render(
            request,
            "error.html",
            400,
            title="This link can\u2019t be used",
            message="The app\u2019s redirect address is not one a browser can be sent to.",
        )
    host = parts.netloc.rpartition("@")[2]
    return await render(request, "continue.html", title=title, url=url, host=host)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """An error page that needs no session (for requests no page handles): the base layout
    without the signed-in header, with the same security headers."""
    from tokensmith.web.ui import ui_of

    body = (
        ui_of(request)
        .templates.get_template("error.html")
        .render(csrf_token="", user=None, nav=[], static=STATIC_URL, title=title, message=message)
    )
    return HTMLResponse(body, status, headers=security_headers())
