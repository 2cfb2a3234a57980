"""Fetching clients' JWK Sets from their ``jwks_uri`` (RFC 7591 §2) over HTTP, for
``private_key_jwt`` (:mod:`tokensmith.core.client_assertion`).

A ``jwks_uri`` is a URL a client chose, fetched by the server: the fetch is kept narrow
against server-side request forgery and slow or large answers. Only https (http on a
loopback host, when the server is on loopback itself), no redirects, no proxy from the
environment, a deadline over the whole fetch (``timeout``, a body trickled slowly counts
too) and at most ``max_bytes`` read.

The host is resolved here, every address it resolves to must be public
(:func:`~tokensmith.core.addresses.address_refusal`: no private, loopback, link-local,
metadata, multicast, reserved address, nor one hidden in IPv6), and the connection goes to
the address that was checked (:class:`GuardedBackend`, the connection pool's network
backend), so a name that resolves otherwise a moment later (DNS rebinding) changes
nothing. TLS still verifies the certificate against the URL's host name.

Every failure is a :class:`~tokensmith.core.ports.JwksUnavailable`, which the
authenticator answers as ``invalid_client``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from tokensmith.core.addresses import address_refusal, host_refusal
from tokensmith.core.client_assertion import MAX_JWKS_BYTES, check_jwks_uri
from tokensmith.core.ports import JwksUnavailable

__all__ = ["GuardedBackend", "HttpJwksFetcher", "Resolver", "guarded_transport", "resolve"]

#: ``(host, port)`` -> the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]
#: At most this many addresses of one name are checked.
MAX_ADDRESSES = 32


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver (``getaddrinfo``, TCP), addresses in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to public addresses: it resolves the host,
    refuses if any address is not public, and connects to the first address it checked,
    never to the name (which a resolver could answer otherwise the second time)."""

    def __init__(
        self,
        resolver: Resolver = resolve,
        *,
        allow_loopback: bool = False,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolve = resolver
        self._allow_loopback = allow_loopback
        self._inner = inner or httpcore.AnyIOBackend()

    async def checked_address(self, host: str, port: int) -> str:
        """The address to connect to; :class:`JwksUnavailable` if the host is refused."""
        refusal = host_refusal(host, allow_loopback=self._allow_loopback)
        if refusal is not None:
            raise JwksUnavailable(f"{host} is not a public address: {refusal}")
        try:
            found = await self._resolve(host.strip("[]"), port)
        except (OSError, UnicodeError):
            raise JwksUnavailable(f"{host} does not resolve") from None
        if not found or len(found) > MAX_ADDRESSES:
            raise JwksUnavailable(f"{host} does not resolve to a usable address")
        for text in found:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                raise JwksUnavailable(f"{host} resolves to something not an address") from None
            refusal = address_refusal(ip, allow_loopback=self._allow_loopback)
            if refusal is not None:
                raise JwksUnavailable(f"{host} resolves to {refusal}")
        return found[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.checked_address(host, port)
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise JwksUnavailable("a jwks_uri is fetched over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(backend: GuardedBackend) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its connection pool on ``backend``. httpx takes no network
    backend, so its pool is replaced by one made the same way (TLS verified, no proxy)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=10,
        keepalive_expiry=5.0,
        network_backend=backend,
    )
    return transport


_ACCEPT = "application/jwk-set+json, application/json"


class HttpJwksFetcher:
    """:class:`~tokensmith.core.ports.JwksFetcher` over httpx; one connection pool, made
    at the first fetch."""

    def __init__(
        self,
        timeout: float = 3.0,
        max_bytes: int = MAX_JWKS_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        allow_loopback: bool = False,
        resolver: Resolver = resolve,
    ) -> None:
        """``transport`` replaces the guarded one (tests); ``allow_loopback`` for a server
        on loopback itself; ``resolver`` looks host names up."""
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._allow_loopback = allow_loopback
        self._transport = transport or guarded_transport(
            GuardedBackend(resolver, allow_loopback=allow_loopback)
        )
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
                transport=self._transport,
                headers={"accept": _ACCEPT},
            )
        return self._client

    async def fetch(self, uri: str) -> bytes:
        try:
            check_jwks_uri(uri, allow_loopback=self._allow_loopback)
        except ValueError as exc:
            raise JwksUnavailable(str(exc)) from None
        try:
            async with asyncio.timeout(self._timeout):
                return await self._read(uri)
        except TimeoutError:
            raise JwksUnavailable(f"no answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"the fetch failed ({type(exc).__name__})") from None

    async def _read(self, uri: str) -> bytes:
        async with self._http().stream("GET", uri) as response:
            if response.status_code != 200:
                raise JwksUnavailable(f"it answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise JwksUnavailable(f"the JWK Set is larger than {self._max_bytes} bytes")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise JwksUnavailable(f"the JWK Set is larger than {self._max_bytes} bytes")
            return body

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
