"""Managing what calls the token endpoint: OAuth clients (API keys and partner apps) and
the developer app keys of the ``tbc`` dialect. One implementation for the CLI and the
merchant panel.

The token endpoint reads clients and keys through caches. Every change made here calls
the ``invalidate`` it was given (the cache's), so the worker that made it sees it at once;
other workers and instances see it within ``client_cache_ttl`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
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
    replace_metadata,
    rotate_client_secret,
)
from tokensmith.core.audit import SYSTEM, Audit, By
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


#: The client fields that hold its public keys (``client.keys_changed``).
_KEY_FIELDS = ("jwks", "jwks_uri")
#: Fields never compared for ``client.updated`` (not changed by an update, or secret).
#: Not reported as changed: identity, times, and credentials (a new registration access
#: token comes with every RFC 7592 update; secrets have events of their own).
_UNCOMPARED = ("client_id", "secrets", "created_at", "revoked_at", "registration_token_hash")


def _changed(old: Client, new: Client) -> list[str]:
    """The names of the fields ``new`` changes, sorted."""
    return sorted(
        f.name
        for f in fields(Client)
        if f.name not in _UNCOMPARED and getattr(old, f.name) != getattr(new, f.name)
    )


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
        audit: Audit | None = None,
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
        self._audit = audit or Audit.null(clock, rand)

    async def _event(self, by: By, type: str, client: Client | str, **details: str) -> None:
        if isinstance(client, str):
            found = await self._clients.get_client(client)
            merchant, client_id = (found.merchant_id if found else None), client
        else:
            merchant, client_id = client.merchant_id, client.client_id
        await self._audit.by(
            by, type, outcome="success", merchant_id=merchant, subject=client_id, **details
        )

    async def create(
        self,
        spec: ClientSpec,
        *,
        by: By = SYSTEM,
        event: str = "client.created",
    ) -> tuple[Client, str | None]:
        """The client and its secret, shown once (stored only as a hash); one audit event,
        ``event`` (``client.registered`` for RFC 7591 registration)."""
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
        await self._event(
            by,
            event,
            client,
            kind=kind_of(client),
            name=client.name,
            scope=" ".join(client.scopes),
            auth_method=client.auth_methods[0] if client.auth_methods else "none",
        )
        return client, secret

    async def get(self, client_id: str) -> Client | None:
        return await self._clients.get_client(client_id)

    async def listing(self, merchant_id: str | None = None) -> list[Client]:
        """Every client, or the merchant's."""
        return await self._clients.list_clients(merchant_id)

    async def owned(self, merchant_id: str | None, client_id: str, kind: Kind) -> Client | None:
        """The client if it is the merchant's (``None``: anyone's, for a platform operator)
        and of this kind, else ``None``."""
        client = await self._clients.get_client(client_id)
        if client is None or kind_of(client) != kind:
            return None
        if merchant_id is not None and client.merchant_id != merchant_id:
            return None
        return client

    async def in_use(self, merchant_id: str | None, kind: Kind) -> list[ClientUse]:
        """The merchant's clients of this kind (``None``: every client, with a merchant or
        without, for a platform operator), each with when it last got a token."""
        mine = [c for c in await self.listing(merchant_id) if kind_of(c) == kind]
        ids = [c.client_id for c in mine]
        used = {} if self._usage is None else await self._usage.last_used(ids)
        return [ClientUse(c, used.get(c.client_id)) for c in mine]

    async def update(self, client: Client, *, by: By = SYSTEM, event: str | None = None) -> None:
        """Store the client's mutable fields (name, redirect URIs, form URI, keys...):
        ``client.keys_changed`` if its public keys changed, ``client.updated`` if anything
        else did; or one ``event`` naming every changed field."""
        old = await self._clients.get_client(client.client_id)
        await self._clients.update_client(client)
        self._invalidate(client.client_id)
        changed = [] if old is None else _changed(old, client)
        if event is not None:
            await self._event(by, event, client, fields=" ".join(changed))
            return
        keys = [f for f in changed if f in _KEY_FIELDS]
        rest = [f for f in changed if f not in _KEY_FIELDS]
        if keys:
            await self._event(by, "client.keys_changed", client, fields=" ".join(keys))
        if rest or old is None:
            await self._event(by, "client.updated", client, fields=" ".join(rest))

    async def change(self, client_id: str, changes: ClientChanges, *, by: By = SYSTEM) -> Client:
        """The client with ``changes`` stored, checked as a new client would be
        (:func:`~tokensmith.core.admin.apply_changes`); a revoked client is not changed."""
        client = await self._clients.get_client(client_id)
        if client is None:
            raise AdminError(f"no client {client_id!r}")
        if client.revoked_at is not None:
            raise AdminError(f"client {client_id!r} is revoked")
        changed = apply_changes(client, changes, self._max_ttl)
        await self.update(changed, by=by)
        return changed

    async def replace(
        self, client_id: str, spec: ClientSpec, *, by: By = SYSTEM, event: str | None = None
    ) -> Client:
        """The client with its metadata replaced by ``spec`` (RFC 7592 §2.2), checked as a
        new client would be (:func:`~tokensmith.core.admin.replace_metadata`)."""
        client = await self._clients.get_client(client_id)
        if client is None or not client.active:
            raise AdminError(f"no client {client_id!r}")
        changed = replace_metadata(client, spec, self._max_ttl)
        await self.update(changed, by=by, event=event)
        return changed

    async def set_keys(
        self,
        client_id: str,
        *,
        jwks: str | None = None,
        jwks_uri: str | None = None,
        keys_only: bool = False,
        by: By = SYSTEM,
    ) -> Client:
        """Register new public keys for the client (``jwks`` JSON text or ``jwks_uri``),
        or clear them when neither is given (:func:`~tokensmith.core.admin.change_client_keys`).
        With ``keys_only`` the client authenticates with ``private_key_jwt`` (RFC 7523 §2.2)
        alone from now on and its secrets stop working; otherwise it keeps its secret
        methods, so it can move to its keys without a gap. The new keys apply at once on
        this instance: the client cache forgets the client and the verifier what it fetched
        from the old and the new ``jwks_uri``."""
        client = await self._clients.get_client(client_id)
        if client is None:
            raise AdminError(f"no client {client_id!r}")
        if not client.active:
            raise AdminError(f"client {client_id!r} is revoked")
        if keys_only and jwks is None and jwks_uri is None:
            raise AdminError("give jwks or jwks_uri")
        changed = change_client_keys(client, jwks, jwks_uri, allow_loopback=self._loopback_jwks)
        if keys_only:
            changed = changed.evolve(auth_methods=("private_key_jwt",))
        await self.update(changed, by=by)
        for uri in {client.jwks_uri, changed.jwks_uri} - {None}:
            assert uri is not None
            self._forget_keys(uri)
        return changed

    async def delete(
        self, client_id: str, *, by: By = SYSTEM, event: str = "client.deleted"
    ) -> bool:
        """Revoke the client, so its token requests and tokens are refused even if what
        follows fails, then remove it with its secrets, tokens, refresh token families,
        codes, consents and pushed requests (RFC 7009 §2.1: revoking a client's grant
        invalidates its tokens). False if there is no such client."""
        client = await self._clients.get_client(client_id)
        if client is None:
            return False
        try:
            await self._clients.revoke_client(client_id, self._clock.now())
            deleted = await self._clients.delete_client(client_id)
        finally:
            self._invalidate(client_id)
        if deleted:
            await self._event(by, event, client, kind=kind_of(client))
        return deleted

    async def rotate_secret(self, client_id: str, keep_old_for: int, *, by: By = SYSTEM) -> str:
        """A new secret, shown once; the old ones keep working ``keep_old_for`` seconds."""
        try:
            secret = await rotate_client_secret(
                self._clients, self._clock, self._rand, client_id, keep_old_for, self._seal
            )
        finally:
            self._invalidate(client_id)
        await self._event(by, "client.secret_rotated", client_id, old_valid_for=str(keep_old_for))
        return secret

    async def _set(self, client_id: str, **changes: object) -> Client:
        client = await self._clients.get_client(client_id)
        if client is None:
            raise AdminError(f"no client {client_id!r}")
        changed = client.evolve(**changes)
        await self.update(changed)
        return changed

    async def disable(self, client_id: str) -> Client:
        """Its token requests fail and its tokens are inactive until :meth:`enable`
        (unlike :meth:`revoke`, which is for good)."""
        client = await self.get(client_id)
        if client is not None and client.disabled_at is not None:
            return client
        return await self._set(client_id, disabled_at=self._clock.now())

    async def enable(self, client_id: str) -> Client:
        """Undo :meth:`disable`; tokens issued before it stay as they were (live ones
        work again unless :meth:`revoke_tokens` ended them)."""
        return await self._set(client_id, disabled_at=None)

    async def revoke_tokens(self, client_id: str) -> Client:
        """RFC 7009 §2.1 for every token issued to the client until now, access and
        refresh tokens alike; the client keeps working and gets new tokens."""
        return await self._set(client_id, tokens_revoked_before=self._clock.now())

    async def revoke(self, client_id: str, *, by: By = SYSTEM) -> bool:
        """Its token requests fail and its tokens turn inactive; False if unknown."""
        try:
            revoked = await self._clients.revoke_client(client_id, self._clock.now())
        finally:
            self._invalidate(client_id)
        if revoked:
            await self._event(by, "client.revoked", client_id)
        return revoked


class ApiKeys:
    """Create, list, rotate and revoke developer app keys (the ``tbc`` dialect's
    ``apikey``)."""

    def __init__(
        self,
        keys: ApiKeyKeeper,
        clock: Clock,
        rand: Randomness,
        invalidate: Callable[[], None] = _nothing,
        audit: Audit | None = None,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._rand = rand
        self._invalidate = invalidate
        self._audit = audit or Audit.null(clock, rand)

    async def _event(self, by: By, type: str, key_id: str) -> None:
        key = next((k for k in await self._keys.list_api_keys(None) if k.key_id == key_id), None)
        merchant = key.merchant_id if key else None
        await self._audit.by(by, type, merchant_id=merchant, subject=key_id)

    async def create(
        self, name: str, merchant_id: str | None = None, *, by: By = SYSTEM
    ) -> tuple[ApiKey, str]:
        """The key and its value, shown once (stored only as a SHA-256 hash)."""
        key, plain = await create_api_key(self._keys, self._clock, self._rand, name, merchant_id)
        await self._audit.by(
            by, "apikey.created", merchant_id=merchant_id, subject=key.key_id, name=name
        )
        return key, plain

    async def listing(self, merchant_id: str | None = None) -> list[ApiKey]:
        """Every key, or the merchant's."""
        return await self._keys.list_api_keys(merchant_id)

    async def owned(self, merchant_id: str, key_id: str) -> ApiKey | None:
        """The key if it is the merchant's, else ``None``."""
        return next((k for k in await self.listing(merchant_id) if k.key_id == key_id), None)

    async def revoke(self, key_id: str, *, by: By = SYSTEM) -> bool:
        """Requests carrying the key are refused; False if no live key has this id."""
        try:
            revoked = await self._keys.revoke_api_key(key_id, self._clock.now())
        finally:
            self._invalidate()  # cached by the key's hash, which no one here knows
        if revoked:
            await self._event(by, "apikey.revoked", key_id)
        return revoked

    async def rotate(self, key_id: str, *, by: By = SYSTEM) -> str:
        """A new value for a live key, shown once (stored only as a SHA-256 hash); the old
        value is refused from then on. The key keeps its id, name and merchant."""
        plain = new_secret(self._rand)
        try:
            if not await self._keys.replace_api_key_hash(key_id, hash_secret(plain)):
                raise AdminError(f"no live key {key_id!r}")
        finally:
            self._invalidate()
        await self._event(by, "apikey.rotated", key_id)
        return plain
