"""Clients and their secrets (:class:`~tokensmith.core.ports.ClientStore`) in SQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, delete, insert, or_, select, update

from tokensmith.core.models import Client, ClientSecret
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import (
    access_tokens,
    authorization_codes,
    client_secrets,
    clients,
    consents,
    pushed_requests,
    refresh_tokens,
    token_families,
)

__all__ = ["ClientsSql"]

#: What a deleted client takes with it besides its secrets (a refresh token before its family).
_NAMING_A_CLIENT = (
    refresh_tokens,
    token_families,
    access_tokens,
    authorization_codes,
    consents,
    pushed_requests,
)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def _types_text(types: tuple[str, ...] | None) -> str | None:
    return None if types is None else json.dumps(list(types))


def _types_of(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))


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
        "require_par": c.require_par,
        "require_dpop": c.require_dpop,
        "jwks": c.jwks,
        "jwks_uri": c.jwks_uri,
        "profile": c.profile,
        "tls_auth_kind": c.tls_auth_kind,
        "tls_auth_value": c.tls_auth_value,
        "cert_bound_tokens": c.cert_bound_tokens,
        "authorization_details_types": _types_text(c.authorization_details_types),
        "disabled_at": c.disabled_at,
        "tokens_revoked_before": c.tokens_revoked_before,
        "registration_token_hash": c.registration_token_hash,
        "registration_metadata": c.registration_metadata,
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
        require_par=bool(m["require_par"]),
        require_dpop=bool(m["require_dpop"]),
        jwks=m["jwks"],
        jwks_uri=m["jwks_uri"],
        profile=m["profile"],
        tls_auth_kind=m["tls_auth_kind"],
        tls_auth_value=m["tls_auth_value"],
        cert_bound_tokens=bool(m["cert_bound_tokens"]),
        authorization_details_types=_types_of(m["authorization_details_types"]),
        disabled_at=m["disabled_at"],
        tokens_revoked_before=m["tokens_revoked_before"],
        registration_token_hash=m["registration_token_hash"],
        registration_metadata=m["registration_metadata"],
    )


def _secret(row: Row[Any]) -> ClientSecret:
    m = row._mapping
    return ClientSecret(m["secret_hash"], m["created_at"], m["expires_at"], m["sealed"])


def _secret_row(client_id: str, s: ClientSecret) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "secret_hash": s.secret_hash,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "sealed": s.sealed,
    }


class ClientsSql(SqlBase):
    """:class:`~tokensmith.core.ports.ClientStore`: a client's row and its secrets' rows."""

    async def get_client(self, client_id: str) -> Client | None:
        async with self._read.connect() as conn:
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
                    insert(client_secrets).values(**_secret_row(client.client_id, s))
                )

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        query = select(clients).order_by(clients.c.created_at, clients.c.client_id)
        if merchant_id is not None:
            query = query.where(clients.c.merchant_id == merchant_id)
        async with self._read.connect() as conn:
            rows = (await conn.execute(query)).all()
            secrets: dict[str, list[ClientSecret]] = {}
            for s in await conn.execute(select(client_secrets).order_by(client_secrets.c.id)):
                secrets.setdefault(s.client_id, []).append(_secret(s))
        return [_client(r, tuple(secrets.get(r.client_id, ()))) for r in rows]

    async def update_client(self, client: Client) -> None:
        values = _client_row(client)
        del values["client_id"], values["created_at"]
        await self._write(
            update(clients).where(clients.c.client_id == client.client_id).values(**values)
        )

    async def revoke_client(self, client_id: str, at: float) -> bool:
        return await self._set_once(clients.c.revoked_at, at, clients.c.client_id, client_id)

    async def delete_client(self, client_id: str) -> bool:
        """The client's secrets and row, then the rows of every table that names it, in one
        transaction; children before parents, so no foreign key is ever left dangling."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(client_secrets).where(client_secrets.c.client_id == client_id)
            )
            gone = await conn.execute(delete(clients).where(clients.c.client_id == client_id))
            if not gone.rowcount:
                return False
            for table in _NAMING_A_CLIENT:
                await conn.execute(delete(table).where(table.c.client_id == client_id))
            return True

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        s = client_secrets.c
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
                    s.client_id == client_id, s.expires_at <= new.created_at
                )
            )
            await conn.execute(
                update(client_secrets)
                .where(
                    s.client_id == client_id,
                    or_(s.expires_at.is_(None), s.expires_at > old_expires_at),
                )
                .values(expires_at=old_expires_at)
            )
            await conn.execute(insert(client_secrets).values(**_secret_row(client_id, new)))
            return True
