"""What API keys and partner apps share: ownership, status, scopes, rotate and revoke.

Both are OAuth clients of the tenant's merchant; a partner app is one that may use the
``authorization_code`` grant. Reads go to the database; every change goes through
``ctx.clients`` (the :class:`~tokensmith.storage.cache.CachingClientStore`), so the token
endpoint of the worker that made it sees it at once, and every worker of every instance
within ``client_cache_ttl`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.admin import AdminError, rotate_client_secret
from tokensmith.core.models import AUTHORIZATION_CODE, Client
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, not_found, page_error, panel_render
from tokensmith.web.panel.reveal import Secret, show_once
from tokensmith.web.panel.services import panel_of
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

Kind = Literal["key", "app"]
MAX_NAME = 200

#: The rotation overlaps offered: seconds the previous secret keeps working.
OVERLAPS: tuple[tuple[int, str], ...] = (
    (0, "None \u2014 the old secret stops at once"),
    (3600, "1 hour"),
    (86400, "24 hours"),
    (7 * 86400, "7 days"),
)

_WORDS = {"key": ("key", "/panel/keys", "keys"), "app": ("app", "/panel/apps", "apps")}


def kind_of(client: Client) -> Kind:
    return "app" if AUTHORIZATION_CODE in client.grant_types else "key"


async def own_client(request: Request, tenant: Tenant, kind: Kind) -> Client | None:
    """The client named in the path if it is the tenant's and of this kind, else ``None``."""
    client_id = request.path_params["client_id"]
    if not id_ok(client_id):
        return None
    client = await ctx_of(request).store.get_client(client_id)
    if client is None or client.merchant_id != tenant.merchant_id or kind_of(client) != kind:
        return None
    return client


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
    """The tenant's clients of this kind, active first, newest first, with last use."""
    ctx = ctx_of(request)
    mine = [c for c in await ctx.store.list_clients(tenant.merchant_id) if kind_of(c) == kind]
    used = await last_used(request, [c.client_id for c in mine])
    now = ctx.clock.now()
    rows = [ClientRow(c, used.get(c.client_id), *_status(c, now)) for c in mine]
    rows.sort(key=lambda r: (not r.active, -r.client.created_at))
    return rows


async def row_of(request: Request, client: Client) -> ClientRow:
    used = await last_used(request, [client.client_id])
    return ClientRow(
        client, used.get(client.client_id), *_status(client, ctx_of(request).clock.now())
    )


async def last_used(request: Request, client_ids: list[str]) -> dict[str, float]:
    """From the stored hourly counts, and this instance's counts not yet written."""
    found = await ctx_of(request).store.last_used(client_ids)
    wanted = set(client_ids)
    for count in panel_of(request).recorder.pending():
        at = count.last_issued_at
        if at is not None and count.client_id in wanted and at > found.get(count.client_id, 0):
            found[count.client_id] = at
    return found


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
        secret = await rotate_client_secret(
            ctx.clients, ctx.clock, ctx.rand, client.client_id, overlap
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
    ctx = ctx_of(request)
    client = await own_client(request, tenant, kind)
    if client is None:
        return await not_found(request, tenant)
    await ctx.clients.revoke_client(client.client_id, ctx.clock.now())
    _, back, _ = _WORDS[kind]
    return redirect(request, f"{back}?done={kind}-revoked")
