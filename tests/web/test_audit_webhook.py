"""The audit webhook: each event POSTed once a 2xx says so, signed so a receiver can
verify it, retried with backoff after a failure, dead-lettered after the last attempt, and
never sent by two deliverers at once. The receiver is an ``httpx.MockTransport``, or a
Starlette app on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokensmith.core.audit import Audit, sign_webhook, verify_webhook
from tokensmith.core.clock import FrozenClock
from tokensmith.core.ports import Store
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.sql import SqlStore
from tokensmith.web.audit_webhook import WebhookDeliverer

SECRET = "whsec-test-0123456789abcdef"
URL = "https://hooks.example.test/audit"


class Receiver:
    """Answers each POST with the next of ``statuses`` (then 200), keeping what came."""

    def __init__(self, *statuses: int, delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.got: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.got.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


def _deliverer(
    store: Store, clock: FrozenClock, receiver: Callable[..., object], **kw: object
) -> WebhookDeliverer:
    return WebhookDeliverer(
        store, clock, SystemRandomness(), url=URL, secret=SECRET,
        transport=httpx.MockTransport(receiver), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def _events(store: Store, clock: FrozenClock, n: int = 1) -> list[str]:
    audit = Audit(store, clock, SystemRandomness(), deliver=True)
    return [
        (await audit.record("client.created", actor="cli", subject=f"c{i}")).id for i in range(n)
    ]


async def test_an_event_is_delivered_signed_and_its_row_deleted() -> None:
    store, clock, receiver = MemoryStore(), FrozenClock(), Receiver()
    (eid,) = await _events(store, clock)
    assert await _deliverer(store, clock, receiver).deliver_once() == 1
    (request,) = receiver.got
    body = request.content
    assert json.loads(body)["id"] == eid and json.loads(body)["type"] == "client.created"
    assert request.headers["tokensmith-event-id"] == eid
    header = request.headers["tokensmith-signature"]
    assert header == sign_webhook(SECRET, int(clock.now()), body)
    assert verify_webhook(SECRET, header, body, clock.now())
    assert not store.audit_outbox


@pytest.mark.parametrize(
    ("secret", "body", "now_offset"),
    [
        ("another-secret-entirely", None, 0),  # not our key
        (SECRET, b'{"type":"forged"}', 0),  # a changed body
        (SECRET, None, 301),  # replayed after five minutes
        (SECRET, None, -301),
    ],
    ids=["wrong-secret", "changed-body", "replayed-late", "from-the-future"],
)
async def test_a_receiver_refuses_what_the_signature_does_not_cover(
    secret: str, body: bytes | None, now_offset: int
) -> None:
    store, clock, receiver = MemoryStore(), FrozenClock(), Receiver()
    await _events(store, clock)
    await _deliverer(store, clock, receiver).deliver_once()
    (request,) = receiver.got
    header = request.headers["tokensmith-signature"]
    sent = request.content if body is None else body
    assert not verify_webhook(secret, header, sent, clock.now() + now_offset)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1", "garbage"])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    assert not verify_webhook(SECRET, header, b"{}", 1.0)


async def test_a_failure_is_retried_after_a_backoff_then_delivered_once() -> None:
    store, clock = MemoryStore(), FrozenClock()
    receiver = Receiver(503, 500)
    (eid,) = await _events(store, clock)
    d = _deliverer(store, clock, receiver, base_delay=10.0)
    assert await d.deliver_once() == 0
    row = store.audit_outbox[eid]
    assert row.attempts == 1 and row.last_error == "HTTP 503" and row.lease_owner is None
    assert 5.0 <= row.next_at - clock.now() < 10.0  # 10 s times a jitter in [0.5, 1)
    assert await d.deliver_once() == 0 and len(receiver.got) == 1  # not due yet
    clock.advance(10)
    assert await d.deliver_once() == 0
    assert 10.0 <= store.audit_outbox[eid].next_at - clock.now() < 20.0  # doubled
    clock.advance(20)
    assert await d.deliver_once() == 1
    assert len(receiver.got) == 3 and not store.audit_outbox
    assert len({r.content for r in receiver.got}) == 1  # the same body each time


async def test_a_transport_error_counts_as_a_failed_attempt() -> None:
    store, clock = MemoryStore(), FrozenClock()
    (eid,) = await _events(store, clock)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert await _deliverer(store, clock, refuse).deliver_once() == 0
    assert store.audit_outbox[eid].last_error == "the request failed (ConnectError)"


async def test_after_the_last_attempt_a_delivery_is_dead_until_an_operator_retries_it() -> None:
    store, clock = MemoryStore(), FrozenClock()
    receiver = Receiver(*[500] * 3)
    (eid,) = await _events(store, clock)
    d = _deliverer(store, clock, receiver, max_attempts=3)
    for _ in range(5):
        await d.deliver_once()
        clock.advance(7200)
    assert len(receiver.got) == 3  # no fourth attempt
    audit = Audit(store, clock, SystemRandomness(), reader=store, outbox=store)
    (dead,) = await audit.dead_letters()
    assert dead.event_id == eid and dead.attempts == 3
    from tokensmith.core.audit import By

    assert await audit.retry_delivery(eid, By.user("u_ops")) is True
    assert await d.deliver_once() == 1 and len(receiver.got) == 4
    assert await audit.dead_letters() == []
    retried = [e for e in store.audit_events.values() if e.type == "audit.delivery_retried"]
    assert [(e.actor, e.subject) for e in retried] == [("user:u_ops", eid)]


async def test_two_deliverers_never_send_one_row_twice(sql_store: SqlStore) -> None:
    """Two instances on one database, racing: each row goes to one of them, once."""
    clock = FrozenClock()
    ids = await _events(sql_store, clock, 30)
    receiver = Receiver(delay=0.001)
    a = _deliverer(sql_store, clock, receiver)
    b = _deliverer(sql_store, clock, receiver)
    sent = await asyncio.gather(a.deliver_once(), b.deliver_once(), a.deliver_once())
    while sum(sent) < 30:
        sent.append(await a.deliver_once())
    got = [r.headers["tokensmith-event-id"] for r in receiver.got]
    assert sorted(got) == sorted(ids)  # every row once, none twice


@contextlib.asynccontextmanager
async def _loopback(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


async def test_a_receiver_on_a_loopback_port_verifies_each_delivery() -> None:
    """A receiver as the docs write it: verify the raw body, answer 2xx only then."""
    verified: list[str] = []
    attempts = 0

    async def hook(request: Request) -> Response:
        nonlocal attempts
        attempts += 1
        body = await request.body()
        if attempts == 1:
            return Response(status_code=502)  # down at first
        header = request.headers.get("tokensmith-signature", "")
        if not verify_webhook(SECRET, header, body, clock.now()):
            return Response(status_code=401)
        verified.append(json.loads(body)["id"])
        return Response(status_code=204)

    store, clock = MemoryStore(), FrozenClock()
    (eid,) = await _events(store, clock)
    async with _loopback(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        d = WebhookDeliverer(store, clock, SystemRandomness(), url=url, secret=SECRET)
        try:
            assert await d.deliver_once() == 0
            clock.advance(3600)
            assert await d.deliver_once() == 1
        finally:
            await d.aclose()
    assert verified == [eid] and not store.audit_outbox


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOKENSMITH_AUDIT_WEBHOOK_URL": URL}, "at least 16 characters"),
        (
            {"TOKENSMITH_AUDIT_WEBHOOK_URL": URL, "TOKENSMITH_AUDIT_WEBHOOK_SECRET": "short"},
            "at least 16 characters",
        ),
        (
            {
                "TOKENSMITH_AUDIT_WEBHOOK_URL": "ftp://h/x",
                "TOKENSMITH_AUDIT_WEBHOOK_SECRET": SECRET,
            },
            "https://",
        ),
    ],
    ids=["no-secret", "short-secret", "not-http"],
)
def test_a_webhook_without_a_usable_secret_or_url_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    from tokensmith.settings import ConfigError, load_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(None)
    assert "short" not in str(caught.value)  # the secret is not echoed
