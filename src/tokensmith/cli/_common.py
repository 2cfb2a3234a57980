"""What every command shares: settings, a store and the core's services on it, JSON or
text output."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import click

from tokensmith.cli._errors import OperatorError
from tokensmith.config_error import ConfigError
from tokensmith.core.addresses import is_loopback_url
from tokensmith.core.admin import AdminError
from tokensmith.core.audit import Audit
from tokensmith.core.client_admin import ApiKeys, ClientAdmin
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.directory import Merchants, Users
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.keys import KeyEncryptionError
from tokensmith.core.models import ApiKey, Client
from tokensmith.core.mtls import subject_metadata
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import Store
from tokensmith.core.randomness import Randomness, SystemRandomness
from tokensmith.core.registration import InitialTokens
from tokensmith.core.resources import ResourceAdmin
from tokensmith.settings import Settings, load_settings
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.storage.sql.engine import is_sqlite

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Admin:
    """The core's services the commands act through: the same the merchant panel uses."""

    merchants: Merchants
    users: Users
    clients: ClientAdmin
    api_keys: ApiKeys
    #: RFC 7591 §3 initial access tokens (``tokensmith registration token``).
    registration_tokens: InitialTokens
    #: registered APIs (RFC 8707)
    resources: ResourceAdmin
    #: Records the commands' changes (actor ``cli``) and reads the events back.
    audit: Audit


def _secret_sealing(settings: Settings) -> Callable[[str], str]:
    """Seals a ``client_secret_jwt`` client's secret; the secret key is read only then."""

    def seal(secret: str) -> str:
        from tokensmith.core.keys import CLIENT_SECRETS, KeySealer
        from tokensmith.web.compose import resolve_secret_keys

        sealer = KeySealer(resolve_secret_keys(settings), CLIENT_SECRETS)
        return sealer.seal(secret.encode("utf-8")).decode("ascii")

    return seal


def admin_services(store: Store, clock: Clock, rand: Randomness, settings: Settings) -> Admin:
    """The services on ``store``; no cache to invalidate (the servers' caches see a
    change within ``client_cache_ttl``)."""
    audit = Audit(
        store, clock, rand, reader=store, outbox=store, deliver=bool(settings.audit_webhook_url)
    )
    return Admin(
        merchants=Merchants(store, clock, rand, audit),
        users=Users(store, store, store, Passwords(), clock, rand, audit),
        clients=ClientAdmin(
            store,
            clock,
            rand,
            max_ttl=settings.max_access_token_ttl,
            audit=audit,
            loopback_jwks=is_loopback_url(settings.issuer_url),
            seal=_secret_sealing(settings),
        ),
        api_keys=ApiKeys(store, clock, rand, audit=audit),
        registration_tokens=InitialTokens(store, clock, rand),
        resources=ResourceAdmin(store, clock, settings.max_access_token_ttl),
        audit=audit,
    )


@dataclass(slots=True)
class Env:
    settings: Settings
    #: for the signing keys and the purge; everything else goes through ``admin``
    store: SqlStore
    clock: SystemClock
    rand: SystemRandomness
    admin: Admin

    async def merchant_id(self, ref: str | None) -> str | None:
        """The id of the merchant ``ref`` names (an id or a name); ``None`` for no ``ref``."""
        return (await self.admin.merchants.resolve(ref)).merchant_id if ref else None


def db_options(fn: Callable[P, T]) -> Callable[P, T]:
    """``--database-url`` and ``--config`` on a command."""
    fn = click.option("--config", "config", default=None, help="TOML settings file.")(fn)
    fn = click.option(
        "--database-url", "database_url", default=None, help="Overrides TOKENSMITH_DATABASE_URL."
    )(fn)
    return fn


def json_option(fn: Callable[P, T]) -> Callable[P, T]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def render_url(url: str) -> str:
    """``url`` as a message may show it: its password, if any, as ``***``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (sep and at and colon):
        return url
    return f"{scheme}://{user}:***@{host}"


def _reason(exc: BaseException, url: str) -> str:
    """What the driver said, on one line, without the URL's password."""
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    for shown in {password, urllib.parse.unquote(password or "")} - {None, ""}:
        text = text.replace(str(shown), "***")
    return text


@contextlib.contextmanager
def opening_database(url: str) -> Iterator[None]:
    """Turn the failures of a first connection (refused, no such host, file or database,
    wrong password, a schema newer than this version) into one :class:`ConfigError`."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    quiet = _NoOutageLines()
    storage_log = logging.getLogger("tokensmith.storage")
    storage_log.addFilter(quiet)
    try:
        yield
    except TemporarilyUnavailable as exc:  # the storage layer's word for "unreachable"
        cause = exc.__cause__ or exc.__context__ or exc
        raise ConfigError(
            f"cannot open the database {render_url(url)}: {_reason(cause, url)}"
        ) from exc
    except (OSError, ValueError, sqlite3.Error, SQLAlchemyError, CommandError) as exc:
        raise ConfigError(
            f"cannot open the database {render_url(url)}: {_reason(exc, url)}"
        ) from exc
    finally:
        storage_log.removeFilter(quiet)


class _NoOutageLines(logging.Filter):
    """Drops the server's "answering 503" line while a command opens its database: the
    command says what went wrong in its own one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "event", None) != "database.unavailable"


def _open_sqlite_file(url: str) -> None:
    """Open a SQLite database once with the standard library. A file that cannot be opened
    fails here; through aiosqlite its worker thread would report the failure a second
    time, as a traceback, once the event loop has closed."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute("PRAGMA schema_version")


async def open_store(settings: Settings, pool_size: int) -> SqlStore:
    """The store on ``settings.database_url``, connected once (and migrated when
    ``auto_migrate`` is on), so that a database that cannot be used is known now."""
    with opening_database(settings.database_url):
        if is_sqlite(settings.database_url):
            _open_sqlite_file(settings.database_url)
        engine = make_engine(settings.database_url, pool_size=pool_size)
        try:
            if settings.auto_migrate:
                await migrate(engine)
            else:
                async with engine.connect():
                    pass
        except BaseException:
            await engine.dispose()
            raise
    return SqlStore(engine)


def secret_key_error(settings: Settings) -> ConfigError:
    """The stored signing keys do not open with the configured secret key."""
    where = (
        "TOKENSMITH_SECRET_KEY"
        if settings.secret_key
        else f"the secret key in {settings.secret_key_file}"
    )
    return ConfigError(
        f"{where} cannot decrypt the signing keys stored in the database "
        f"{render_url(settings.database_url)}: set the key that sealed them, or put it "
        "after the new one (NEW,OLD) to change keys"
    )


@contextlib.asynccontextmanager
async def open_env(database_url: str | None, config: str | None) -> AsyncIterator[Env]:
    settings = load_settings(config, database_url=database_url)
    store = await open_store(settings, pool_size=2)
    clock, rand = SystemClock(), SystemRandomness()
    try:
        yield Env(settings, store, clock, rand, admin_services(store, clock, rand, settings))
    except KeyEncryptionError as exc:
        raise secret_key_error(settings) from exc
    finally:
        await store.close()


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; operator mistakes exit 2 with the reason."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except AdminError as exc:
        raise OperatorError(str(exc)) from exc


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
        "require_pushed_authorization_requests": c.require_par,
        "dpop_bound_access_tokens": c.require_dpop,
        "profile": c.profile,
        "jwks": None if c.jwks is None else json.loads(c.jwks),
        "jwks_uri": c.jwks_uri,
        **subject_metadata(c),
        "tls_client_certificate_bound_access_tokens": c.cert_bound_tokens,
        "authorization_details_types": (
            None if c.authorization_details_types is None else list(c.authorization_details_types)
        ),
        # made by dynamic client registration (RFC 7591), managed with its own token
        "registered": c.registered,
        "status": "revoked" if c.revoked_at else "disabled" if c.disabled_at else "active",
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
