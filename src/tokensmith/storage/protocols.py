"""The narrow interfaces the core needs from storage.

One SQLAlchemy implementation serves SQLite and PostgreSQL
(:mod:`tokensmith.storage.sql`); :mod:`tokensmith.storage.memory` serves the
core's tests.
"""

from __future__ import annotations

from typing import Protocol

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
    SigningKeyRecord,
)

__all__ = ["ApiKeyStore", "ClientStore", "KeyStore", "MerchantStore", "Store", "TokenStore"]


class ClientStore(Protocol):
    async def get_client(self, client_id: str) -> Client | None: ...

    async def add_client(self, client: Client) -> None: ...

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]: ...

    async def update_client(self, client: Client) -> None:
        """Replace the client's mutable fields (not its secrets)."""
        ...

    async def revoke_client(self, client_id: str, at: float) -> bool: ...

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        """Add ``new``; live secrets without an end get ``old_expires_at``; drop ended ones."""
        ...


class TokenStore(Protocol):
    async def add_access_token(self, record: AccessTokenRecord) -> None: ...

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None: ...

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None: ...

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        """Mark ``record`` revoked, inserting it as a tombstone if it is not stored (a JWT)."""
        ...

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` tokens that expired before ``before``; return the count."""
        ...


class KeyStore(Protocol):
    async def list_signing_keys(self) -> list[SigningKeyRecord]: ...

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        """Store ``key``; if ``retire_others_at`` is set, the others stop signing then."""
        ...

    async def set_publish_until(self, kid: str, until: float) -> None: ...


class ApiKeyStore(Protocol):
    async def add_api_key(self, key: ApiKey) -> None: ...

    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: str, at: float) -> bool: ...


class MerchantStore(Protocol):
    async def add_merchant(self, merchant: Merchant) -> None: ...

    async def get_merchant(self, merchant_id: str) -> Merchant | None: ...

    async def find_merchant_by_name(self, name: str) -> Merchant | None: ...

    async def list_merchants(self) -> list[Merchant]: ...


class Store(ClientStore, TokenStore, KeyStore, ApiKeyStore, MerchantStore, Protocol):
    """Everything a composition root wires together."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...
