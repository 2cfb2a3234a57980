"""The metrics port (``metrics_port``): ``/metrics``, ``/livez`` and ``/readyz`` on an
address of their own, usually one only the monitoring network reaches; the public port
then answers them 404.

``tokensmith serve`` runs this small app in its main process, in a thread beside uvicorn
(which in multi-worker mode is the supervisor of the workers, and in single-worker mode
the worker itself). It counts nothing: every worker writes its totals to its file in
``PROMETHEUS_MULTIPROC_DIR`` each ``metrics_flush_interval``, and a scrape here sums every
worker's file (:func:`tokensmith.web.observe.summed_exposition`), with each worker's
``process_*`` metrics under a ``pid`` label. So the sum is the same in single- and
multi-worker mode, one port whatever the number of workers, and a worker that crashed and
was replaced keeps its counts in the sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokensmith.settings import Settings
from tokensmith.web.compose import probe_health
from tokensmith.web.context import Health
from tokensmith.web.endpoints import probes
from tokensmith.web.observe import summed_exposition

__all__ = ["admin_port_app", "serve_in_thread"]

MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def admin_port_app(settings: Settings, folder: Path) -> Starlette:
    """``/metrics`` summed over the worker files in ``folder``, ``/livez``, and ``/readyz``
    over a connection of its own to the database."""
    health: list[Health] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        found, close = probe_health(settings)
        health.append(found)
        try:
            yield
        finally:
            await close()

    async def metrics(request: Request) -> Response:
        body = await asyncio.to_thread(summed_exposition, folder)
        return Response(body, 200, media_type=MEDIA_TYPE)

    async def readyz(request: Request) -> Response:
        return await probes.readiness(health[0])

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/livez", probes.livez),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )


def serve_in_thread(settings: Settings) -> threading.Thread:
    """Start the metrics port in a daemon thread of this process (it ends with the
    process). ``PROMETHEUS_MULTIPROC_DIR`` must be set, for the workers to write to."""
    assert settings.metrics_port is not None
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    config = uvicorn.Config(
        admin_port_app(settings, folder),
        host=settings.metrics_host,
        port=settings.metrics_port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="tokensmith-metrics-port", daemon=True)
    thread.start()
    return thread
