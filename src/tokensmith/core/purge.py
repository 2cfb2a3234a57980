"""Deleting what has expired, in batches, so tables do not grow without bound.

Run by the app's scheduled job (:func:`purge_forever`, every ``purge_interval`` seconds)
and by ``tokensmith purge``. Each kind is deleted ``batch`` rows per transaction, so a
large backlog never holds a long lock. A family is kept (with its spent refresh tokens,
for reuse detection) until its idle or absolute lifetime ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from tokensmith.core.clock import Clock
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.ports import PurgeStore

__all__ = ["PurgeCounts", "purge_forever", "purge_once"]

log = logging.getLogger("tokensmith.purge")

#: Batches per kind in one run; the next run carries on with what is left.
MAX_BATCHES = 1000


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    access_tokens: int = 0
    refresh_tokens: int = 0
    authorization_codes: int = 0
    sessions: int = 0
    pushed_requests: int = 0
    audit_events: int = 0
    consents: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


async def _drain(step: Callable[[], Awaitable[int]], batch: int) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        n = await step()
        total += n
        if n < batch:
            break
    return total


async def purge_once(
    store: PurgeStore,
    clock: Clock,
    batch: int,
    session_idle_ttl: float,
    audit_retention: float | None = None,
) -> PurgeCounts:
    """Delete expired access tokens, ended token families, expired codes, sessions,
    pushed authorization requests and consent resources; and audit events older than
    ``audit_retention`` seconds (kept forever without it)."""
    now = clock.now()
    audit = 0
    if audit_retention is not None:
        audit = await _drain(lambda: store.purge_audit(now - audit_retention, batch), batch)
    return PurgeCounts(
        audit_events=audit,
        access_tokens=await _drain(lambda: store.purge_access_tokens(now, batch), batch),
        refresh_tokens=await _drain(lambda: store.purge_families(now, batch), batch),
        authorization_codes=await _drain(lambda: store.purge_codes(now, batch), batch),
        sessions=await _drain(
            lambda: store.purge_sessions(now - session_idle_ttl, now, batch), batch
        ),
        pushed_requests=await _drain(lambda: store.purge_pushed_requests(now, batch), batch),
        consents=await _drain(lambda: store.purge_consent_resources(now, batch), batch),
    )


async def purge_forever(
    store: PurgeStore,
    clock: Clock,
    interval: float,
    batch: int,
    session_idle_ttl: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    audit_retention: float | None = None,
) -> None:
    """The scheduled job: purge every ``interval`` seconds until cancelled. A failed run is
    logged and retried at the next interval."""
    while True:
        await sleep(interval)
        try:
            counts = await purge_once(store, clock, batch, session_idle_ttl, audit_retention)
        except TemporarilyUnavailable:
            log.warning("purge skipped: the database is unavailable")
            continue
        except Exception:  # the job must outlive a database hiccup
            log.exception("purge failed")
            continue
        if counts.total:
            log.info("purged expired rows", extra={"purged": counts.as_dict()})
