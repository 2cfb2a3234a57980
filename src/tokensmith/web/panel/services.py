"""What the panel needs at run time, built once per app by
:func:`tokensmith.web.compose.build_context`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from tokensmith.core.activity import ActivityFlusher, ActivityRecorder
from tokensmith.core.passwords import Passwords
from tokensmith.web.context import ctx_of

__all__ = ["REVEAL_TTL", "PanelServices", "panel_of"]

#: Seconds a secret waits to be shown once after it was made.
REVEAL_TTL = 600


@dataclass(frozen=True, slots=True)
class PanelServices:
    #: Counts token activity per client in memory (the observer feeds it).
    recorder: ActivityRecorder
    #: Writes the counts to the database (a background job of the lifespan).
    flusher: ActivityFlusher
    passwords: Passwords
    #: Scopes a merchant may give its keys and apps (setting ``panel_scopes``).
    scopes: tuple[str, ...]
    reveal_ttl: int = REVEAL_TTL


def panel_of(request: Request) -> PanelServices:
    return ctx_of(request).panel
