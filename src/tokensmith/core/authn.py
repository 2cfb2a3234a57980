"""Client authentication (RFC 6749 §2.3) with throttling of failures."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.errors import InvalidClient, RateLimited
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.models import Client
from tokensmith.core.requests import ClientCredentials
from tokensmith.storage.protocols import ClientStore

__all__ = ["ClientAuthenticator", "FailureLimits"]


@dataclass(frozen=True, slots=True)
class FailureLimits:
    per_client: Limit = field(default_factory=lambda: Limit(failures=10, window=60))
    per_address: Limit = field(default_factory=lambda: Limit(failures=30, window=60))


class ClientAuthenticator:
    """Verifies client credentials; counts and limits failures per client and per address."""

    def __init__(
        self,
        clients: ClientStore,
        clock: Clock,
        limiter: FailureLimiter,
        limits: FailureLimits,
    ) -> None:
        self._clients = clients
        self._clock = clock
        self._limiter = limiter
        self._limits = limits

    async def authenticate(self, creds: ClientCredentials | None, source: str) -> Client:
        """Return the authenticated client or raise ``InvalidClient`` / ``RateLimited``."""
        basic = creds is not None and creds.method == "client_secret_basic"
        if creds is None or not creds.client_id:
            raise InvalidClient("client authentication is required", reason="no_credentials")
        keys = (
            (f"client:{creds.client_id}", self._limits.per_client),
            (f"addr:{source}", self._limits.per_address),
        )
        for key, limit in keys:
            wait = await self._limiter.retry_after(key, limit)
            if wait is not None:
                raise RateLimited(wait)
        client = await self._clients.get_client(creds.client_id)
        reason = self._failure(client, creds)
        if reason is not None:
            for key, limit in keys:
                await self._limiter.record_failure(key, limit)
            raise InvalidClient("client authentication failed", reason=reason, basic=basic)
        assert client is not None
        return client

    def _failure(self, client: Client | None, creds: ClientCredentials) -> str | None:
        """Why authentication fails, or ``None``. Every branch hashes, to keep timing flat."""
        presented = hash_secret(creds.client_secret or "")
        if client is None:
            return "unknown_client"
        if not client.active:
            return "revoked_client"
        if creds.method not in client.auth_methods:
            return "auth_method_not_allowed"
        if client.public:
            return None
        now = self._clock.now()
        matched = False
        for secret in client.secrets:
            ok = hmac.compare_digest(presented, secret.secret_hash) and secret.valid_at(now)
            matched = matched or ok
        return None if matched else "bad_secret"
