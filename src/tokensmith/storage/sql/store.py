"""SQLAlchemy Core implementation of :class:`tokensmith.storage.protocols.Store`."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
    SigningKeyRecord,
)
from tokensmith.storage.sql.tables import (
    access_tokens,
    api_keys,
    client_secrets,
    clients,
    merchants,
    signing_keys,
)

__all__ = ["SqlStore"]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def _client_row(c: Client) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "merchant_id": c.merchant_id,
        "scopes": " ".join(c.scopes),
        "default_scopes": None if c.default_scopes is None else " ".join(c.default_scopes),
        "grant_types": " ".join(c.grant_types),
        "token_format": c.token_format,
        "access_token_ttl": c.access_token_ttl,
        "redirect_uris": json.dumps(list(c.redirect_uris)),
        "form_uri": c.form_uri,
        "auth_methods": " ".join(c.auth_methods),
        "created_at": c.created_at,
        "revoked_at": c.revoked_at,
    }


def _client(row: Row[Any], secrets: tuple[ClientSecret, ...]) -> Client:
    m = row._mapping
    return Client(
        client_id=m["client_id"],
        name=m["name"],
        merchant_id=m["merchant_id"],
        scopes=_split(m["scopes"]),
        default_scopes=None if m["default_scopes"] is None else _split(m["default_scopes"]),
        grant_types=_split(m["grant_types"]),
        token_format=m["token_format"],
        access_token_ttl=m["access_token_ttl"],
        redirect_uris=tuple(json.loads(m["redirect_uris"] or "[]")),
        form_uri=m["form_uri"],
        auth_methods=_split(m["auth_methods"]),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        secrets=secrets,
    )


def _secret(row: Row[Any]) -> ClientSecret:
    m = row._mapping
    return ClientSecret(m["secret_hash"], m["created_at"], m["expires_at"])


def _token(row: Row[Any]) -> AccessTokenRecord:
    return AccessTokenRecord(**row._mapping)


class SqlStore:
    """Every storage protocol over one :class:`AsyncEngine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    # -- clients -------------------------------------------------------------------------
    async def get_client(self, client_id: str) -> Client | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(clients).where(clients.c.client_id == client_id))
            ).first()
            if row is None:
                return None
            secrets = await conn.execute(
                select(client_secrets)
                .where(client_secrets.c.client_id == client_id)
                .order_by(client_secrets.c.id)
            )
            return _client(row, tuple(_secret(s) for s in secrets))

    async def add_client(self, client: Client) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(clients).values(**_client_row(client)))
            for s in client.secrets:
                await conn.execute(
                    insert(client_secrets).values(
                        client_id=client.client_id,
                        secret_hash=s.secret_hash,
                        created_at=s.created_at,
                        expires_at=s.expires_at,
                    )
                )

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        query = select(clients).order_by(clients.c.created_at, clients.c.client_id)
        if merchant_id is not None:
            query = query.where(clients.c.merchant_id == merchant_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            secrets: dict[str, list[ClientSecret]] = {}
            for s in await conn.execute(select(client_secrets).order_by(client_secrets.c.id)):
                secrets.setdefault(s.client_id, []).append(_secret(s))
        return [_client(r, tuple(secrets.get(r.client_id, ()))) for r in rows]

    async def update_client(self, client: Client) -> None:
        values = _client_row(client)
        del values["client_id"], values["created_at"]
        async with self.engine.begin() as conn:
            await conn.execute(
                update(clients).where(clients.c.client_id == client.client_id).values(**values)
            )

    async def revoke_client(self, client_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id, clients.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return result.rowcount > 0

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(clients.c.client_id).where(clients.c.client_id == client_id)
                )
            ).first()
            if exists is None:
                return False
            await conn.execute(
                delete(client_secrets).where(
                    client_secrets.c.client_id == client_id,
                    client_secrets.c.expires_at <= new.created_at,
                )
            )
            await conn.execute(
                update(client_secrets)
                .where(
                    client_secrets.c.client_id == client_id,
                    or_(
                        client_secrets.c.expires_at.is_(None),
                        client_secrets.c.expires_at > old_expires_at,
                    ),
                )
                .values(expires_at=old_expires_at)
            )
            await conn.execute(
                insert(client_secrets).values(
                    client_id=client_id,
                    secret_hash=new.secret_hash,
                    created_at=new.created_at,
                    expires_at=new.expires_at,
                )
            )
            return True

    # -- access tokens -------------------------------------------------------------------
    async def add_access_token(self, record: AccessTokenRecord) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(access_tokens).values(**_token_values(record)))

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(access_tokens).where(access_tokens.c.token_hash == token_hash)
                )
            ).first()
        return None if row is None else _token(row)

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(access_tokens).where(access_tokens.c.jti == jti))
            ).first()
        return None if row is None else _token(row)

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(access_tokens)
                .where(access_tokens.c.jti == record.jti, access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                values = _token_values(record) | {"revoked_at": at}
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(access_tokens).values(**values))
                except IntegrityError:
                    pass  # revoked concurrently: the outcome is the same

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        async with self.engine.begin() as conn:
            ids = (
                select(access_tokens.c.jti).where(access_tokens.c.expires_at < before).limit(batch)
            )
            result = await conn.execute(
                delete(access_tokens).where(access_tokens.c.jti.in_(ids.scalar_subquery()))
            )
            return int(result.rowcount)

    # -- signing keys --------------------------------------------------------------------
    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))
            return [SigningKeyRecord(**r._mapping) for r in rows]

    async def add_signing_key(self, key: SigningKeyRecord, retire_others_at: float | None) -> None:
        async with self.engine.begin() as conn:
            if retire_others_at is not None:
                await conn.execute(
                    update(signing_keys)
                    .where(
                        or_(
                            signing_keys.c.retired_at.is_(None),
                            signing_keys.c.retired_at > retire_others_at,
                        )
                    )
                    .values(retired_at=retire_others_at)
                )
            await conn.execute(
                insert(signing_keys).values(
                    kid=key.kid,
                    alg=key.alg,
                    private_key_encrypted=key.private_key_encrypted,
                    public_jwk=key.public_jwk,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                    publish_until=key.publish_until,
                )
            )

    async def set_publish_until(self, kid: str, until: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(signing_keys).where(signing_keys.c.kid == kid).values(publish_until=until)
            )

    # -- API keys (tbc dialect) ----------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    key_id=key.key_id,
                    name=key.name,
                    key_hash=key.key_hash,
                    merchant_id=key.merchant_id,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).first()
        return None if row is None else ApiKey(**row._mapping)

    async def list_api_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if merchant_id is not None:
            query = query.where(api_keys.c.merchant_id == merchant_id)
        async with self.engine.connect() as conn:
            return [ApiKey(**r._mapping) for r in await conn.execute(query)]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(and_(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)))
                .values(revoked_at=at)
            )
            return result.rowcount > 0

    # -- merchants -----------------------------------------------------------------------
    async def add_merchant(self, merchant: Merchant) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(merchants).values(
                    merchant_id=merchant.merchant_id,
                    name=merchant.name,
                    created_at=merchant.created_at,
                    disabled_at=merchant.disabled_at,
                )
            )

    async def get_merchant(self, merchant_id: str) -> Merchant | None:
        return await self._merchant(merchants.c.merchant_id == merchant_id)

    async def find_merchant_by_name(self, name: str) -> Merchant | None:
        return await self._merchant(merchants.c.name == name)

    async def _merchant(self, where: Any) -> Merchant | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(merchants).where(where))).first()
        return None if row is None else Merchant(**row._mapping)

    async def list_merchants(self) -> list[Merchant]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(merchants).order_by(merchants.c.created_at))
            return [Merchant(**r._mapping) for r in rows]


def _token_values(r: AccessTokenRecord) -> dict[str, Any]:
    return {
        "jti": r.jti,
        "token_hash": r.token_hash,
        "client_id": r.client_id,
        "subject": r.subject,
        "scope": r.scope,
        "family_id": r.family_id,
        "issued_at": r.issued_at,
        "expires_at": r.expires_at,
        "revoked_at": r.revoked_at,
    }
