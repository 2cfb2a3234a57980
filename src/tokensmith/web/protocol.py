"""The HTTP/1.1 protocol ``tokensmith serve`` runs: uvicorn's httptools protocol, with the
writes of one event-loop pass sent as one, read deadlines, and a cap on connections.

uvicorn writes a response's status line and headers, then its body, as two writes, so a
small JSON answer leaves as two TCP segments and the client often wakes twice to read it.
Here both go out in one ``send``: the writes are held until the end of the loop pass in
which they were made. Nothing else changes: the order of bytes, flow control (the real
transport still pauses and resumes the protocol) and closing, which first sends what is
held.

A connection holds a file descriptor, so one that sends no request must not hold it for
long (docs/operations.md, "Connections and timeouts"):

* a request's line and headers must arrive within ``header_timeout`` seconds, counted from
  the connection's start for its first request and from its first byte for the next: a
  client sending one header line a second (slowloris) is cut off all the same; it is
  answered ``408 Request Timeout`` (RFC 9110 §15.5.9) when it had begun a request;
* a body must arrive within ``body_timeout`` seconds of its headers (the application
  then sees the client disconnect);
* between requests, uvicorn's keep-alive timeout applies;
* a worker holds at most ``max_connections``: one more closes the connection idle
  longest (no request under way), or, when every one is busy, is answered ``503`` and
  closed.

A deadline is one ``loop.call_later`` timer, armed only when a read ends with a request
half received; a request that arrives in one read (a token request does) arms none.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["CoalescingTransport", "ConnectionLimits", "HttpProtocol"]

#: What a connection is reading: nothing (between requests), headers, a body.
_IDLE, _HEADERS, _BODY = 0, 1, 2

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\n"
    b"connection: close\r\n\r\n"
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may take to send a request, and how many a worker holds."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    def protocol(self) -> functools.partial[HttpProtocol]:
        """The protocol factory uvicorn's ``http`` option takes (picklable, for workers)."""
        return functools.partial(HttpProtocol, limits=self)


#: The open connections of each server (each worker runs one), the one idle longest
#: first: a connection moves to the end when it finishes a response.
_OPEN: weakref.WeakKeyDictionary[ServerState, OrderedDict[HttpProtocol, None]] = (
    weakref.WeakKeyDictionary()
)


class CoalescingTransport:
    """A transport that holds the writes of one loop pass and hands them on in one."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, with the read
    deadlines and the connection cap of :class:`ConnectionLimits`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits or ConnectionLimits()
        self._reading = _IDLE
        self._read_deadline: asyncio.TimerHandle | None = None
        self._open = _OPEN.setdefault(server_state, OrderedDict())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real = cast(asyncio.Transport, transport)
        super().connection_made(CoalescingTransport(real, self.loop))  # type: ignore[arg-type]
        if len(self._open) >= self._limits.max_connections and not self._close_idlest():
            self.transport.write(_REFUSED)
            self.transport.close()
            return
        self._open[self] = None
        self._read_deadline = self.loop.call_later(
            self._limits.header_timeout, self._read_timed_out
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.pop(self, None)
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading and self._read_deadline is None and not self.transport.is_closing():
            limits = self._limits
            timeout = limits.header_timeout if self._reading == _HEADERS else limits.body_timeout
            self._read_deadline = self.loop.call_later(timeout, self._read_timed_out)

    def handle_websocket_upgrade(self) -> None:
        """The connection passes to the websocket protocol (the application refuses it:
        tokensmith has no websocket route), which closes it: this one lets go of it, or
        its place under the cap would never be given back."""
        self._open.pop(self, None)
        self._cancel_read_deadline()
        super().handle_websocket_upgrade()

    # parser callbacks: what the connection is reading
    def on_message_begin(self) -> None:
        self._reading = _HEADERS
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._reading = _BODY
        if self._read_deadline is not None:
            self._cancel_read_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading = _IDLE
        if self._read_deadline is not None:
            self._cancel_read_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self in self._open:  # not when it was closed to make room
            self._open.move_to_end(self)

    def _cancel_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        """Close a connection whose request did not arrive in time; a read that the server
        itself paused (a pipelined request waits, or a body is buffered) gets more time."""
        self._read_deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            limits = self._limits
            timeout = limits.body_timeout if self._reading == _BODY else limits.header_timeout
            self._read_deadline = self.loop.call_later(timeout, self._read_timed_out)
            return
        if self._reading == _HEADERS and self._is_idle():
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def _is_idle(self) -> bool:
        """No request of this connection is being answered."""
        return self._reading != _BODY and (self.cycle is None or self.cycle.response_complete)

    def _close_idlest(self) -> bool:
        """Close the connection idle longest, if one is idle: room for a new one."""
        for connection in self._open:
            if connection._is_idle() and not connection.transport.is_closing():
                del self._open[connection]
                connection._cancel_read_deadline()
                connection.transport.close()
                return True
        return False
