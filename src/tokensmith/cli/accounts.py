"""``tokensmith merchants`` and ``tokensmith users``: the companies and the people who log in."""

from __future__ import annotations

import sys
from typing import Any

import click

from tokensmith.cli._common import Env, db_options, emit, iso, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.audit import CLI
from tokensmith.core.models import ROLES, Merchant, User

__all__ = ["merchants", "users"]


def merchant_json(m: Merchant) -> dict[str, Any]:
    return {
        "merchant_id": m.merchant_id,
        "name": m.name,
        "status": "active" if m.disabled_at is None else "disabled",
        "created_at": iso(m.created_at),
        "disabled_at": iso(m.disabled_at),
    }


def user_json(u: User) -> dict[str, Any]:
    """Never the password hash."""
    return {
        "user_id": u.user_id,
        "email": u.email,
        "role": u.role,
        "merchant_id": u.merchant_id,
        "status": "active" if u.active else "disabled",
        "created_at": iso(u.created_at),
        "disabled_at": iso(u.disabled_at),
    }


@click.group("merchants")
def merchants() -> None:
    """Create, list and disable merchants."""


@merchants.command("create")
@click.option("--name", required=True)
@json_option
@db_options
@with_env
async def merchants_create(env: Env, name: str, as_json: bool) -> None:
    """Create a merchant."""
    m = await env.admin.merchants.create(name, by=CLI)
    emit(merchant_json(m), as_json, f"merchant_id: {m.merchant_id}")


@merchants.command("list")
@json_option
@db_options
@with_env
async def merchants_list(env: Env, as_json: bool) -> None:
    """List merchants."""
    items = [merchant_json(m) for m in await env.admin.merchants.listing()]
    rows = [[m["merchant_id"], m["name"], m["status"]] for m in items]
    emit(items, as_json, table(rows, ["MERCHANT_ID", "NAME", "STATUS"]))


@merchants.command("disable")
@click.argument("merchant")
@json_option
@db_options
@with_env
async def merchants_disable(env: Env, merchant: str, as_json: bool) -> None:
    """Disable a merchant (id or name): its users cannot log in, its refresh tokens stop."""
    m = await env.admin.merchants.disable(merchant, by=CLI)
    emit(merchant_json(m), as_json, f"disabled {m.merchant_id}")


@click.group("users")
def users() -> None:
    """Create, list and disable the people who log in."""


def _read_password() -> str:
    """One line from standard input (no echo, nothing in the shell history)."""
    line = sys.stdin.readline()
    if not line:
        raise AdminError("--password-stdin: nothing on standard input")
    return line.rstrip("\r\n")


@users.command("create")
@click.option("--merchant", default=None, help="Merchant id or name (not for operators).")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password.")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@json_option
@db_options
@with_env
async def users_create(
    env: Env, merchant: str | None, email: str, password_stdin: bool, role: str, as_json: bool
) -> None:
    """Create a user; the password is read from standard input and stored as argon2id."""
    if not password_stdin:
        raise AdminError("pass the password on standard input with --password-stdin")
    user = await env.admin.users.create(
        email=email,
        password=_read_password(),
        role=role,
        merchant=merchant,
        by=CLI,
    )
    emit(user_json(user), as_json, f"user_id: {user.user_id}")


@users.command("list")
@click.option("--merchant", default=None, help="Merchant id or name.")
@json_option
@db_options
@with_env
async def users_list(env: Env, merchant: str | None, as_json: bool) -> None:
    """List users."""
    merchant_id = await env.merchant_id(merchant)
    items = [user_json(u) for u in await env.admin.users.listing(merchant_id)]
    rows = [[u["email"], u["role"], u["merchant_id"] or "-", u["status"]] for u in items]
    emit(items, as_json, table(rows, ["EMAIL", "ROLE", "MERCHANT", "STATUS"]))


@users.command("disable")
@click.argument("email")
@json_option
@db_options
@with_env
async def users_disable(env: Env, email: str, as_json: bool) -> None:
    """Disable a user and end their sessions."""
    user = await env.admin.users.disable(email, by=CLI)
    emit(user_json(user), as_json, f"disabled {user.email}")
