"""``tokensmith resources``: the APIs access tokens may be restricted to (RFC 8707)."""

from __future__ import annotations

from typing import Any

import click

from tokensmith.cli._common import Env, db_options, emit, iso, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.models import Resource, TokenFormat


def resource_json(r: Resource) -> dict[str, Any]:
    return {
        "identifier": r.identifier,
        "name": r.name,
        "scopes": list(r.scopes),
        "access_token_ttl": r.access_token_ttl,
        "token_format": r.token_format,
        "created_at": iso(r.created_at),
    }


@click.group("resources")
def resources() -> None:
    """Register, list and remove the APIs tokens may be restricted to (RFC 8707)."""


@resources.command("add")
@click.argument("identifier")
@click.option("--name", required=True, help="Shown on the consent page.")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="A scope of this API (repeatable)."
)
@click.option("--ttl", type=int, default=None, help="Access-token lifetime, in seconds.")
@click.option(
    "--token-format", type=click.Choice(["jwt", "opaque"]), default=None, help="Token format."
)
@json_option
@db_options
@with_env
async def add(
    env: Env,
    identifier: str,
    name: str,
    scopes: tuple[str, ...],
    ttl: int | None,
    token_format: str | None,
    as_json: bool,
) -> None:
    """Register the API IDENTIFIER (an absolute URI without a fragment)."""
    fmt: TokenFormat | None = (
        "jwt" if token_format == "jwt" else "opaque" if token_format == "opaque" else None
    )
    r = await env.admin.resources.add(identifier, name, scopes, ttl, fmt)
    emit(resource_json(r), as_json, f"registered {r.identifier} ({r.name})")


@resources.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List the registered APIs."""
    found = await env.admin.resources.listing()
    rows = [
        [
            r.identifier,
            r.name,
            " ".join(r.scopes),
            str(r.access_token_ttl or ""),
            r.token_format or "",
        ]
        for r in found
    ]
    headers = ["IDENTIFIER", "NAME", "SCOPES", "TTL", "FORMAT"]
    emit([resource_json(r) for r in found], as_json, table(rows, headers))


@resources.command("remove")
@click.argument("identifier")
@json_option
@db_options
@with_env
async def remove(env: Env, identifier: str, as_json: bool) -> None:
    """Remove an API: requests naming it are refused; issued tokens stay valid until they
    expire."""
    if not await env.admin.resources.remove(identifier):
        raise AdminError(f"no resource {identifier!r}")
    emit({"identifier": identifier, "status": "removed"}, as_json, f"removed {identifier}")
