"""Initial access tokens of dynamic client registration
(:class:`~tokensmith.core.ports.InitialTokenStore`, RFC 7591 §3) in SQL."""

from __future__ import annotations

from sqlalchemy import insert, select

from tokensmith.core.models import InitialAccessToken
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import initial_access_tokens, row_of

__all__ = ["InitialTokensSql"]


class InitialTokensSql(SqlBase):
    """:class:`~tokensmith.core.ports.InitialTokenStore`: one row a token, by its hash."""

    async def add_initial_token(self, token: InitialAccessToken) -> None:
        await self._write(insert(initial_access_tokens).values(**row_of(token)))

    async def find_initial_token(self, token_hash: str) -> InitialAccessToken | None:
        return await self._by(InitialAccessToken, initial_access_tokens.c.token_hash, token_hash)

    async def list_initial_tokens(self) -> list[InitialAccessToken]:
        t = initial_access_tokens.c
        return await self._list(
            InitialAccessToken, select(initial_access_tokens).order_by(t.created_at, t.token_id)
        )

    async def revoke_initial_token(self, token_id: str, at: float) -> bool:
        t = initial_access_tokens.c
        return await self._set_once(t.revoked_at, at, t.token_id, token_id)
