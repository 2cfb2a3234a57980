"""What every command shares: settings, a store, JSON or text output."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import click

from tokensmith.core.admin import AdminError
from tokensmith.core.clock import SystemClock
from tokensmith.core.models import ApiKey, Client
from tokensmith.core.randomness import SystemRandomness
from tokensmith.settings import Settings, load_settings
from tokensmith.storage.sql import SqlStore, make_engine, migrate

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class Env:
    settings: Settings
    store: SqlStore
    clock: SystemClock
    rand: SystemRandomness


def db_options(fn: Callable[P, T]) -> Callable[P, T]:
    """``--database-url`` and ``--config`` on a command."""
    fn = click.option("--config", "config", default=None, help="TOML settings file.")(fn)
    fn = click.option(
        "--database-url", "database_url", default=None, help="Overrides TOKENSMITH_DATABASE_URL."
    )(fn)
    return fn


def json_option(fn: Callable[P, T]) -> Callable[P, T]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@contextlib.asynccontextmanager
async def open_env(database_url: str | None, config: str | None) -> AsyncIterator[Env]:
    settings = load_settings(config, database_url=database_url)
    engine = make_engine(settings.database_url, pool_size=2)
    await migrate(engine)
    store = SqlStore(engine)
    try:
        yield Env(settings, store, SystemClock(), SystemRandomness())
    finally:
        await store.close()


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; operator mistakes exit 2 with the reason."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except AdminError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def with_env(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Turn ``async def cmd(env, **kw)`` into a click callback taking db options."""

    @functools.wraps(fn)
    def wrapper(database_url: str | None, config: str | None, **kw: Any) -> None:
        async def go() -> None:
            async with open_env(database_url, config) as env:
                await fn(env, **kw)

        run(go())

    return wrapper


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def client_json(c: Client, now: float) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "merchant_id": c.merchant_id,
        "scopes": list(c.scopes),
        "default_scopes": None if c.default_scopes is None else list(c.default_scopes),
        "grant_types": list(c.grant_types),
        "token_format": c.token_format,
        "access_token_ttl": c.access_token_ttl,
        "redirect_uris": list(c.redirect_uris),
        "form_uri": c.form_uri,
        "token_endpoint_auth_methods": list(c.auth_methods),
        "status": "active" if c.active else "revoked",
        "created_at": iso(c.created_at),
        "revoked_at": iso(c.revoked_at),
        "secrets": [
            {"created_at": iso(s.created_at), "expires_at": iso(s.expires_at)}
            for s in c.secrets
            if s.valid_at(now)
        ],
    }


def apikey_json(k: ApiKey) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "merchant_id": k.merchant_id,
        "status": "active" if k.revoked_at is None else "revoked",
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
    }


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)) for r in lines
    )
