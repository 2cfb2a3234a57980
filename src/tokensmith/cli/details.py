"""``tokensmith authorization-details``: the RFC 9396 types a server accepts."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tokensmith.cli._common import Env, db_options, emit, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.authorization_details import TypeRegistry


@click.group("authorization-details")
def authorization_details() -> None:
    """List, register and remove RFC 9396 authorization_details types."""


@authorization_details.group("types")
def types() -> None:
    """List, register and remove authorization_details types (each with a JSON Schema).
    A running server reads them when it starts."""


def _registry(env: Env) -> TypeRegistry:
    return TypeRegistry(env.store, env.clock)


@types.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """The types a server started now accepts: built in, from the configured file
    (TOKENSMITH_AUTHORIZATION_DETAILS_TYPES), registered here."""
    try:
        found = await _registry(env).listing(env.settings.authorization_details_types)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    data = [{"type": t.name, "source": t.source, "schema": t.schema} for t in found]
    emit(data, as_json, table([[t.name, t.source] for t in found], ["TYPE", "SOURCE"]))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@types.command("add")
@click.argument("type_name", metavar="TYPE")
@click.option(
    "--schema",
    "schema_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the type's JSON Schema (draft 2020-12).",
)
@json_option
@db_options
@with_env
async def add(env: Env, type_name: str, schema_file: Path, as_json: bool) -> None:
    """Register TYPE with its JSON Schema, or replace its schema."""
    try:
        schema = await _registry(env).add(type_name, _read(schema_file))
    except (OSError, ValueError) as exc:
        raise AdminError(str(exc)) from None
    emit(
        {"type": type_name, "source": "registered", "schema": schema},
        as_json,
        f"registered {type_name}; restart the servers to accept it\n"
        + json.dumps(schema, indent=2),
    )


@types.command("remove")
@click.argument("type_name", metavar="TYPE")
@json_option
@db_options
@with_env
async def remove(env: Env, type_name: str, as_json: bool) -> None:
    """Remove a registered TYPE (tokens already issued keep their details)."""
    if not await _registry(env).remove(type_name):
        raise AdminError(f"no registered type {type_name!r}")
    emit({"type": type_name, "status": "removed"}, as_json, f"removed {type_name}")
