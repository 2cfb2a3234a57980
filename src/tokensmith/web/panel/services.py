"""What the panel needs at run time besides the core's services (``ctx.users``,
``ctx.client_admin``, ...), built once per app by
:func:`tokensmith.web.compose.build_context`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from tokensmith.core.activity import ActivityFlusher, ActivityRecorder
from tokensmith.web.context import ctx_of

__all__ = ["PanelServices", "panel_of"]


@dataclass(frozen=True, slots=True)
class PanelServices:
    #: Counts token activity per client in memory (the observer feeds it).
    recorder: ActivityRecorder
    #: Writes the counts to the database (a background job of the lifespan).
    flusher: ActivityFlusher
    #: Scopes a merchant may give its keys and apps (setting ``panel_scopes``).
    scopes: tuple[str, ...]


def panel_of(request: Request) -> PanelServices:
    return ctx_of(request).panel
