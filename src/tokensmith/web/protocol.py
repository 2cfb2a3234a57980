"""The HTTP/1.1 protocol ``tokensmith serve`` runs: uvicorn's httptools protocol, with the
writes of one event-loop pass sent as one.

uvicorn writes a response's status line and headers, then its body, as two writes, so a
small JSON answer leaves as two TCP segments and the client often wakes twice to read it.
Here both go out in one ``send``: the writes are held until the end of the loop pass in
which they were made. Nothing else changes: the order of bytes, flow control (the real
transport still pauses and resumes the protocol) and closing, which first sends what is
held.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingTransport", "HttpProtocol"]


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
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real = cast(asyncio.Transport, transport)
        super().connection_made(CoalescingTransport(real, self.loop))  # type: ignore[arg-type]
