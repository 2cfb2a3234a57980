"""Client authentication under parallel attempts (RFC 6749 §10.10): what was counted while
an attempt was in flight decides its answer, so a burst tests no more secrets than the
same attempts one after another."""

from __future__ import annotations

import asyncio

from tokensmith.core.admin import ClientSpec, create_client
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.clock import FrozenClock
from tokensmith.core.errors import InvalidClient, RateLimited
from tokensmith.core.models import Client
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.requests import ClientCredentials
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

SOURCE = "198.51.100.1"


class GatedClients:
    """A client store whose reads wait at a gate: attempts pile up between the limit check
    and the comparison of their secrets, as they do behind a slow database."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = 0

    async def get_client(self, client_id: str) -> Client | None:
        self.waiting += 1
        await self.gate.wait()
        return await self.inner.get_client(client_id)


def _creds(client_id: str, secret: str) -> ClientCredentials:
    return ClientCredentials(client_id, secret, "client_secret_basic")


async def test_the_right_secret_behind_ten_pending_wrong_guesses_is_refused(
    clock: FrozenClock,
) -> None:
    store = MemoryStore()
    client, secret = await create_client(
        store, clock, SystemRandomness(), ClientSpec(name="c", scope="read"), 86400
    )
    assert secret is not None
    clients = GatedClients(store)
    auth = ClientAuthenticator(clients, clock, MemoryLimiter(clock), FailureLimits())  # type: ignore[arg-type]
    guesses = [_creds(client.client_id, f"wrong-{i}") for i in range(10)]
    guesses.append(_creds(client.client_id, secret))  # the eleventh guess is the right one
    attempts = [asyncio.create_task(auth.authenticate(c, SOURCE)) for c in guesses]
    while clients.waiting < len(attempts):  # every attempt passed the limit check
        await asyncio.sleep(0)
    clients.gate.set()
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert [type(r) for r in results[:10]] == [InvalidClient] * 10
    # sequentially the eleventh attempt is refused with 429, right secret or not
    assert isinstance(results[10], RateLimited), results[10]
