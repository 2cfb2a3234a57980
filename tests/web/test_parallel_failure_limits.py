"""Failure limits hold under parallel bursts (RFC 6749 §10.10, NIST SP 800-63B §5.2.2).

Attempts are counted atomically, so a burst sent all at once gets no more guesses answered
than the same attempts sent one by one: at most ``limit`` wrong client secrets are answered
with 401 (the rest 429), and at most ``limit`` passwords are verified at all. Both hold in
one process and across instances sharing Redis. An attacker who knows a client_id cannot
lock the client out: failures count per client and source address, and per address.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Harness
from tests.partner import PASSWORD, Partner, csrf_of, make_partner
from tests.web.test_rate_limiting import TBC, Limited, client_from, redis_apps, skip_without_redis
from tokensmith.core.clock import FrozenClock
from tokensmith.core.passwords import Passwords

BURST = 60


def _statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in answers)


@pytest.fixture
async def lim(harness: Harness) -> Limited:
    from tests.web.test_rate_limiting import _limited

    return await _limited(harness)


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every password :class:`Passwords` verifies in this process, in order."""
    seen: list[str] = []
    original = Passwords.verify

    async def spy(self: Passwords, stored_hash: str | None, password: str) -> bool:
        seen.append(password)
        return await original(self, stored_hash, password)

    monkeypatch.setattr(Passwords, "verify", spy)
    yield seen


# -- client secrets ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/oauth/token", TBC])
async def test_a_parallel_burst_of_wrong_secrets_gets_ten_answers(
    lim: Limited, endpoint: str
) -> None:
    client, _ = await lim.h.client()
    answers = await asyncio.gather(
        *(lim.attempt(endpoint, client.client_id, f"wrong-{i}") for i in range(BURST))
    )
    assert _statuses(answers) == {400 if endpoint == TBC else 401: 10, 429: BURST - 10}


async def test_a_parallel_burst_of_unknown_clients_from_one_address_gets_thirty_answers(
    lim: Limited,
) -> None:
    answers = await asyncio.gather(
        *(
            lim.attempt("/oauth/token", "guess" + secrets.token_hex(6), "wrong")
            for _ in range(BURST)
        )
    )
    assert _statuses(answers) == {401: 30, 429: BURST - 30}


async def test_a_flood_from_one_address_does_not_lock_the_client_out_elsewhere(
    lim: Limited,
) -> None:
    client, secret = await lim.h.client()
    async with client_from(lim.h, "198.51.100.66") as attacker:
        flood = [
            await lim.attempt("/oauth/token", client.client_id, f"guess-{i}", http=attacker)
            for i in range(20)
        ]
        assert [r.status_code for r in flood] == [401] * 10 + [429] * 10
        # the attacker's address stays throttled, whatever it sends
        r = await lim.attempt("/oauth/token", client.client_id, secret, http=attacker)
        assert r.status_code == 429
    async with client_from(lim.h, "192.0.2.10") as real:
        for endpoint in ("/oauth/token", "/o/token/", "/oauth/auth", TBC):
            r = await lim.attempt(endpoint, client.client_id, secret, http=real)
            assert r.status_code == 200, (endpoint, r.text)
        # and from its own address a wrong guess is still answered
        r = await lim.attempt("/oauth/token", client.client_id, "wrong", http=real)
        assert r.status_code == 401


@pytest.mark.redis
@skip_without_redis
async def test_two_instances_sharing_redis_answer_ten_of_a_parallel_burst(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with redis_apps(tmp_path, clock, 2) as [a, b]:
        client, secret = await a.h.client()
        answers = await asyncio.gather(
            *(
                (a, b)[i % 2].attempt("/oauth/token", client.client_id, f"wrong-{i}")
                for i in range(BURST)
            )
        )
        assert _statuses(answers) == {401: 10, 429: BURST - 10}
        async with client_from(b.h, "192.0.2.10") as real:
            r = await b.attempt("/oauth/token", client.client_id, secret, http=real)
        assert r.status_code == 200


# -- logins --------------------------------------------------------------------------------


async def _login_form(http: httpx.AsyncClient) -> dict[str, str]:
    page = await http.get("/login")
    return {"csrf_token": csrf_of(page.text), "next": "/account/apps"}


async def _logins(http: httpx.AsyncClient, attempts: list[tuple[str, str]]) -> list[httpx.Response]:
    form = await _login_form(http)
    return list(
        await asyncio.gather(
            *(
                http.post("/login", data={**form, "email": email, "password": password})
                for email, password in attempts
            )
        )
    )


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await make_partner(harness)


async def test_a_parallel_burst_of_wrong_passwords_verifies_five(
    partner: Partner, verified: list[str]
) -> None:
    attempts = [(partner.user.email, f"wrong password {i}") for i in range(30)]
    answers = await _logins(partner.http, attempts)
    assert _statuses(answers) == {400: 5, 429: 25}
    assert len(verified) == 5
    # the account stays throttled for the right password too, and nothing more is verified
    assert (await partner.login()).status_code == 429
    assert len(verified) == 5


async def test_a_parallel_burst_of_logins_from_one_address_verifies_twenty(
    partner: Partner, verified: list[str]
) -> None:
    attempts = [(f"guess{i}@shop.test", "wrong password") for i in range(BURST)]
    answers = await _logins(partner.http, attempts)
    assert _statuses(answers) == {400: 20, 429: BURST - 20}
    assert len(verified) == 20


@pytest.fixture
async def redis_pair(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[list[Limited]]:
    async with redis_apps(tmp_path, clock, 2) as apps:
        yield apps


@pytest.mark.redis
@skip_without_redis
async def test_two_instances_sharing_redis_verify_five_of_a_parallel_burst(
    redis_pair: list[Limited], verified: list[str]
) -> None:
    a, b = redis_pair
    partner = await make_partner(a.h)
    email = partner.user.email
    answers = await asyncio.gather(
        _logins(a.h.http, [(email, f"wrong password a{i}") for i in range(15)]),
        _logins(b.h.http, [(email, f"wrong password b{i}") for i in range(15)]),
    )
    assert _statuses(answers[0] + answers[1]) == {400: 5, 429: 25}
    assert len(verified) == 5
    form = await _login_form(b.h.http)
    r = await b.h.http.post("/login", data={**form, "email": email, "password": PASSWORD})
    assert r.status_code == 429
