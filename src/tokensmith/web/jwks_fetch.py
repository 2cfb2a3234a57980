"""Fetching clients' JWK Sets from their ``jwks_uri`` (RFC 7591 §2) over HTTP, for
``private_key_jwt`` (:mod:`tokensmith.core.client_assertion`).

A ``jwks_uri`` is a URL a client chose, fetched by the server: the fetch is kept narrow
against server-side request forgery and slow or large answers. Only https (http on a
loopback host), no redirects, no proxy from the environment, a deadline over the whole
fetch (``timeout``, a body trickled slowly counts too) and at most ``max_bytes`` read.
Every failure is a :class:`~tokensmith.core.ports.JwksUnavailable`, which the
authenticator answers as ``invalid_client``.
"""

from __future__ import annotations

import asyncio

import httpx

from tokensmith.core.client_assertion import MAX_JWKS_BYTES, check_jwks_uri
from tokensmith.core.ports import JwksUnavailable

__all__ = ["HttpJwksFetcher"]

_ACCEPT = "application/jwk-set+json, application/json"


class HttpJwksFetcher:
    """:class:`~tokensmith.core.ports.JwksFetcher` over httpx; one connection pool, made
    at the first fetch."""

    def __init__(
        self,
        timeout: float = 3.0,
        max_bytes: int = MAX_JWKS_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._transport = transport
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
            check_jwks_uri(uri)
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
