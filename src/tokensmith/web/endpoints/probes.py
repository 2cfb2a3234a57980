"""Probes for an orchestrator: ``GET /livez`` (the process answers) and ``GET /readyz``
(it can serve: the database answers and has every migration this version needs).

A database outage makes an instance unready, never dead: restarting it would not bring the
database back, and the instance serves again by itself once it is back.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.web.context import Health, ctx_of
from tokensmith.web.dialects.oauth import json_response

__all__ = ["livez", "readiness", "readyz"]

NO_STORE = {"cache-control": "no-store"}


async def livez(request: Request) -> Response:
    """200 while the process serves requests; touches neither the database nor Redis."""
    return json_response({"status": "ok"}, 200, NO_STORE)


async def readyz(request: Request) -> Response:
    """200 when the database answers and its schema is current; else 503 with what is wrong:
    ``database`` is ``unavailable``, or ``migrations.state`` is ``behind`` or ``missing``."""
    return await readiness(ctx_of(request).health)


async def readiness(health: Health) -> Response:
    """``/readyz``'s answer from ``health``."""
    found = await health.readiness()
    body: dict[str, Any] = {
        "status": "ready" if found.ready else "not_ready",
        "database": "ok" if found.available else "unavailable",
    }
    if found.schema is not None:
        body["migrations"] = {
            "state": found.schema.state,
            "applied": list(found.schema.applied),
            "expected": list(found.schema.expected),
        }
    return json_response(body, 200 if found.ready else 503, NO_STORE)
