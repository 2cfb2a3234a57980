"""Token activity: counted in memory off the hot path, flushed in batches, purged."""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.core.activity import ActivityFlusher, ActivityRecorder, RetentionPolicy
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client
from tokensmith.core.panel_models import AuthFailure, TokenCount, clean_field, hour_of
from tokensmith.storage.memory import MemoryStore

T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.add_client(Client("k1", "Shop", ("read",), merchant_id="m1"))
    await s.add_client(Client("k2", "Other", ("read",), merchant_id="m2"))
    return s


def _flusher(rec: ActivityRecorder, store: MemoryStore, clock: FrozenClock) -> ActivityFlusher:
    return ActivityFlusher(rec, store, store, clock, RetentionPolicy(stats=86400, failures=600))


def test_issues_are_counted_per_client_and_hour(clock: FrozenClock) -> None:
    rec = ActivityRecorder(clock)
    rec.issued("k1")
    rec.issued("k1")
    clock.advance(3600)
    rec.issued("k1")
    rec.issued("k2")
    assert sorted((c.client_id, c.hour, c.issued) for c in rec.pending()) == [
        ("k1", hour_of(T0), 2),
        ("k1", hour_of(T0 + 3600), 1),
        ("k2", hour_of(T0 + 3600), 1),
    ]
    assert max(c.last_issued_at or 0 for c in rec.pending()) == T0 + 3600


@pytest.mark.parametrize(
    ("reason", "is_failure"),
    [
        ("bad_secret", True),
        ("unknown_client", True),
        ("revoked_client", True),
        ("rate_limited", True),
        ("invalid_apikey", True),
        ("invalid_scope", False),
        ("unsupported_grant_type", False),
        ("code_reused", False),
    ],
)
def test_only_authentication_refusals_are_failures(
    clock: FrozenClock, reason: str, is_failure: bool
) -> None:
    rec = ActivityRecorder(clock)
    rec.refused("k1", reason, "203.0.113.7", "oauth")
    batch = rec.drain()
    assert [c.refused for c in batch.counts] == [1]
    expected = [AuthFailure(T0, "k1", "203.0.113.7", reason, "oauth")] if is_failure else []
    assert batch.failures == expected
    assert not rec.drain()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("k1", "k1"), ("a\x00b", "a?b"), ("é", "?"), ("x" * 100, "x" * 64), (None, None)],
)
def test_presented_client_ids_are_made_printable_and_short(
    raw: str | None, clean: str | None
) -> None:
    assert clean_field(raw) == clean


def test_the_recorder_is_bounded(clock: FrozenClock) -> None:
    rec = ActivityRecorder(clock, max_keys=2, max_failures=3)
    for n in range(5):
        rec.refused(f"guess-{n}", "unknown_client", "198.51.100.1", "oauth")
    rec.issued("guess-0")
    batch = rec.drain()
    assert len(batch.counts) == 2 and len(batch.failures) == 3
    assert rec.dropped == 3 + 2


async def test_a_flush_writes_counts_of_known_clients_and_failures_with_their_merchant(
    clock: FrozenClock, store: MemoryStore
) -> None:
    rec = ActivityRecorder(clock)
    rec.issued("k1")
    rec.refused("k2", "bad_secret", "203.0.113.7", "tpay")
    rec.refused("nobody", "unknown_client", "203.0.113.8", "oauth")
    rec.refused(None, "no_credentials", "203.0.113.9", "oauth")
    assert await _flusher(rec, store, clock).flush() == 2 + 3
    assert [
        (c.client_id, c.issued, c.refused)
        for c in await store.token_counts(["k1", "k2", "nobody"], 0)
    ] == [
        ("k1", 1, 0),
        ("k2", 0, 1),
    ]
    assert [f.client_id for f in await store.recent_auth_failures("m2", 10)] == ["k2"]
    assert {f.client_id for f in await store.recent_auth_failures(None, 10)} == {"nobody", None}
    assert rec.pending() == [] and await _flusher(rec, store, clock).flush() == 0


class FlakyStore(MemoryStore):
    fail = 0

    async def add_token_counts(self, counts: object) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database down")
        await super().add_token_counts(counts)  # type: ignore[arg-type]


async def test_a_failed_flush_keeps_the_counts_for_the_next_one(clock: FrozenClock) -> None:
    store = FlakyStore()
    await store.add_client(Client("k1", "Shop", ("read",), merchant_id="m1"))
    rec = ActivityRecorder(clock)
    flusher = _flusher(rec, store, clock)
    rec.issued("k1")
    store.fail = 1
    with pytest.raises(ConnectionError):
        await flusher.flush()
    rec.issued("k1")
    await flusher.flush()
    assert [c.issued for c in await store.token_counts(["k1"], 0)] == [2]


async def test_a_batch_that_keeps_failing_is_dropped(clock: FrozenClock) -> None:
    store = FlakyStore()
    await store.add_client(Client("k1", "Shop", ("read",), merchant_id="m1"))
    rec = ActivityRecorder(clock)
    flusher = _flusher(rec, store, clock)
    rec.issued("k1")
    store.fail = ActivityFlusher.MAX_ATTEMPTS
    for _ in range(ActivityFlusher.MAX_ATTEMPTS):
        with pytest.raises(ConnectionError):
            await flusher.flush()
    assert rec.pending() == []


async def test_purge_keeps_the_retention_window(clock: FrozenClock, store: MemoryStore) -> None:
    await store.add_token_counts(
        [TokenCount("k1", hour_of(T0) - 2 * 86400, 5), TokenCount("k1", hour_of(T0), 1)]
    )
    await store.add_auth_failures([AuthFailure(T0 - 1000, "k1", "a", "bad_secret", "oauth", "m1")])
    await store.add_auth_failures([AuthFailure(T0 - 10, "k1", "a", "bad_secret", "oauth", "m1")])
    assert await _flusher(ActivityRecorder(clock), store, clock).purge() == 2
    assert [c.issued for c in await store.token_counts(["k1"], 0)] == [1]
    assert [f.at for f in await store.recent_auth_failures("m1", 10)] == [T0 - 10]


async def test_the_background_job_flushes_every_interval_and_survives_errors(
    clock: FrozenClock,
) -> None:
    store = FlakyStore()
    await store.add_client(Client("k1", "Shop", ("read",), merchant_id="m1"))
    rec = ActivityRecorder(clock)
    flusher = _flusher(rec, store, clock)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        rec.issued("k1")
        if len(sleeps) == 4:
            raise asyncio.CancelledError

    store.fail = 1
    with pytest.raises(asyncio.CancelledError):
        await flusher.run(5.0, sleep)
    assert sleeps == [5.0] * 4
    assert [c.issued for c in await store.token_counts(["k1"], 0)] == [3]
