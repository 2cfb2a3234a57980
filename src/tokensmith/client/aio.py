"""The asyncio token client."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, Self

import httpx
import orjson

from ._base import (
    DEFAULT_LIFETIME,
    DEFAULT_TIMEOUT,
    AuthMethod,
    ClientCert,
    Dialect,
    GrantKind,
    PrivateKeyInput,
    RetryPolicy,
    TokenError,
    _ClientBase,
    _Entry,
    _Prepared,
    choose_from_metadata,
    is_invalid_token_challenge,
    is_replayable,
    metadata_urls,
    tls_verify,
)
from .cache import FileTokenCache
from .consents import Consent
from .dpop import DPoPKey
from .errors import InvalidGrant, ServerError
from .stores import RefreshTokenStore
from .token import Token

__all__ = ["AsyncTokenClient"]


class AsyncTokenClient(_ClientBase, httpx.Auth):
    """The asyncio twin of :class:`~tokensmith.client.TokenClient`.

    ``await atc.get_token()``, or ``httpx.AsyncClient(auth=atc)``.  Any number of
    concurrent tasks needing a token cause one token request.  Safe to use from several
    event loops in turn (the lock is per loop); not from several threads at once.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        scope: str | Iterable[str] | None = None,
        *,
        auth_method: AuthMethod | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        refresh_margin: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry: RetryPolicy | None = None,
        cache: FileTokenCache | None = None,
        refresh_store: RefreshTokenStore | None = None,
        authorization_endpoint: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        dialect: Dialect = "oauth",
        apikey: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        default_lifetime: float = DEFAULT_LIFETIME,
        forced_renew_interval: float = 5.0,
        dpop: bool | DPoPKey = False,
        cert: ClientCert | None = None,
        verify: bool | str | ssl.SSLContext = True,
        private_key: PrivateKeyInput | None = None,
        key_id: str | None = None,
        signing_alg: str | None = None,
        assertion_audience: str | None = None,
        consents_endpoint: str | None = None,
    ) -> None:
        self._setup(
            token_url,
            client_id,
            client_secret,
            scope,
            auth_method=auth_method,
            refresh_margin=refresh_margin,
            clock=clock,
            retry=retry,
            cache=cache,
            refresh_store=refresh_store,
            authorization_endpoint=authorization_endpoint,
            extra_params=extra_params,
            headers=headers,
            dialect=dialect,
            apikey=apikey,
            metadata=metadata,
            rng=rng,
            default_lifetime=default_lifetime,
            forced_renew_interval=forced_renew_interval,
            dpop=dpop,
            private_key=private_key,
            key_id=key_id,
            signing_alg=signing_alg,
            assertion_audience=assertion_audience,
            consents_endpoint=consents_endpoint,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout, verify=tls_verify(cert, verify)
        )
        self._sleep = sleep
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    # -- constructors for the seed systems -------------------------------------------
    @classmethod
    def tpay(
        cls,
        client_id: str,
        client_secret: str,
        base_url: str = "https://api.tpay.com",
        scope: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """tpay: ``POST {base_url}/oauth/auth``; see :meth:`TokenClient.tpay`."""
        return cls(
            base_url.rstrip("/") + "/oauth/auth",
            client_id,
            client_secret,
            scope,
            dialect="tpay",
            **kwargs,
        )

    @classmethod
    def tbc(
        cls,
        apikey: str,
        client_id: str,
        client_secret: str,
        base_url: str = "https://api.tbcbank.ge",
        **kwargs: Any,
    ) -> Self:
        """TBC: ``POST {base_url}/v2/tpay/access-token``; see :meth:`TokenClient.tbc`."""
        return cls(
            base_url.rstrip("/") + "/v2/tpay/access-token",
            client_id,
            client_secret,
            dialect="tbc",
            apikey=apikey,
            **kwargs,
        )

    @classmethod
    async def from_issuer(
        cls,
        issuer_url: str,
        client_id: str,
        client_secret: str | None = None,
        scope: str | Iterable[str] | None = None,
        *,
        auth_method: AuthMethod | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - HTTP timeouts
        **kwargs: Any,
    ) -> Self:
        """RFC 8414 discovery; see :meth:`TokenClient.from_issuer`.  Awaitable."""
        cert, verify = kwargs.get("cert"), kwargs.get("verify", True)
        http = http_client or httpx.AsyncClient(timeout=timeout, verify=tls_verify(cert, verify))
        if auth_method is None and kwargs.get("private_key") is not None:
            auth_method = "private_key_jwt"
        try:
            metadata = await _fetch_metadata(http, issuer_url)
            endpoint, method = choose_from_metadata(metadata, issuer_url, auth_method)
        except BaseException:
            if http_client is None:
                await http.aclose()
            raise
        client = cls(
            endpoint,
            client_id,
            client_secret,
            scope,
            auth_method=method,
            http_client=http,
            metadata=metadata,
            authorization_endpoint=kwargs.pop(
                "authorization_endpoint", metadata.get("authorization_endpoint")
            ),
            **kwargs,
        )
        client._owns_http = http_client is None
        return client

    # -- lifecycle --------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            for old in [lp for lp in self._locks if lp.is_closed()]:
                del self._locks[old]
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    # -- tokens -----------------------------------------------------------------------
    async def get_token(self) -> Token:
        """A valid access token (cached until ``expires_at - margin``); concurrent tasks
        share a single token request."""
        entry = self._entry
        if entry is not None and self._clock() < entry.refresh_at:
            return entry.token
        return await self._renew(None)

    async def invalidate(self, token: Token | None = None) -> None:
        """Forget the cached token (only if it is ``token``, when given)."""
        async with self._lock():
            entry = self._entry
            if entry is None:
                return
            if token is None or entry.token.access_token == token.access_token:
                self._entry = None
                if self.cache is not None:
                    handle = await self._acquire_file_lock()
                    try:
                        self.cache.invalidate(self._cache_key, entry.token.access_token)
                    finally:
                        self.cache.release(handle)

    async def renew_after_rejection(self, token: Token) -> Token:
        """An API refused ``token`` (RFC 6750 §3.1 ``invalid_token``): drop it and return a
        new one.  Single-flight; returns ``token`` itself when a token obtained by such a
        renewal is refused again within ``forced_renew_interval`` (then the problem is
        not the token and the caller should see the 401)."""
        return await self._renew(token)

    async def refresh(self) -> Token:
        """Obtain a new token now, whatever the cached one's state."""
        entry = self._entry
        return await self._renew(entry.token if entry else None, explicit=True)

    async def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str | None = None
    ) -> Token:
        """Authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5); see
        :meth:`TokenClient.exchange_code`."""
        async with self._lock():
            prepared = self._code_request(code, redirect_uri, code_verifier)
            token = await self._send(prepared, code, code_verifier)
            self._save_refresh(token, None)
            self._install(token)
            if self.cache is not None:
                handle = await self._acquire_file_lock()
                try:
                    self.cache.store(self._cache_key, token, now=self._clock())
                finally:
                    self.cache.release(handle)
            self._log_obtained(token, "authorization_code")
            return token

    async def _renew(self, rejected: Token | None, *, explicit: bool = False) -> Token:
        lock = self._lock()
        if lock.locked():
            valid = self._cached_valid(self._clock(), rejected)
            if valid is not None:
                return valid  # someone is renewing; the current token is still good
        async with lock:
            settled = self._settled(self._clock(), rejected, explicit=explicit)
            if settled is not None:
                return settled
            current = self._entry
            if rejected is not None:
                self._entry = None
                current = None
            forced = rejected is not None and not explicit
            if self.cache is not None:
                return await self._renew_with_file_cache(rejected, current, forced)
            return await self._obtain(current, forced)

    async def _acquire_file_lock(self) -> int:
        assert self.cache is not None
        cache = self.cache
        task = asyncio.ensure_future(asyncio.to_thread(cache.acquire))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The thread may still get the lock: release it as soon as it does.
            def _release(done: asyncio.Future[int]) -> None:
                if not done.cancelled() and done.exception() is None:
                    cache.release(done.result())

            task.add_done_callback(_release)
            raise

    async def _renew_with_file_cache(
        self, rejected: Token | None, current: _Entry | None, forced: bool
    ) -> Token:
        assert self.cache is not None
        handle = await self._acquire_file_lock()
        try:
            shared = self.cache.load(self._cache_key)
            if shared is not None and self._usable_shared(shared, rejected, current):
                return self._install(shared)
            if rejected is not None:
                self.cache.invalidate(self._cache_key, rejected.access_token)
            token = await self._obtain(current, forced)
            if current is None or token is not current.token:
                self.cache.store(self._cache_key, token, now=self._clock())
            return token
        finally:
            self.cache.release(handle)

    async def _obtain(self, current: _Entry | None, forced: bool) -> Token:
        kind: GrantKind
        try:
            if self.refresh_store is not None:
                kind = "refresh_token"
                token = await self._refresh_grant()
            else:
                kind = "client_credentials"
                token = await self._send(self._prepare(kind))
        except TokenError as exc:
            kept = self._soft_fail(current, exc)
            if kept is not None:
                return kept
            raise
        self._install(token, forced=forced)
        self._log_obtained(token, kind)
        return token

    async def _refresh_grant(self) -> Token:
        assert self.refresh_store is not None
        refresh_token = self.refresh_store.load()
        if not refresh_token:
            raise InvalidGrant("no refresh token stored; run the authorization code flow")
        token = await self._send(self._refresh_request(refresh_token), refresh_token)
        # Persist the rotated refresh token BEFORE anyone can use the new access token.
        self._save_refresh(token, refresh_token)
        return token

    async def _send(self, prepared: _Prepared, *secrets: str | None) -> Token:
        attempt = 0
        nonce_retried = False
        while True:
            attempt += 1
            try:
                response = await self._http.post(
                    prepared.url,
                    data=self._token_data(prepared),
                    headers=self._token_headers(prepared),
                )
            except httpx.TransportError as exc:
                delay = self._transport_delay(prepared, attempt, exc)
                if delay is None:
                    raise self._unreachable(exc) from exc
                await self._sleep(delay)
                continue
            self._note_nonce(prepared.url, response.headers)
            outcome = self._outcome(prepared, response, *secrets)
            if isinstance(outcome, Token):
                return outcome
            if self._nonce_retry(outcome, response, nonce_retried):
                nonce_retried = True  # RFC 9449 §8: once, with the server's nonce
                attempt -= 1
                continue
            delay = self._error_delay(prepared, attempt, outcome)
            if delay is None:
                raise outcome
            await self._sleep(delay)

    # -- consents -------------------------------------------------------------------
    async def create_consent(
        self,
        authorization_details: Iterable[Mapping[str, Any]],
        expires_in: int | None = None,
    ) -> Consent:
        """Register a consent for ``authorization_details``; see
        :meth:`TokenClient.create_consent`."""
        body = self._consent_body(authorization_details, expires_in)
        consent = await self._consents_call("POST", self._consent_url(), body)
        assert consent is not None
        return consent

    async def get_consent(self, consent_id: str) -> Consent:
        """The consent ``consent_id`` as it is now; see :meth:`TokenClient.get_consent`."""
        consent = await self._consents_call("GET", self._consent_url(consent_id))
        if consent is None:
            raise TokenError("no consent in the answer", error="invalid_response")
        return consent

    async def revoke_consent(self, consent_id: str) -> None:
        """Withdraw the consent ``consent_id``; see :meth:`TokenClient.revoke_consent`."""
        await self._consents_call("DELETE", self._consent_url(consent_id))

    async def _consents_token(self, *, renew: bool = False) -> Token:
        token = None if renew else self._cached_consents_token()
        if token is None:
            token = self._keep_consents_token(await self._send(self._consents_grant()))
        return token

    async def _consents_call(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> Consent | None:
        """One request to the consents endpoint with the client's consents token: once
        more with the server's nonce after ``use_dpop_nonce`` (RFC 9449 §9), once more
        with a new token after ``invalid_token`` (RFC 6750 §3.1)."""
        token = await self._consents_token()
        request = self._consent_request(method, url, body)
        response, used = await self._consent_send(request, token)
        if self._resource_nonce_retry(token, response, used):
            response, _ = await self._consent_send(request, token)
            self._note_nonce(request.url, response.headers)
        if is_invalid_token_challenge(response):
            token = await self._consents_token(renew=True)
            response, _ = await self._consent_send(request, token)
            self._note_nonce(request.url, response.headers)
        outcome = self._consent_outcome(response)
        if isinstance(outcome, TokenError):
            raise outcome
        return outcome

    async def _consent_send(
        self, request: httpx.Request, token: Token
    ) -> tuple[httpx.Response, str | None]:
        """Send with ``token`` (and a fresh DPoP proof); the response and the proof's nonce."""
        used = self._authorize(request, token)
        try:
            return await self._http.send(request), used
        except httpx.TransportError as exc:
            raise ServerError(
                f"consents endpoint unreachable ({type(exc).__name__})",
                error="temporarily_unavailable",
            ) from exc

    # -- httpx.Auth -------------------------------------------------------------------
    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Add the token (``Bearer``, or ``DPoP`` with a fresh proof, RFC 9449 §7.1); on a
        ``use_dpop_nonce`` challenge resend once with the resource's nonce (RFC 9449 §9);
        on ``401 invalid_token`` renew the token and resend once."""
        entry = self._entry
        if entry is not None and self._clock() < entry.refresh_at:
            token = entry.token
        else:
            token = await self._renew(None)
        used = self._authorize(request, token)
        response = yield request
        replayable = is_replayable(request)
        if self._resource_nonce_retry(token, response, used) and replayable:
            self._authorize(request, token)
            response = yield request
            self._note_nonce(request.url, response.headers)
        if is_invalid_token_challenge(response) and replayable:
            renewed = await self._renew(token)
            if renewed.access_token != token.access_token:
                self._authorize(request, renewed)
                response = yield request
                self._note_nonce(request.url, response.headers)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: use :class:`TokenClient` with ``httpx.Client``."""
        raise RuntimeError("AsyncTokenClient is asynchronous; use TokenClient with httpx.Client")
        yield request  # pragma: no cover


async def _fetch_metadata(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    last: Exception | None = None
    for url in metadata_urls(issuer):
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise TokenError(
                f"cannot reach {url} ({type(exc).__name__})", error="discovery"
            ) from exc
        if response.status_code == 404:
            last = TokenError(f"{url} not found", error="discovery", status_code=404)
            continue
        if response.status_code != 200:
            raise TokenError(f"{url} answered", error="discovery", status_code=response.status_code)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise TokenError(f"{url} is not JSON", error="discovery") from exc
        if not isinstance(data, dict):
            raise TokenError(f"{url} is not a JSON object", error="discovery")
        return data
    assert last is not None
    raise last
