"""An in-memory store with the same semantics as the SQL one, for the core's tests."""

from __future__ import annotations

import dataclasses

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
    SigningKeyRecord,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """Dict-backed; every call is atomic because nothing awaits in the middle."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, AccessTokenRecord] = {}
        self.keys: dict[str, SigningKeyRecord] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.merchants: dict[str, Merchant] = {}

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    async def add_client(self, client: Client) -> None:
        if client.client_id in self.clients:
            raise KeyError(client.client_id)
        self.clients[client.client_id] = client

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        return [c for c in self.clients.values() if merchant_id in (None, c.merchant_id)]

    async def update_client(self, client: Client) -> None:
        old = self.clients[client.client_id]
        self.clients[client.client_id] = dataclasses.replace(client, secrets=old.secrets)

    async def revoke_client(self, client_id: str, at: float) -> bool:
        c = self.clients.get(client_id)
        if c is None or c.revoked_at is not None:
            return False
        self.clients[client_id] = dataclasses.replace(c, revoked_at=at)
        return True

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        c = self.clients.get(client_id)
        if c is None:
            return False
        kept = tuple(
            s
            if s.expires_at is not None and s.expires_at <= old_expires_at
            else dataclasses.replace(s, expires_at=old_expires_at)
            for s in c.secrets
            if s.expires_at is None or s.expires_at > new.created_at
        )
        self.clients[client_id] = dataclasses.replace(c, secrets=(*kept, new))
        return True

    async def add_access_token(self, record: AccessTokenRecord) -> None:
        self.tokens[record.jti] = record

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        return next((t for t in self.tokens.values() if t.token_hash == token_hash), None)

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None:
        return self.tokens.get(jti)

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        current = self.tokens.get(record.jti, record)
        if current.revoked_at is None:
            self.tokens[record.jti] = dataclasses.replace(current, revoked_at=at)

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        old = [j for j, t in self.tokens.items() if t.expires_at < before][:batch]
        for jti in old:
            del self.tokens[jti]
        return len(old)

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        return sorted(self.keys.values(), key=lambda k: k.created_at)

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        if retire_others_at is not None:
            for kid, k in self.keys.items():
                if k.retired_at is None or k.retired_at > retire_others_at:
                    self.keys[kid] = dataclasses.replace(k, retired_at=retire_others_at)
        self.keys[key.kid] = key

    async def set_publish_until(self, kid: str, until: float) -> None:
        self.keys[kid] = dataclasses.replace(self.keys[kid], publish_until=until)

    async def add_api_key(self, key: ApiKey) -> None:
        self.api_keys[key.key_id] = key

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        return next((k for k in self.api_keys.values() if k.key_hash == key_hash), None)

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        return [k for k in self.api_keys.values() if merchant_id in (None, k.merchant_id)]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        k = self.api_keys.get(key_id)
        if k is None or k.revoked_at is not None:
            return False
        self.api_keys[key_id] = dataclasses.replace(k, revoked_at=at)
        return True

    async def add_merchant(self, merchant: Merchant) -> None:
        if any(m.name == merchant.name for m in self.merchants.values()):
            raise KeyError(merchant.name)
        self.merchants[merchant.merchant_id] = merchant

    async def get_merchant(self, merchant_id: str) -> Merchant | None:
        return self.merchants.get(merchant_id)

    async def find_merchant_by_name(self, name: str) -> Merchant | None:
        return next((m for m in self.merchants.values() if m.name == name), None)

    async def list_merchants(self) -> list[Merchant]:
        return list(self.merchants.values())
