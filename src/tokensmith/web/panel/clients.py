"""What API keys and partner apps share: ownership, status, scopes, rotate and revoke.

Both are OAuth clients of the tenant's merchant; a partner app is one that may use the
``authorization_code`` grant. Every read and change goes through ``ctx.client_admin``
(:class:`~tokensmith.core.client_admin.ClientAdmin`), which tells the token endpoint's
client cache of each change: the worker that made it sees it at once, and every worker of
every instance within ``client_cache_ttl`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.admin import AdminError
from tokensmith.core.client_admin import Kind
from tokensmith.core.models import Client
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, not_found, page_error, panel_render
from tokensmith.web.panel.reveal import Secret, show_once
from tokensmith.web.ui import redirect

__all__ = [
    "OVERLAPS",
    "ClientRow",
    "Kind",
    "chosen_scopes",
    "client_rows",
    "confirm_revoke",
    "do_revoke",
    "do_rotate",
    "own_client",
    "row_of",
    "token_example",
]

MAX_NAME = 200

#: The rotation overlaps offered: seconds the previous secret keeps working.
OVERLAPS: tuple[tuple[int, str], ...] = (
    (0, "None \u2014 the old secret stops at once"),
    (3600, "1 hour"),
    (86400, "24 hours"),
    (7 * 86400, "7 days"),
)

_WORDS = {"key": ("key", "/panel/keys", "keys"), "app": ("app", "/panel/apps", "apps")}


async def own_client(request: Request, tenant: Tenant, kind: Kind) -> Client | None:
    """The client named in the path if it is the tenant's (any, for an operator) and of
    this kind, else ``None``."""
    client_id = request.path_params["client_id"]
    if not id_ok(client_id):
        return None
    return await ctx_of(request).client_admin.owned(tenant.client_scope, client_id, kind)


@dataclass(frozen=True, slots=True)
class ClientRow:
    client: Client
    last_used: float | None
    status: str
    #: When the previous secret stops working, during a rotation overlap.
    overlap_until: float | None

    @property
    def active(self) -> bool:
        return self.client.active


def _status(client: Client, now: float) -> tuple[str, float | None]:
    if not client.active:
        return "Revoked", None
    ends = [s.expires_at for s in client.secrets if s.expires_at is not None and s.expires_at > now]
    return ("Rotating", max(ends)) if ends else ("Active", None)


async def client_rows(request: Request, tenant: Tenant, kind: Kind) -> list[ClientRow]:
    """The tenant's clients of this kind (every one, for an operator), active first,
    newest first, with last use."""
    ctx = ctx_of(request)
    now = ctx.clock.now()
    rows = [
        ClientRow(u.client, u.last_used, *_status(u.client, now))
        for u in await ctx.client_admin.in_use(tenant.client_scope, kind)
    ]
    rows.sort(key=lambda r: (not r.active, -r.client.created_at))
    return rows


async def row_of(request: Request, client: Client) -> ClientRow:
    ctx = ctx_of(request)
    used = await ctx.activity.last_used([client.client_id])
    return ClientRow(client, used.get(client.client_id), *_status(client, ctx.clock.now()))


def token_example(request: Request) -> str:
    """How to get a token with a key, the credentials left as shell variables."""
    issuer = ctx_of(request).settings.issuer_url
    return (
        f'curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials {issuer}/oauth/token'
    )


def chosen_scopes(form: dict[str, str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes ticked on a form (fields ``scope_<name>``), in the allowed order."""
    return tuple(s for s in allowed if form.get(f"scope_{s}") == "on")


async def do_rotate(request: Request, tenant: Tenant, form: dict[str, str], kind: Kind) -> Response:
    """``POST .../rotate``: a new secret, shown once; the old one lives on for the overlap."""
    ctx = ctx_of(request)
    client = await own_client(request, tenant, kind)
    if client is None:
        return await not_found(request, tenant)
    word, back, section = _WORDS[kind]
    overlap = {str(s): s for s, _ in OVERLAPS}.get(form.get("overlap", ""))
    if overlap is None or not client.active:
        why = "Choose one of the offered overlaps." if client.active else f"This {word} is revoked."
        return await page_error(request, tenant, 400, "Cannot rotate", why)
    try:
        secret = await ctx.client_admin.rotate_secret(
            client.client_id, overlap, by=by_user(request, tenant.user)
        )
    except AdminError as exc:
        return await page_error(request, tenant, 400, "Cannot rotate", str(exc))
    note = (
        "The previous secret stopped working."
        if overlap == 0
        else "The previous secret keeps working until the time shown on the "
        f"{word}'s page, so you can deploy the new one."
    )
    return await show_once(
        request,
        Secret(
            title=f"New secret for \u201c{client.name}\u201d",
            id_label="Client ID",
            ident=client.client_id,
            secret_label="Client secret",
            secret=secret,
            back=f"{back}/{client.client_id}",
            back_label=f"Back to the {word}",
            section=section,
            note=note,
            example=token_example(request) if kind == "key" else "",
        ),
    )


async def confirm_revoke(request: Request, tenant: Tenant, kind: Kind) -> Response:
    """``GET .../revoke``: what revoking means, and the button that does it."""
    client = await own_client(request, tenant, kind)
    if client is None or not client.active:
        return await not_found(request, tenant)
    word, back, section = _WORDS[kind]
    consequence = (
        "Token requests with this key are refused within seconds, and tokens already issued to it "
        "stop being valid at introspection. This cannot be undone."
        if kind == "key"
        else "The app can no longer sign anyone in or refresh tokens, and every merchant's "
        "authorization of it ends. This cannot be undone."
    )
    return await panel_render(
        request,
        tenant,
        "panel/confirm.html",
        section=section,
        title=f"Revoke \u201c{client.name}\u201d?",
        consequence=consequence,
        action=f"{back}/{client.client_id}/revoke",
        button=f"Revoke {word}" if kind == "key" else "Delete app",
        cancel=f"{back}/{client.client_id}",
        subject=client.client_id,
    )


async def do_revoke(request: Request, tenant: Tenant, kind: Kind) -> Response:
    """``POST .../revoke``."""
    client = await own_client(request, tenant, kind)
    if client is None:
        return await not_found(request, tenant)
    await ctx_of(request).client_admin.revoke(client.client_id, by=by_user(request, tenant.user))
    _, back, _ = _WORDS[kind]
    return redirect(request, f"{back}?done={kind}-revoked")
