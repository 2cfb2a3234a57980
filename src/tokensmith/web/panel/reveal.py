"""Showing a new secret exactly once (POST, redirect, GET).

The action that makes a secret stores a :class:`~tokensmith.core.panel_models.Reveal` and
redirects (303) to ``/panel/reveal/<id>``. The reveal is sealed with AES-256-GCM under a
key derived from the browser's session cookie, which the server never stores (only its
hash), so the database never holds the secret in a readable form; it is bound to the
session and expires after ten minutes. The first GET deletes it and shows the secret with
``Cache-Control: no-store``; a reload, the back button or another browser gets a page
saying it was already shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.credentials import hash_secret, new_secret
from tokensmith.core.panel_models import Reveal
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, panel_page, panel_render
from tokensmith.web.panel.services import panel_of
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
    ctx = ctx_of(request)
    session = await load_session(request)
    assert session is not None, "panel pages need a login"
    rid = new_secret(ctx.rand)
    nonce = ctx.rand.token_bytes(12)
    body = json.dumps(_fields(secret)).encode()
    sealed = nonce + AESGCM(_key(request)).encrypt(nonce, body, hash_secret(rid).encode())
    now = ctx.clock.now()
    reveal = Reveal(
        hash_secret(rid), session.session_hash, sealed, now, now + panel_of(request).reveal_ttl
    )
    await ctx.store.add_reveal(reveal)
    return redirect(request, f"/panel/reveal/{rid}")


def _fields(secret: Secret) -> dict[str, object]:
    return {name: getattr(secret, name) for name in Secret.__dataclass_fields__}


def _open(request: Request, reveal: Reveal, rid: str) -> Secret | None:
    try:
        body = AESGCM(_key(request)).decrypt(
            reveal.sealed[:12], reveal.sealed[12:], hash_secret(rid).encode()
        )
        return Secret(**json.loads(body))
    except (InvalidTag, ValueError, TypeError):
        return None


@panel_page()
async def reveal_page(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``GET /panel/reveal/{rid}``: the secret, once."""
    ctx = ctx_of(request)
    rid = request.path_params["rid"]
    session = await load_session(request)
    reveal = None
    if session is not None and id_ok(rid):
        reveal = await ctx.store.take_reveal(
            hash_secret(rid), session.session_hash, ctx.clock.now()
        )
    secret = _open(request, reveal, rid) if reveal is not None else None
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
