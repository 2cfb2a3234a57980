"""``tokensmith keys``: the JWT signing keys."""

from __future__ import annotations

import contextlib
import json

import click

from tokensmith.cli._common import Env, db_options, emit, iso, json_option, table, with_env
from tokensmith.core.audit import CLI
from tokensmith.core.keyring import KeyRing, signing_key
from tokensmith.core.keys import SUPPORTED_ALGS, KeySealer
from tokensmith.core.models import SigningKeyRecord
from tokensmith.web.compose import resolve_secret_keys


@click.group("keys")
def keys() -> None:
    """List and rotate signing keys."""


def _status(record: SigningKeyRecord, signing: str | None, now: float) -> str:
    """``signing``; ``next``: published, signs when the signing key retires; ``published``:
    signs no more, verifies the tokens it signed; ``expired``."""
    if record.kid == signing:
        return "signing"
    if record.retired_at is None or record.retired_at > now:
        return "next"
    if record.publish_until is None or record.publish_until > now:
        return "published"
    return "expired"


@keys.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List keys: the one that signs, the next, the ones still published, the expired."""
    now = env.clock.now()
    records = await env.store.list_signing_keys()
    current = signing_key(records, now)
    data = [
        {
            "kid": r.kid,
            "alg": r.alg,
            "status": _status(r, current.kid if current else None, now),
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
@click.option(
    "--activate-after",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Publish the new key now, sign with it this many seconds later (300 or more lets "
    "every verifier's cached key set know it first).",
)
@json_option
@db_options
@with_env
async def rotate(env: Env, alg: str | None, activate_after: float, as_json: bool) -> None:
    """A new key signs from now, or from --activate-after seconds; the old stay published
    while their tokens can live."""
    sealer = KeySealer(resolve_secret_keys(env.settings))
    ring = KeyRing(env.store, sealer, env.clock, env.rand, "", audit=env.admin.audit)
    with contextlib.suppress(LookupError):  # no key yet: nothing to open
        await ring.reload()  # the keys in use open with this secret, or nothing is added
    algorithm = alg or env.settings.signing_alg
    ttl = env.settings.max_access_token_ttl
    record = await ring.rotate(algorithm, ttl, activate_after=activate_after, by=CLI)
    signs_from = iso(record.created_at + activate_after)
    emit(
        {"kid": record.kid, "alg": record.alg, "signs_from": signs_from},
        as_json,
        f"new signing key {record.kid} ({record.alg}), signs from {signs_from}",
    )
