"""Showing a new secret exactly once (POST, redirect, GET).

The action that makes a secret hands it to ``ctx.reveals``
(:class:`~tokensmith.core.reveals.Reveals`) and redirects (303) to
``/panel/reveal/<id>``. The reveal is sealed with AES-256-GCM under a key derived here
from the browser's session cookie, which the server never stores (only its hash), so the
database never holds the secret in a readable form; it is bound to the session and
expires after ten minutes. The first GET takes it and shows the secret with
``Cache-Control: no-store``; a reload, the back button or another browser gets a page
saying it was already shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, panel_page, panel_render
from tokensmith.web.ui import redirect, ui_of
from tokensmith.web.ui.sessions import load_session

__all__ = ["Secret", "reveal_page", "show_once"]

_LABEL = b"tokensmith-panel-reveal"


@dataclass(frozen=True, slots=True)
class Secret:
    """What the reveal page shows: an identifier and its new secret."""

    title: str
    id_label: str
    ident: str
    secret_label: str
    secret: str = field(repr=False)
    back: str
    back_label: str
    section: str
    #: A sentence about the old secret after a rotation, if any.
    note: str = ""
    #: A command using the new credentials, with placeholders for them (never the secret).
    example: str = ""


def _cookie(request: Request) -> str:
    new = getattr(request.state, "ts_set_cookie", None)
    if isinstance(new, str) and new:
        return new
    return request.cookies.get(ui_of(request).sessions.cookie_name, "")


def _key(request: Request) -> bytes:
    return hmac.new(_cookie(request).encode("ascii"), _LABEL, hashlib.sha256).digest()


async def show_once(request: Request, secret: Secret) -> Response:
    """Store ``secret`` for one showing and redirect the browser to it."""
    session = await load_session(request)
    assert session is not None, "panel pages need a login"
    body = json.dumps(_fields(secret)).encode()
    rid = await ctx_of(request).reveals.add(_key(request), session.session_hash, body)
    return redirect(request, f"/panel/reveal/{rid}")


def _fields(secret: Secret) -> dict[str, object]:
    return {name: getattr(secret, name) for name in Secret.__dataclass_fields__}


def _open(body: bytes) -> Secret | None:
    try:
        return Secret(**json.loads(body))
    except (ValueError, TypeError):
        return None


@panel_page(platform=True)
async def reveal_page(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``GET /panel/reveal/{rid}``: the secret, once."""
    rid = request.path_params["rid"]
    session = await load_session(request)
    body = None
    if session is not None and id_ok(rid):
        body = await ctx_of(request).reveals.take(_key(request), rid, session.session_hash)
    secret = _open(body) if body is not None else None
    if secret is None:
        return await panel_render(
            request,
            tenant,
            "panel/reveal_gone.html",
            410,
            section="",
            title="Already shown",
        )
    return await panel_render(
        request, tenant, "panel/reveal.html", section=secret.section, title=secret.title, s=secret
    )
