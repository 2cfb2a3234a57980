"""Token activity per client: counted in memory, written in batches, off the hot path.

The token endpoint calls :meth:`ActivityRecorder.issued` and :meth:`ActivityRecorder.refused`
(through :class:`tokensmith.web.observe.Observer`); both only touch dictionaries, so a JWT
``client_credentials`` token still writes nothing to the database. An
:class:`ActivityFlusher` drains the recorder every few seconds (and on shutdown) into an
hourly ``token_stats`` upsert and a bounded ``auth_failures`` table
(:class:`tokensmith.core.ports.ActivityStore`). Every instance keeps its own counts;
the upsert adds them up, so several instances and workers are counted correctly.

A failed authentication is stored with the time, the client id (as presented if a client
has it, else its fingerprint, :mod:`tokensmith.core.fingerprints`; never the secret), the
source address and the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from tokensmith.core.clock import Clock
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.fingerprints import UNKNOWN_PREFIX
from tokensmith.core.models import User
from tokensmith.core.panel_models import (
    AUTH_FAILURE_REASONS,
    DAY,
    ActivityBatch,
    AuthFailure,
    TokenCount,
    clean_field,
    hour_of,
)
from tokensmith.core.ports import ActivityReader, ClientStore, PanelStore

__all__ = [
    "FAILURES_SHOWN",
    "Activity",
    "ActivityFlusher",
    "ActivityRecorder",
    "RetentionPolicy",
    "merge_counts",
]

log = logging.getLogger("tokensmith.activity")


class ActivityRecorder:
    """In-memory counters of one instance. Bounded: at most ``max_keys`` (client, hour)
    entries and ``max_failures`` failures wait for the next flush; beyond that new ones
    are dropped and counted in :attr:`dropped`."""

    def __init__(self, clock: Clock, max_keys: int = 10_000, max_failures: int = 1_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._max_failures = max_failures
        self._counts: dict[tuple[str, int], TokenCount] = {}
        #: (client, hour) -> [tokens, last issued at]: the hot path's plain counters,
        #: folded into ``_counts`` when read.
        self._issued: dict[tuple[str, int], list[float]] = {}
        self._failures: list[AuthFailure] = []
        self.dropped = 0

    def _add(self, count: TokenCount) -> None:
        key = (count.client_id, count.hour)
        old = self._counts.get(key)
        if old is not None:
            self._counts[key] = old.plus(count)
        elif len(self._counts) < self._max_keys:
            self._counts[key] = count
        else:
            self.dropped += 1

    def issued(self, client_id: str) -> None:
        now = self._clock.now()
        key = (client_id, hour_of(now))
        slot = self._issued.get(key)
        if slot is not None:
            slot[0] += 1
            slot[1] = now
        elif key in self._counts or len(self._issued) + len(self._counts) < self._max_keys:
            self._issued[key] = [1, now]
        else:
            self.dropped += 1

    def _fold(self) -> None:
        issued, self._issued = self._issued, {}
        for (client_id, hour), (n, last) in issued.items():
            self._add(TokenCount(clean_field(client_id) or "", hour, int(n), 0, last))

    def refused(self, client_id: str | None, reason: str, source: str, dialect: str) -> None:
        """Count a refusal of a named client; keep it as a failure if it was authentication."""
        now = self._clock.now()
        name = clean_field(client_id)
        if name:
            self._add(TokenCount(name, hour_of(now), 0, 1, None))
        if reason not in AUTH_FAILURE_REASONS:
            return
        if len(self._failures) >= self._max_failures:
            self.dropped += 1
            return
        self._failures.append(AuthFailure(now, name, clean_field(source) or "", reason, dialect))

    def pending(self) -> list[TokenCount]:
        """What this instance has counted and not yet written (for an up-to-date page)."""
        self._fold()
        return list(self._counts.values())

    def drain(self) -> ActivityBatch:
        self._fold()
        batch = ActivityBatch(list(self._counts.values()), self._failures)
        self._counts = {}
        self._failures = []
        return batch

    def restore(self, batch: ActivityBatch) -> None:
        """Put back a batch that could not be written."""
        for count in batch.counts:
            self._add(count)
        room = max(0, self._max_failures - len(self._failures))
        self._failures[:0] = batch.failures[:room]
        self.dropped += len(batch.failures) - min(room, len(batch.failures))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long activity is kept (seconds) and how many failures at most."""

    stats: int = 90 * DAY
    failures: int = 7 * DAY
    max_failures: int = 100_000
    #: Seconds between purges of old rows (done by the flusher).
    purge_every: float = 3600.0


class ActivityFlusher:
    """Writes a recorder's counts to an :class:`ActivityStore`; purges old rows."""

    #: A batch that failed this many times in a row is dropped (and logged), so one bad
    #: row cannot hold the counters forever. An unavailable database is no bad row: the
    #: batch waits for it (the recorder is bounded), however long the outage.
    MAX_ATTEMPTS = 3

    def __init__(
        self,
        recorder: ActivityRecorder,
        store: PanelStore,
        clients: ClientStore,
        clock: Clock,
        retention: RetentionPolicy,
    ) -> None:
        self.recorder = recorder
        self._store = store
        self._clients = clients
        self._clock = clock
        self._retention = retention
        self._failed = 0
        self._last_purge = clock.now()

    async def flush(self) -> int:
        """Write what was counted since the last flush; return the rows written."""
        batch = self.recorder.drain()
        if not batch:
            return 0
        try:
            written = await self._write(batch)
        except TemporarilyUnavailable:  # kept for the next flush; the caller logs it
            self.recorder.restore(batch)
            raise
        except Exception:
            self._failed += 1
            if self._failed < self.MAX_ATTEMPTS:
                self.recorder.restore(batch)
            log.exception("could not write token activity (attempt %d)", self._failed)
            raise
        self._failed = 0
        return written

    async def _write(self, batch: ActivityBatch) -> int:
        names = {c.client_id for c in batch.counts}
        names.update(f.client_id for f in batch.failures if f.client_id)
        names = {n for n in names if not n.startswith(UNKNOWN_PREFIX)}  # no client's
        owners: dict[str, str | None] = {}
        for name in names:
            client = await self._clients.get_client(name)
            if client is not None:
                owners[name] = client.merchant_id
        counts = [c for c in batch.counts if c.client_id in owners]
        failures = [
            replace(f, merchant_id=owners.get(f.client_id)) if f.client_id else f
            for f in batch.failures
        ]
        await self._store.add_token_counts(counts)
        await self._store.add_auth_failures(failures)
        return len(counts) + len(failures)

    async def purge(self) -> int:
        """Delete old counts, old and surplus failures, and expired reveals."""
        now = self._clock.now()
        self._last_purge = now
        r = self._retention
        deleted = await self._store.purge_activity(
            hour_of(now - r.stats), now - r.failures, r.max_failures
        )
        return deleted + await self._store.purge_reveals(now)

    async def run(
        self, interval: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Flush every ``interval`` seconds, purge every ``purge_every``, until cancelled;
        a failed round is logged and retried next time."""
        while True:
            await sleep(interval)
            try:
                await self.flush()
                if self._clock.now() - self._last_purge >= self._retention.purge_every:
                    await self.purge()
            except Exception:  # the job must outlive a database hiccup
                log.warning("token activity flush failed; retrying at the next interval")


def merge_counts(rows: Sequence[TokenCount]) -> dict[tuple[str, int], TokenCount]:
    """Rows keyed by (client, hour), duplicates added up."""
    merged: dict[tuple[str, int], TokenCount] = {}
    for row in rows:
        key = (row.client_id, row.hour)
        merged[key] = merged[key].plus(row) if key in merged else row
    return merged


#: Failed authentications a page shows at most.
FAILURES_SHOWN = 50


class Activity:
    """What the panel shows of token activity: the stored hourly rows plus what this
    instance counted and has not written yet (so a single instance's page is current;
    other instances' counts appear after their next flush)."""

    def __init__(self, store: ActivityReader, recorder: ActivityRecorder | None = None) -> None:
        self._store = store
        self._recorder = recorder

    def _pending(self, client_ids: Sequence[str]) -> list[TokenCount]:
        wanted = set(client_ids)
        pending = self._recorder.pending() if self._recorder is not None else []
        return [c for c in pending if c.client_id in wanted]

    async def counts(self, client_ids: Sequence[str], since: int) -> list[TokenCount]:
        """The hourly counts of these clients from the hour ``since`` on."""
        stored = await self._store.token_counts(client_ids, since)
        pending = [c for c in self._pending(client_ids) if c.hour >= since]
        return list(merge_counts([*stored, *pending]).values())

    async def last_used(self, client_ids: Sequence[str]) -> dict[str, float]:
        """When each of these clients last got a token, as far as the counts say."""
        found = await self._store.last_used(client_ids)
        for count in self._pending(client_ids):
            at = count.last_issued_at
            if at is not None and at > found.get(count.client_id, 0):
                found[count.client_id] = at
        return found

    async def failures(
        self, merchant_id: str, client_id: str | None = None, limit: int = FAILURES_SHOWN
    ) -> list[AuthFailure]:
        """The newest failed authentications of the merchant's clients (of one of them)."""
        if client_id is None:
            return await self._store.recent_auth_failures(merchant_id, limit)
        found = await self._store.recent_auth_failures(merchant_id, limit * 4)
        return [f for f in found if f.client_id == client_id][:limit]

    async def unattributed(
        self, viewer: User, limit: int = FAILURES_SHOWN
    ) -> list[AuthFailure] | None:
        """For operators only (``None`` for anyone else): the failures naming no known
        client (guessing, misconfigured clients), which belong to no merchant."""
        if viewer.role != "operator":
            return None
        return await self._store.recent_auth_failures(None, limit)
