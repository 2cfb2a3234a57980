"""``tokensmith keys``: the JWT signing keys."""

from __future__ import annotations

import json

import click

from tokensmith.cli._common import Env, db_options, emit, iso, json_option, table, with_env
from tokensmith.core.keyring import KeyRing
from tokensmith.core.keys import SUPPORTED_ALGS, KeySealer
from tokensmith.web.app import resolve_secret_keys


@click.group("keys")
def keys() -> None:
    """List and rotate signing keys."""


def _status(retired: float | None, publish_until: float | None, now: float) -> str:
    if retired is None or retired > now:
        return "signing"
    if publish_until is None or publish_until > now:
        return "published"
    return "expired"


@keys.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List keys: the one that signs, the ones still published, the expired."""
    now = env.clock.now()
    records = await env.store.list_signing_keys()
    data = [
        {
            "kid": r.kid,
            "alg": r.alg,
            "status": _status(r.retired_at, r.publish_until, now),
            "created_at": iso(r.created_at),
            "retired_at": iso(r.retired_at),
            "publish_until": iso(r.publish_until),
            "public_jwk": json.loads(r.public_jwk),
        }
        for r in records
    ]
    rows = [[str(d["kid"]), str(d["alg"]), str(d["status"]), str(d["created_at"])] for d in data]
    emit(data, as_json, table(rows, ["KID", "ALG", "STATUS", "CREATED"]))


@keys.command("rotate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), default=None)
@json_option
@db_options
@with_env
async def rotate(env: Env, alg: str | None, as_json: bool) -> None:
    """A new key signs from now; the old stay published while their tokens can live."""
    ring = KeyRing(env.store, KeySealer(resolve_secret_keys(env.settings)), env.clock, env.rand, "")
    record = await ring.rotate(alg or env.settings.signing_alg, env.settings.max_access_token_ttl)
    emit(
        {"kid": record.kid, "alg": record.alg},
        as_json,
        f"new signing key {record.kid} ({record.alg})",
    )
