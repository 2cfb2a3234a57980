"""The in-memory view of revoked JWTs that introspection reads instead of a row."""

from __future__ import annotations

import pytest

from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import AccessTokenRecord
from tokensmith.storage.protocols import Store
from tokensmith.storage.revocations import RevocationView


def _jwt(jti: str, now: float) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "c1", "c1", "read", now, now + 600)


async def test_a_revocation_through_this_store_is_seen_at_once(store: Store) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=60.0)
    assert await view.revoked_at("j1") is None
    await store.revoke_access_token(_jwt("j1", clock.now()), clock.now())
    assert await view.revoked_at("j1") == clock.now()


async def test_a_revocation_made_elsewhere_is_seen_within_the_interval(
    store: Store, tmp_path: object
) -> None:
    if not hasattr(store, "engine"):
        pytest.skip("one process: the in-memory store has no other instance")
    from tokensmith.storage.sql import SqlStore

    other = SqlStore(store.engine)  # type: ignore[attr-defined]  # a second instance
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=1.0)
    assert await view.revoked_at("j2") is None
    await other.revoke_access_token(_jwt("j2", clock.now()), clock.now())
    assert await view.revoked_at("j2") is None  # not yet: within the interval
    clock.advance(1.0)
    await view.revoked_at("j2")  # starts the background read
    await view._sync  # type: ignore[misc]
    assert await view.revoked_at("j2") == 1_000.0


async def test_expired_tokens_leave_the_view(store: Store) -> None:
    clock = FrozenClock(1_000.0)
    view = RevocationView(store, clock, interval=1.0)
    await store.revoke_access_token(_jwt("j3", clock.now()), clock.now())
    assert await view.revoked_at("j3") is not None
    clock.advance(601)
    await store.revoke_access_token(_jwt("j4", clock.now()), clock.now())
    assert await view.revoked_at("j3") is None
