"""Password hashes made with older argon2 parameters are upgraded at the next successful
login (RFC 9106 §4: parameters are chosen for the hardware of the day)."""

from __future__ import annotations

import pytest

from tests.partner import FAST_PASSWORDS, PASSWORD
from tokensmith.core.accounts import LoginLimits, LoginRefused, LoginService, create_user
from tokensmith.core.admin import create_merchant
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import User
from tokensmith.core.passwords import Passwords
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

#: The parameters of :class:`Passwords` today, as an argon2 hash spells them.
CURRENT = "$argon2id$v=19$m=19456,t=2,p=1$"


async def _weakly_hashed_user(store: MemoryStore, clock: FrozenClock) -> User:
    rand = SystemRandomness()
    merchant = await create_merchant(store, clock, rand, "Shop")
    return await create_user(
        store,
        store,
        FAST_PASSWORDS,  # m=8192, t=1: what an older release might have used
        clock,
        rand,
        email="ann@shop.test",
        password=PASSWORD,
        merchant=merchant.merchant_id,
    )


@pytest.fixture
async def store() -> MemoryStore:
    return MemoryStore()


def _login(store: MemoryStore, clock: FrozenClock) -> LoginService:
    return LoginService(store, store, Passwords(), MemoryLimiter(clock), LoginLimits())


async def test_a_login_upgrades_a_hash_made_with_older_parameters(
    store: MemoryStore, clock: FrozenClock
) -> None:
    user = await _weakly_hashed_user(store, clock)
    assert not user.password_hash.startswith(CURRENT)
    assert Passwords().needs_rehash(user.password_hash)
    logged_in = await _login(store, clock).login(user.email, PASSWORD, "192.0.2.1")
    stored = await store.get_user(user.user_id)
    assert stored is not None and stored.password_hash.startswith(CURRENT)
    assert stored.password_hash != user.password_hash and logged_in == stored
    assert await Passwords().verify(stored.password_hash, PASSWORD)
    # the upgraded hash needs nothing more: the next login writes nothing
    await _login(store, clock).login(user.email, PASSWORD, "192.0.2.1")
    assert await store.get_user(user.user_id) == stored


async def test_a_failed_login_does_not_rehash(store: MemoryStore, clock: FrozenClock) -> None:
    user = await _weakly_hashed_user(store, clock)
    with pytest.raises(LoginRefused):
        await _login(store, clock).login(user.email, "not the password", "192.0.2.1")
    assert await store.get_user(user.user_id) == user


async def test_a_disabled_user_is_not_rehashed(store: MemoryStore, clock: FrozenClock) -> None:
    user = await _weakly_hashed_user(store, clock)
    await store.disable_user(user.user_id, clock.now())
    with pytest.raises(LoginRefused):
        await _login(store, clock).login(user.email, PASSWORD, "192.0.2.1")
    stored = await store.get_user(user.user_id)
    assert stored is not None and stored.password_hash == user.password_hash
