"""Signing keys (:class:`~tokensmith.core.ports.KeyStore`) and API keys
(:class:`~tokensmith.core.ports.ApiKeyStore`) in SQL."""

from __future__ import annotations

from sqlalchemy import exists, insert, literal, or_, select, text, update

from tokensmith.core.models import ApiKey, SigningKeyRecord
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import api_keys, row_of, signing_keys

__all__ = ["ApiKeysSql", "SigningKeysSql"]

#: The transaction-level advisory lock that serializes the first signing key on PostgreSQL.
_KEY_LOCK = 0x6B657973  # "keys"


class SigningKeysSql(SqlBase):
    """:class:`~tokensmith.core.ports.KeyStore`."""

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        query = select(signing_keys).order_by(signing_keys.c.created_at)
        return await self._list(SigningKeyRecord, query)

    async def add_first_signing_key(self, key: SigningKeyRecord) -> bool:
        """One statement, ``INSERT ... WHERE NOT EXISTS``, serialized by a transaction-level
        advisory lock on PostgreSQL and by the database write lock on SQLite."""
        values = row_of(key)
        source = select(
            *(literal(values[c.name], c.type).label(c.name) for c in signing_keys.columns)
        ).where(~exists().where(signing_keys.c.retired_at.is_(None)))
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEY_LOCK})
            names = [c.name for c in signing_keys.columns]
            result = await conn.execute(insert(signing_keys).from_select(names, source))
            return bool(result.rowcount)

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        k = signing_keys.c
        async with self.engine.begin() as conn:
            if retire_others_at is not None:
                await conn.execute(
                    update(signing_keys)
                    .where(or_(k.retired_at.is_(None), k.retired_at > retire_others_at))
                    .values(retired_at=retire_others_at)
                )
            await conn.execute(insert(signing_keys).values(**row_of(key)))

    async def set_publish_until(self, kid: str, until: float) -> None:
        k = signing_keys.c
        await self._write(update(signing_keys).where(k.kid == kid).values(publish_until=until))


class ApiKeysSql(SqlBase):
    """:class:`~tokensmith.core.ports.ApiKeyStore` (the tbc dialect's API keys)."""

    async def add_api_key(self, key: ApiKey) -> None:
        await self._write(insert(api_keys).values(**row_of(key)))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        return await self._by(ApiKey, api_keys.c.key_hash, key_hash)

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if merchant_id is not None:
            query = query.where(api_keys.c.merchant_id == merchant_id)
        return await self._list(ApiKey, query)

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        return await self._set_once(api_keys.c.revoked_at, at, api_keys.c.key_id, key_id)

    async def replace_api_key_hash(self, key_id: str, key_hash: str) -> bool:
        k = api_keys.c
        live = update(api_keys).where(k.key_id == key_id, k.revoked_at.is_(None))
        return await self._write(live.values(key_hash=key_hash)) > 0
