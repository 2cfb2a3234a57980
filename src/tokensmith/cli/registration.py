"""``tokensmith registration token``: initial access tokens for dynamic client
registration (RFC 7591 §3), used when ``TOKENSMITH_REGISTRATION=initial_access_token``."""

from __future__ import annotations

from typing import Any

import click

from tokensmith.cli._common import Env, db_options, emit, iso, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.models import InitialAccessToken


def token_json(t: InitialAccessToken, now: float) -> dict[str, Any]:
    if t.revoked_at is not None:
        status = "revoked"
    elif not t.usable_at(now):
        status = "expired"
    else:
        status = "active"
    return {
        "token_id": t.token_id,
        "merchant_id": t.merchant_id,
        "status": status,
        "created_at": iso(t.created_at),
        "expires_at": iso(t.expires_at),
        "revoked_at": iso(t.revoked_at),
    }


@click.group("registration")
def registration() -> None:
    """Create, list and revoke initial access tokens for dynamic client registration."""


@registration.group("token")
def token() -> None:
    """Create, list and revoke initial access tokens."""


@token.command("create")
@click.option(
    "--expires-in", type=int, default=None, help="Seconds the token is usable (default: no end)."
)
@click.option(
    "--merchant", default=None, help="Merchant id or name the registered clients belong to."
)
@json_option
@db_options
@with_env
async def create(env: Env, expires_in: int | None, merchant: str | None, as_json: bool) -> None:
    """Create a token and print it once (only its hash is stored)."""
    made, plain = await env.admin.registration_tokens.create(
        expires_in, await env.merchant_id(merchant)
    )
    emit(
        token_json(made, env.clock.now()) | {"initial_access_token": plain},
        as_json,
        f"token_id: {made.token_id}\ninitial_access_token: {plain}\n\n"
        "The token is shown only now. Send it as 'Authorization: Bearer <token>' to "
        "POST /oauth/register.",
    )


@token.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List tokens (never their values)."""
    now = env.clock.now()
    made = [token_json(t, now) for t in await env.admin.registration_tokens.listing()]
    rows = [
        [t["token_id"], t["merchant_id"] or "", t["status"], t["expires_at"] or ""] for t in made
    ]
    emit(made, as_json, table(rows, ["TOKEN_ID", "MERCHANT", "STATUS", "EXPIRES_AT"]))


@token.command("revoke")
@click.argument("token_id")
@json_option
@db_options
@with_env
async def revoke(env: Env, token_id: str, as_json: bool) -> None:
    """Revoke a token: registrations with it are refused. Clients registered with it stay."""
    if not await env.admin.registration_tokens.revoke(token_id):
        raise AdminError(f"no live token {token_id!r}")
    emit({"token_id": token_id, "status": "revoked"}, as_json, f"revoked {token_id}")
