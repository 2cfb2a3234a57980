"""Rendering HTML pages: Jinja2 templates, the base layout, and security headers.

Every page extends ``base.html``, which has blocks ``title``, ``nav`` (the slot for a
panel's navigation; empty by default), ``content`` and ``footer``. :func:`render` gives
each template ``csrf_token``, ``user``, ``nav`` (a list of :class:`NavItem`) and
``static`` (the CSS URL), and sets the headers every page needs:

* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` (no framing, RFC 6749
  §10.13 clickjacking), a CSP allowing only our own stylesheet and form targets;
* ``Cache-Control: no-store``, ``nosniff``, ``Referrer-Policy: same-origin`` (no
  ``Referer`` to other sites, yet browsers still send our ``Origin`` on POST, which
  :func:`~tokensmith.web.ui.sessions.check_csrf` checks; ``no-referrer`` would make it
  ``null``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tokensmith.web.ui.sessions import apply_cookie, csrf_token, current_user

__all__ = [
    "NavItem",
    "error_page",
    "make_environment",
    "redirect",
    "render",
    "security_headers",
]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
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


def security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """Headers for every HTML page. ``form_targets`` are extra origins a form may end up
    at: Chromium applies ``form-action`` to the redirect after a POST, so the consent
    page lists the client's redirect origin."""
    targets = " ".join(["'self'", *form_targets])
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
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
    form_targets: Iterable[str] = (),
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
    response = HTMLResponse(body, status, headers=security_headers(form_targets) | (headers or {}))
    apply_cookie(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """A 303 See Other (RFC 9110 §15.4.4; RFC 9700 §4.12 after a POST), with the session
    cookie if it changed."""
    response = RedirectResponse(url, 303, headers={"cache-control": "no-store"})
    apply_cookie(request, response)
    return response


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
