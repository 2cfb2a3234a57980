"""``tokensmith serve``: migrate, make the first key, then run uvicorn workers."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import tempfile
from typing import Any

import click
import uvicorn

from tokensmith.logs import configure_logging
from tokensmith.settings import COMPAT_DIALECTS, SETTINGS_ENV, Settings, load_settings
from tokensmith.web.protocol import ConnectionLimits

#: Descriptors a worker keeps for itself besides its database connections: the listening
#: socket, the event loop, Redis, log and metrics files, the SQLite writer's lock.
RESERVED_DESCRIPTORS = 64
#: Descriptors one pooled database connection may hold (SQLite: the file, its WAL and
#: its shared memory; PostgreSQL: one socket).
DESCRIPTORS_PER_DATABASE_CONNECTION = 3
#: uvicorn's listen backlog: connections the kernel holds until the worker accepts them,
#: each of which takes a descriptor when it is accepted.
MAX_BACKLOG = 2048

log = logging.getLogger("tokensmith")


async def prepare(settings: Settings) -> list[str]:
    """Once, before workers start: schema, first signing key, demo data. A database that
    cannot be opened, or signing keys the secret key cannot open, raise
    :class:`~tokensmith.config_error.ConfigError` before any worker starts."""
    from tokensmith.cli._common import open_store, secret_key_error
    from tokensmith.core.keys import KeyEncryptionError
    from tokensmith.demo import seed_demo
    from tokensmith.web.compose import build_context

    store = await open_store(settings, pool_size=2)
    try:
        try:
            ctx = await build_context(settings, store=store)
        except KeyEncryptionError as exc:
            raise secret_key_error(settings) from exc
        try:
            if settings.demo:
                return await seed_demo(ctx.store, ctx.clock, settings.issuer_url)
            return []
        finally:
            if ctx.redis is not None:
                await ctx.redis.aclose()
    finally:
        await store.close()


def descriptor_budget(settings: Settings) -> int | None:
    """Descriptors a worker may spend on connections, accepted or waiting to be: its
    open-file limit less what it needs for itself (``None``: no limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    pool = settings.database_pool_size * DESCRIPTORS_PER_DATABASE_CONNECTION
    return soft - pool - RESERVED_DESCRIPTORS


def connection_limits(settings: Settings) -> tuple[ConnectionLimits, int]:
    """The read deadlines and connection cap of each worker, and the listen backlog.

    The cap is ``http_max_connections``, lowered when the open-file limit is too low for
    it: open connections, plus the backlog the kernel may hand over in one burst, plus
    the worker's own descriptors stay under the limit, so no descriptor runs out."""
    budget = descriptor_budget(settings)
    cap, backlog = settings.http_max_connections, MAX_BACKLOG
    if budget is not None:
        backlog = max(16, min(MAX_BACKLOG, budget // 4))
        cap = max(1, min(cap, budget - backlog))
    limits = ConnectionLimits(settings.http_header_timeout, settings.http_body_timeout, cap)
    return limits, backlog


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs the app: uvloop, tokensmith's HTTP protocol (uvicorn's httptools
    one, each response sent in one write, with read deadlines and a connection cap:
    :mod:`tokensmith.web.protocol`), no access log (the audit log says what matters) and
    no ``server`` header."""
    limits, backlog = connection_limits(settings)
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers if settings.workers > 1 else None,
        "http": limits.protocol(),
        "loop": "uvloop",
        "access_log": False,
        "log_level": "warning",
        "proxy_headers": False,
        "server_header": False,
        "timeout_keep_alive": settings.http_keepalive_timeout,
        "backlog": backlog,
    }


@click.command("serve")
@click.option("--host", default=None, help="Default 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Default 8000.")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option(
    "--compat", multiple=True, type=click.Choice(COMPAT_DIALECTS), help="Repeatable dialect."
)
@click.option("--database-url", default=None)
@click.option("--redis-url", default=None)
@click.option("--issuer", default=None, help="Public base URL (the tokens' iss).")
@click.option("--config", default=None, help="TOML settings file.")
@click.option("--demo", is_flag=True, default=None, help="Seed demo data and enable every dialect.")
@click.option("--log-json", is_flag=True, default=None)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve /metrics, /livez and /readyz on this port only (every worker summed).",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    compat: tuple[str, ...],
    database_url: str | None,
    redis_url: str | None,
    issuer: str | None,
    config: str | None,
    demo: bool | None,
    log_json: bool | None,
    metrics_port: int | None,
) -> None:
    """Start the server."""
    settings = load_settings(
        config,
        host=host,
        port=port,
        workers=workers,
        compat=compat or None,
        database_url=database_url,
        redis_url=redis_url,
        issuer=issuer,
        demo=demo,
        log_json=log_json,
        metrics_port=metrics_port,
    )
    if settings.demo and not settings.compat:
        settings = settings.model_copy(update={"compat": COMPAT_DIALECTS})
    configure_logging(settings.log_json, settings.log_level)
    for line in asyncio.run(prepare(settings)):
        click.echo(line)
    settings = settings.model_copy(update={"auto_migrate": False})
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    # the workers' totals go to files: summed by whichever worker a scrape reaches, or by
    # the metrics port (served by this process, which counts nothing itself)
    multiprocess = settings.workers > 1 or settings.metrics_port is not None
    if multiprocess and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tokensmith-metrics-")
    click.echo(
        f"tokensmith on {settings.issuer_url} ({settings.workers} worker(s); "
        f"dialects: {', '.join(settings.compat) or 'none'})"
    )
    options = uvicorn_options(settings)
    cap = options["http"].keywords["limits"].max_connections
    if cap < settings.http_max_connections:
        log.warning(
            "at most %d connections a worker (http_max_connections %d): the open-file "
            "limit allows no more; raise it (ulimit -n) to hold more",
            cap,
            settings.http_max_connections,
        )
    if settings.metrics_port is not None:
        from tokensmith.web.admin_port import serve_in_thread

        serve_in_thread(settings)
        click.echo(f"metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    uvicorn.run("tokensmith.web.app:app_from_environ", **options)
