"""The in-memory view of revoked JWTs that introspection reads instead of a row.

Its bound: no answer rests on revocation data read more than ``interval`` seconds before
the request, whatever the view did before it (an idle spell included), so a JWT revoked
anywhere is inactive within ``interval`` at every worker of every instance.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.twins import another_instance, memory_twin
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import AccessTokenRecord
from tokensmith.core.ports import Store
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.revocations import RevocationView

INTERVAL = 1.0


def _jwt(jti: str, now: float) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "c1", "c1", "read", now, now + 3600)


class CountedReads(MemoryStore):
    """Counts ``revoked_since`` calls; while ``hold`` is set, a read waits for it to
    clear (a slow or stuck database)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.hold: asyncio.Event | None = None

    async def revoked_since(self, since: float, now: float) -> list[tuple[str, float, float]]:
        self.reads += 1
        hold = self.hold
        rows = await super().revoked_since(since, now)
        await asyncio.sleep(0)  # a database answers later
        if hold is not None:
            await hold.wait()
        return rows


async def test_a_revocation_through_this_store_is_seen_at_once(store: Store) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=60.0)
    assert await view.revoked_at("j1") is None
    await store.revoke_access_token(_jwt("j1", clock.now()), clock.now())
    assert await view.revoked_at("j1") == clock.now()


async def test_a_revocation_made_elsewhere_is_seen_by_the_first_answer_after_the_interval(
    store: Store,
) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=INTERVAL)
    assert await view.revoked_at("j2") is None
    async with another_instance(store) as other:
        await other.revoke_access_token(_jwt("j2", clock.now()), clock.now())
    clock.advance(INTERVAL)
    assert await view.revoked_at("j2") == 1_000.0


@pytest.mark.parametrize("idle", [INTERVAL, 5.0, 3_600.0])
async def test_after_an_idle_spell_the_first_answer_sees_a_revocation_made_elsewhere(
    store: Store, idle: float
) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=INTERVAL)
    assert await view.revoked_at("j3") is None  # warm: read at 1000
    clock.advance(idle)  # nobody asks
    async with another_instance(store) as other:
        await other.revoke_access_token(_jwt("j3", clock.now()), clock.now())
    clock.advance(INTERVAL)
    assert await view.revoked_at("j3") == 1_000.0 + idle


async def test_expired_tokens_leave_the_view(store: Store) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=INTERVAL)
    await store.revoke_access_token(_jwt("j4", clock.now()), clock.now())
    assert await view.revoked_at("j4") is not None
    clock.advance(3_601)
    await store.revoke_access_token(_jwt("j5", clock.now()), clock.now())
    assert await view.revoked_at("j4") is None
    assert len(view._revoked) == 1


async def test_a_fresh_view_reads_nothing_and_refreshes_in_the_background_within_the_bound(
    clock: FrozenClock,
) -> None:
    """The hot path: no read while the view is under half the interval old; between half
    and the whole interval, answers come from memory at once while one read runs."""
    store = CountedReads()
    view = RevocationView(store, clock, interval=INTERVAL)
    await view.revoked_at("j")
    assert store.reads == 1
    clock.advance(INTERVAL * 0.4)
    for _ in range(100):
        assert await view.revoked_at("j") is None
    assert store.reads == 1
    clock.advance(INTERVAL * 0.2)
    store.hold = asyncio.Event()
    answers = [await asyncio.wait_for(view.revoked_at("j"), 1) for _ in range(100)]
    assert answers == [None] * 100 and store.reads == 2  # one read, nobody waited for it
    store.hold.set()
    await view.aclose()


async def test_answers_after_the_interval_share_one_read(clock: FrozenClock) -> None:
    store = CountedReads()
    view = RevocationView(store, clock, interval=INTERVAL)
    await view.revoked_at("j")
    clock.advance(60.0)
    await memory_twin(store).revoke_access_token(_jwt("j", clock.now()), clock.now())
    answers = await asyncio.gather(*(view.revoked_at("j") for _ in range(50)))
    assert answers == [clock.now()] * 50
    assert store.reads == 2


async def test_answers_after_a_revocation_here_share_one_read(clock: FrozenClock) -> None:
    store = CountedReads()
    view = RevocationView(store, clock, interval=60.0)
    await view.revoked_at("j")
    await store.revoke_access_token(_jwt("j", clock.now()), clock.now())
    answers = await asyncio.gather(*(view.revoked_at("j") for _ in range(50)))
    assert answers == [clock.now()] * 50
    assert store.reads == 2


async def test_a_read_in_flight_for_longer_than_the_interval_is_not_waited_for(
    clock: FrozenClock,
) -> None:
    """A background read that began within the bound but is still running once the bound
    has passed holds only what was revoked before it began: the answer needs a new one."""
    store = CountedReads()
    view = RevocationView(store, clock, interval=INTERVAL)
    await view.revoked_at("j")
    clock.advance(INTERVAL * 0.6)
    stuck = store.hold = asyncio.Event()
    assert await view.revoked_at("j") is None
    await asyncio.sleep(0)  # the background read starts, and sticks
    assert store.reads == 2
    store.hold = None
    await memory_twin(store).revoke_access_token(_jwt("j", clock.now()), clock.now())
    clock.advance(INTERVAL)
    assert await asyncio.wait_for(view.revoked_at("j"), 1) is not None
    assert store.reads == 3
    stuck.set()
    await view.aclose()
    assert await view.revoked_at("j") is not None  # the stuck read, ending last, undid nothing


async def test_a_clock_set_back_does_not_stretch_the_bound(clock: FrozenClock) -> None:
    """A read that seems to come from the future is no proof of freshness: after the
    clock steps back, the view reads again (everything, as its last read time means
    nothing on the new clock)."""
    store = CountedReads()
    view = RevocationView(store, clock, interval=INTERVAL)
    await view.revoked_at("j")
    clock.advance(-120.0)
    await memory_twin(store).revoke_access_token(_jwt("j", clock.now()), clock.now())
    assert await view.revoked_at("j") == clock.now()
