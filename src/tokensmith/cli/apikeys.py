"""``tokensmith apikeys``: developer app keys for the ``tbc`` dialect's ``apikey`` header."""

from __future__ import annotations

import click

from tokensmith.cli._common import Env, apikey_json, db_options, emit, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.audit import CLI


@click.group("apikeys")
def apikeys() -> None:
    """Create, list, rotate and revoke developer app keys."""


@apikeys.command("create")
@click.option("--name", required=True)
@click.option("--merchant", default=None, help="Merchant id or name.")
@json_option
@db_options
@with_env
async def create(env: Env, name: str, merchant: str | None, as_json: bool) -> None:
    """Create a key and print it once."""
    key, plain = await env.admin.api_keys.create(name, await env.merchant_id(merchant), by=CLI)
    emit(
        apikey_json(key) | {"apikey": plain},
        as_json,
        f"key_id: {key.key_id}\napikey: {plain}\n\nThe key is shown only now.",
    )


@apikeys.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List keys (never their values)."""
    keys = await env.admin.api_keys.listing()
    rows = [[k.key_id, k.name, apikey_json(k)["status"] or ""] for k in keys]
    emit([apikey_json(k) for k in keys], as_json, table(rows, ["KEY_ID", "NAME", "STATUS"]))


@apikeys.command("revoke")
@click.argument("key_id")
@json_option
@db_options
@with_env
async def revoke(env: Env, key_id: str, as_json: bool) -> None:
    """Revoke a key: requests carrying it are refused."""
    if not await env.admin.api_keys.revoke(key_id, by=CLI):
        raise AdminError(f"no live key {key_id!r}")
    emit({"key_id": key_id, "status": "revoked"}, as_json, f"revoked {key_id}")


@apikeys.command("rotate")
@click.argument("key_id")
@json_option
@db_options
@with_env
async def rotate(env: Env, key_id: str, as_json: bool) -> None:
    """Give a key a new value, printed once; the old value is refused at once."""
    plain = await env.admin.api_keys.rotate(key_id, by=CLI)
    key = next(k for k in await env.admin.api_keys.listing() if k.key_id == key_id)
    emit(
        apikey_json(key) | {"apikey": plain},
        as_json,
        f"key_id: {key.key_id}\napikey: {plain}\n\nThe key is shown only now.",
    )
