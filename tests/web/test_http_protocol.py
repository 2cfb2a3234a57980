"""The HTTP protocol of ``tokensmith serve`` (:mod:`tokensmith.web.protocol`): a response
leaves in one write, bytes keep their order, closing sends what is held.

The protocol is driven the way uvicorn drives it: a transport is handed to
``connection_made`` and request bytes to ``data_received``, on a running event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from tokensmith.cli.serve import uvicorn_options
from tokensmith.settings import Settings
from tokensmith.web.protocol import CoalescingTransport, HttpProtocol

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST = b"POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"


class FakeTransport:
    """Records what is written; enough of a transport for uvicorn's protocol."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True
        self.kept_alive = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def json_app(scope: Message, receive: Receive, send: Send) -> None:
    """A small fixed answer, sent as uvicorn apps do: start, then body."""
    await receive()
    body = b'{"access_token":"x"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"20")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def streaming_app(scope: Message, receive: Receive, send: Send) -> None:
    """Chunks with loop passes between them, each of which must go out when made."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for chunk in (b"one", b"two", b"three"):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b""})


def connect(app: Any) -> tuple[HttpProtocol, FakeTransport]:
    """The protocol serving ``app`` on a fresh connection, as uvicorn starts it."""
    config = Config(app=app, lifespan="off", access_log=False, server_header=False)
    config.load()
    transport = FakeTransport()
    protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def serve(app: Any, data: bytes, responses: int = 1) -> FakeTransport:
    """Feed ``data`` to a fresh connection and wait until ``responses`` have been sent."""
    protocol, transport = connect(app)
    done: list[None] = []
    original = protocol.on_response_complete

    def counted() -> None:
        done.append(None)
        original()

    protocol.on_response_complete = counted  # type: ignore[method-assign]
    protocol.data_received(data)
    for _ in range(200):
        if len(done) >= responses and not getattr(protocol.transport, "_pending", None):
            break
        await asyncio.sleep(0)
    transport.kept_alive = not transport.closed
    protocol.connection_lost(None)
    return transport


async def test_response_leaves_in_one_write() -> None:
    transport = await serve(json_app, REQUEST)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b'{"access_token":"x"}'


async def test_pipelined_responses_keep_their_order() -> None:
    transport = await serve(json_app, REQUEST * 3, responses=3)
    wire = b"".join(transport.writes)
    assert wire.count(b"HTTP/1.1 200 OK") == 3
    assert wire.endswith(b'{"access_token":"x"}')
    assert transport.kept_alive


async def test_streamed_chunks_leave_in_order_as_they_are_made() -> None:
    transport = await serve(streaming_app, REQUEST)
    wire = b"".join(transport.writes)
    body = wire.partition(b"\r\n\r\n")[2]
    assert body == b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n"
    assert len(transport.writes) > 1, "chunks made in later loop passes were held back"


async def test_100_continue_goes_out_before_the_body_arrives() -> None:
    """RFC 9110 §10.1.1: a client that sent ``Expect: 100-continue`` waits for the interim
    answer before it sends the body, so that answer must not be held for the final one."""
    head = b"POST /oauth/token HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
    protocol, transport = connect(json_app)
    protocol.data_received(head + b"Content-Length: 2\r\n\r\n")
    for _ in range(20):
        await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"ab")
    for _ in range(20):
        await asyncio.sleep(0)
    assert transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].endswith(b'{"access_token":"x"}')
    protocol.connection_lost(None)


async def test_close_sends_what_is_held_first() -> None:
    real = FakeTransport()
    coalescing = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalescing.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    coalescing.write(memoryview(b"body"))
    coalescing.close()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\nbody"]
    assert real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\nbody"], "the later flush wrote twice"


async def test_nothing_is_written_once_the_connection_is_closing() -> None:
    real = FakeTransport()
    coalescing = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalescing.write(b"late")
    real.closed = True
    assert coalescing.is_closing()
    await asyncio.sleep(0)
    assert real.writes == []


@pytest.mark.parametrize("attribute", ["get_extra_info", "pause_reading", "resume_reading"])
async def test_other_transport_calls_reach_the_real_transport(attribute: str) -> None:
    real = FakeTransport()
    coalescing = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert getattr(coalescing, attribute).__self__ is real


def test_serve_runs_this_protocol() -> None:
    options = uvicorn_options(Settings(secret_key="protocol-Lq5Wz8Kt3Rb6Vm1Hx9Dc4Nf7Gs2Jp0Y"))
    assert options["http"].func is HttpProtocol


class CountingLoop:
    """The running loop, counting the timers armed through it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timers = 0

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        self.timers += 1
        return self.loop.call_later(delay, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)


async def timers_for(*reads: bytes, responses: int) -> int:
    """Timers a fresh connection arms to take ``reads`` and send ``responses``."""
    config = Config(app=json_app, lifespan="off", access_log=False, server_header=False)
    config.load()
    loop = CountingLoop(asyncio.get_running_loop())
    protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)  # type: ignore[arg-type]
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        protocol.data_received(data)
        for _ in range(50):
            await asyncio.sleep(0)
    assert b"".join(transport.writes).count(b"HTTP/1.1 200 OK") == responses
    protocol.connection_lost(None)
    return loop.timers


async def test_a_request_in_one_read_arms_no_deadline_of_its_own() -> None:
    """The token path's cost: one deadline for the connection's first headers, then per
    request only uvicorn's keep-alive timer, armed as before."""
    assert await timers_for(REQUEST, REQUEST, REQUEST, responses=3) == 1 + 3


async def test_a_request_split_across_reads_arms_one_deadline_a_part() -> None:
    head, _, body = REQUEST.partition(b"\r\n\r\n")
    reads = (head[:20], head[20:] + b"\r\n\r\n" + body[:1], body[1:])
    # the connection's deadline covers the first headers; then a body deadline and the
    # keep-alive timer; the second request: headers, body, keep-alive
    assert await timers_for(*reads, *reads, responses=2) == 1 + 2 + 3


@pytest.mark.parametrize(
    ("nofile", "cap", "backlog"),
    [(65536, 1000, 2048), (1024, 675, 225), (256, 99, 33)],
    ids=["65536", "1024", "256"],
)
def test_serve_fits_the_connection_cap_under_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch, nofile: int, cap: int, backlog: int
) -> None:
    """Defaults: headers 10 s, body 30 s, keep-alive 5 s, 1000 connections a worker, as
    many as the open-file limit leaves after 64 + 3 a pooled database connection and the
    listen backlog (a quarter of the rest, at most 2048)."""
    monkeypatch.setattr("resource.getrlimit", lambda _: (nofile, nofile))
    options = uvicorn_options(Settings(secret_key="protocol-Lq5Wz8Kt3Rb6Vm1Hx9Dc4Nf7Gs2Jp0Y"))
    limits = options["http"].keywords["limits"]
    assert (limits.header_timeout, limits.body_timeout, options["timeout_keep_alive"]) == (
        10.0,
        30.0,
        5.0,
    )
    assert (limits.max_connections, options["backlog"]) == (cap, backlog)
