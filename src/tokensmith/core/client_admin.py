"""Managing what calls the token endpoint: OAuth clients (API keys and partner apps) and
the developer app keys of the ``tbc`` dialect. One implementation for the CLI and the
merchant panel.

The token endpoint reads clients and keys through caches. Every change made here calls
the ``invalidate`` it was given (the cache's), so the worker that made it sees it at once;
other workers and instances see it within ``client_cache_ttl`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tokensmith.core.admin import (
    AdminError,
    ClientChanges,
    ClientSpec,
    Seal,
    apply_changes,
    change_client_keys,
    create_api_key,
    create_client,
    rotate_client_secret,
)
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret, new_secret
from tokensmith.core.models import AUTHORIZATION_CODE, ApiKey, Client
from tokensmith.core.ports import ApiKeyKeeper, ClientStore
from tokensmith.core.randomness import Randomness

__all__ = ["ApiKeys", "ClientAdmin", "ClientUsage", "ClientUse", "Kind", "kind_of"]

#: An API key (``client_credentials``) or a partner app (``authorization_code``).
Kind = Literal["key", "app"]


def kind_of(client: Client) -> Kind:
    """A partner app is a client that may use the ``authorization_code`` grant."""
    return "app" if AUTHORIZATION_CODE in client.grant_types else "key"


class ClientUsage(Protocol):
    """When clients last got a token (:class:`tokensmith.core.activity.Activity`)."""

    async def last_used(self, client_ids: Sequence[str]) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class ClientUse:
    client: Client
    #: When the client last got a token, if the kept counts say.
    last_used: float | None


def _nothing(key: str | None = None) -> None:
    """No cache to tell (the CLI)."""


class ClientAdmin:
    """Create, find, change, rotate, revoke and delete clients."""

    def __init__(
        self,
        clients: ClientStore,
        clock: Clock,
        rand: Randomness,
        *,
        max_ttl: int,
        usage: ClientUsage | None = None,
        invalidate: Callable[[str], None] = _nothing,
        forget_keys: Callable[[str], None] = _nothing,
        loopback_jwks: bool = False,
        seal: Seal | None = None,
    ) -> None:
        #: Seals ``client_secret_jwt`` clients' secrets (the server's client-secret key).
        self._seal = seal
        #: A ``jwks_uri`` may be on loopback (the server is: development).
        self._loopback_jwks = loopback_jwks
        self._clients = clients
        #: Drops what the assertion verifier keeps of a ``jwks_uri`` (its fetched set).
        self._forget_keys = forget_keys
        self._clock = clock
        self._rand = rand
        self._max_ttl = max_ttl
        self._usage = usage
        self._invalidate = invalidate

    async def create(self, spec: ClientSpec) -> tuple[Client, str | None]:
        """The client and its secret, shown once (stored only as a hash)."""
        client, secret = await create_client(
            self._clients,
            self._clock,
            self._rand,
            spec,
            self._max_ttl,
            allow_loopback_jwks=self._loopback_jwks,
            seal=self._seal,
        )
        self._invalidate(client.client_id)
        return client, secret

    async def get(self, client_id: str) -> Client | None:
        return await self._clients.get_client(client_id)

    async def listing(self, merchant_id: str | None = None) -> list[Client]:
        """Every client, or the merchant's."""
        return await self._clients.list_clients(merchant_id)

    async def owned(self, merchant_id: str, client_id: str, kind: Kind) -> Client | None:
        """The client if it is the merchant's and of this kind, else ``None``."""
        client = await self._clients.get_client(client_id)
        if client is None or client.merchant_id != merchant_id or kind_of(client) != kind:
            return None
        return client

    async def in_use(self, merchant_id: str, kind: Kind) -> list[ClientUse]:
        """The merchant's clients of this kind, each with when it last got a token."""
        mine = [c for c in await self.listing(merchant_id) if kind_of(c) == kind]
        ids = [c.client_id for c in mine]
        used = {} if self._usage is None else await self._usage.last_used(ids)
        return [ClientUse(c, used.get(c.client_id)) for c in mine]

    async def update(self, client: Client) -> None:
        """Store the client's mutable fields (name, redirect URIs, form URI)."""
        await self._clients.update_client(client)
        self._invalidate(client.client_id)

    async def change(self, client_id: str, changes: ClientChanges) -> Client:
        """The client with ``changes`` stored, checked as a new client would be
        (:func:`~tokensmith.core.admin.apply_changes`); a revoked client is not changed."""
        client = await self._clients.get_client(client_id)
        if client is None:
            raise AdminError(f"no client {client_id!r}")
        if not client.active:
            raise AdminError(f"client {client_id!r} is revoked")
        changed = apply_changes(client, changes, self._max_ttl)
        await self.update(changed)
        return changed

    async def set_keys(
        self, client_id: str, *, jwks: str | None = None, jwks_uri: str | None = None
    ) -> Client:
        """Register new public keys for the client (``jwks`` JSON text or ``jwks_uri``),
        or clear them when neither is given (:func:`~tokensmith.core.admin.change_client_keys`).
        The new keys apply at once on this instance: the client cache forgets the client and
        the verifier what it fetched from the old and the new ``jwks_uri``."""
        client = await self._clients.get_client(client_id)
        if client is None:
            raise AdminError(f"no client {client_id!r}")
        if not client.active:
            raise AdminError(f"client {client_id!r} is revoked")
        changed = change_client_keys(client, jwks, jwks_uri, allow_loopback=self._loopback_jwks)
        await self.update(changed)
        for uri in {client.jwks_uri, changed.jwks_uri} - {None}:
            assert uri is not None
            self._forget_keys(uri)
        return changed

    async def delete(self, client_id: str) -> bool:
        """Revoke the client, so its token requests and tokens are refused even if what
        follows fails, then remove it with its secrets, tokens, refresh token families,
        codes, consents and pushed requests (RFC 7009 §2.1: revoking a client's grant
        invalidates its tokens). False if there is no such client."""
        if await self._clients.get_client(client_id) is None:
            return False
        try:
            await self._clients.revoke_client(client_id, self._clock.now())
            return await self._clients.delete_client(client_id)
        finally:
            self._invalidate(client_id)

    async def rotate_secret(self, client_id: str, keep_old_for: int) -> str:
        """A new secret, shown once; the old ones keep working ``keep_old_for`` seconds."""
        try:
            return await rotate_client_secret(
                self._clients, self._clock, self._rand, client_id, keep_old_for, self._seal
            )
        finally:
            self._invalidate(client_id)

    async def revoke(self, client_id: str) -> bool:
        """Its token requests fail and its tokens turn inactive; False if unknown."""
        try:
            return await self._clients.revoke_client(client_id, self._clock.now())
        finally:
            self._invalidate(client_id)


class ApiKeys:
    """Create, list, rotate and revoke developer app keys (the ``tbc`` dialect's
    ``apikey``)."""

    def __init__(
        self,
        keys: ApiKeyKeeper,
        clock: Clock,
        rand: Randomness,
        invalidate: Callable[[], None] = _nothing,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._rand = rand
        self._invalidate = invalidate

    async def create(self, name: str, merchant_id: str | None = None) -> tuple[ApiKey, str]:
        """The key and its value, shown once (stored only as a SHA-256 hash)."""
        return await create_api_key(self._keys, self._clock, self._rand, name, merchant_id)

    async def listing(self, merchant_id: str | None = None) -> list[ApiKey]:
        """Every key, or the merchant's."""
        return await self._keys.list_api_keys(merchant_id)

    async def owned(self, merchant_id: str, key_id: str) -> ApiKey | None:
        """The key if it is the merchant's, else ``None``."""
        return next((k for k in await self.listing(merchant_id) if k.key_id == key_id), None)

    async def revoke(self, key_id: str) -> bool:
        """Requests carrying the key are refused; False if no live key has this id."""
        try:
            return await self._keys.revoke_api_key(key_id, self._clock.now())
        finally:
            self._invalidate()  # cached by the key's hash, which no one here knows

    async def rotate(self, key_id: str) -> str:
        """A new value for a live key, shown once (stored only as a SHA-256 hash); the old
        value is refused from then on. The key keeps its id, name and merchant."""
        plain = new_secret(self._rand)
        try:
            if not await self._keys.replace_api_key_hash(key_id, hash_secret(plain)):
                raise AdminError(f"no live key {key_id!r}")
        finally:
            self._invalidate()
        return plain
