"""Browser sessions in the core (:class:`tokensmith.core.sessions.Sessions`): idle and
absolute expiry, activity written at most every minute, a new session at every login."""

from __future__ import annotations

import pytest

from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.models import Merchant, User
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.sessions import TOUCH_EVERY, Sessions
from tokensmith.storage.memory import MemoryStore

IDLE, ABSOLUTE = 1800, 8 * 3600


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.add_merchant(Merchant("m1", "Shop", 1.0))
    await s.add_user(User("u1", "ann@shop.test", "$argon2id$x", "admin", "m1", 1.0))
    await s.add_user(User("op", "op@ts.test", "$argon2id$x", "operator", None, 1.0))
    return s


@pytest.fixture
def sessions(store: MemoryStore, clock: FrozenClock) -> Sessions:
    return Sessions(
        store, store, store, clock, SystemRandomness(), idle_ttl=IDLE, absolute_ttl=ABSOLUTE
    )


async def test_a_session_is_stored_as_the_hash_of_the_browsers_secret(
    sessions: Sessions, store: MemoryStore, clock: FrozenClock
) -> None:
    session, plain = await sessions.start("u1")
    assert session.session_hash == hash_secret(plain) and plain not in store.sessions
    assert session.expires_at == clock.now() + ABSOLUTE
    assert await sessions.resolve(plain) == session
    assert await sessions.resolve("") is None
    assert await sessions.resolve("not-a-session") is None


@pytest.mark.parametrize(
    ("idle_for", "live"),
    [(IDLE - 1, True), (IDLE, False), (IDLE + 60, False)],
    ids=["just-before", "at-idle-ttl", "after"],
)
async def test_a_session_idle_for_idle_ttl_ends_and_is_deleted(
    sessions: Sessions, store: MemoryStore, clock: FrozenClock, idle_for: int, live: bool
) -> None:
    session, plain = await sessions.start("u1")
    clock.advance(idle_for)
    assert (await sessions.resolve(plain) is not None) is live
    assert (session.session_hash in store.sessions) is live


async def test_a_session_ends_at_its_absolute_expiry_however_active(
    sessions: Sessions, clock: FrozenClock
) -> None:
    session, plain = await sessions.start("u1")
    while clock.now() + IDLE // 2 < session.expires_at:
        clock.advance(IDLE // 2)
        assert await sessions.resolve(plain) is not None
    clock.advance(session.expires_at - clock.now() - 1)
    assert await sessions.resolve(plain) is not None
    clock.advance(1)
    assert await sessions.resolve(plain) is None


async def test_activity_is_written_at_most_every_minute(
    sessions: Sessions, store: MemoryStore, clock: FrozenClock
) -> None:
    session, plain = await sessions.start("u1")
    start = session.last_seen_at
    clock.advance(TOUCH_EVERY - 1)
    await sessions.resolve(plain)
    assert store.sessions[session.session_hash].last_seen_at == start
    clock.advance(1)
    await sessions.resolve(plain)
    assert store.sessions[session.session_hash].last_seen_at == start + TOUCH_EVERY


async def test_login_replaces_the_session_it_came_from(
    sessions: Sessions, store: MemoryStore
) -> None:
    anonymous, before = await sessions.start()
    session, after = await sessions.rotate(anonymous, "u1")
    assert after != before and session.user_id == "u1"
    assert await sessions.resolve(before) is None
    assert list(store.sessions) == [session.session_hash]
    await sessions.end(session)
    assert await sessions.resolve(after) is None


@pytest.mark.parametrize(
    ("user_id", "disable", "found"),
    [
        ("u1", None, "u1"),
        ("op", None, "op"),
        ("u1", "user", None),
        ("u1", "merchant", None),
        ("gone", None, None),
        (None, None, None),
    ],
    ids=["member", "operator", "user-disabled", "merchant-disabled", "unknown-user", "anon"],
)
async def test_the_user_of_a_session_is_one_still_allowed_to_act(
    sessions: Sessions,
    store: MemoryStore,
    user_id: str | None,
    disable: str | None,
    found: str | None,
) -> None:
    session, _ = await sessions.start(user_id)
    if disable == "user":
        await store.disable_user("u1", 2.0)
    if disable == "merchant":
        await store.disable_merchant("m1", 2.0)
    user = await sessions.user_of(session)
    assert (user.user_id if user else None) == found
