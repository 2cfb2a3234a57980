"""Authorization codes (:class:`~tokensmith.core.ports.AuthorizationCodeStore`) in SQL:
redeeming one starts a token family (RFC 6749 §4.1.3)."""

from __future__ import annotations

from sqlalchemy import insert, update

from tokensmith.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    RefreshTokenRecord,
    TokenFamily,
)
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import (
    access_tokens,
    authorization_codes,
    refresh_tokens,
    row_of,
    token_families,
)
from tokensmith.storage.sql.tokens import token_values

__all__ = ["CodesSql"]


class _Abort(Exception):
    """Rolls back a transaction whose conditional UPDATE matched no row."""


class CodesSql(SqlBase):
    """:class:`~tokensmith.core.ports.AuthorizationCodeStore` but its purge."""

    async def add_code(self, code: AuthorizationCode) -> None:
        await self._write(insert(authorization_codes).values(**row_of(code)))

    async def find_code(self, code_hash: str) -> AuthorizationCode | None:
        return await self._by(AuthorizationCode, authorization_codes.c.code_hash, code_hash)

    async def redeem_code(
        self,
        code_hash: str,
        at: float,
        family: TokenFamily,
        first: RefreshTokenRecord | None,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        codes = authorization_codes.c
        spend = (
            update(authorization_codes)
            .where(codes.code_hash == code_hash, codes.used_at.is_(None))
            .values(used_at=at)
        )
        try:
            async with self.engine.begin() as conn:
                if (await conn.execute(spend)).rowcount != 1:
                    raise _Abort  # used already: the transaction rolls back
                await conn.execute(insert(token_families).values(**row_of(family)))
                if first is not None:
                    await conn.execute(insert(refresh_tokens).values(**row_of(first)))
                if access is not None:
                    await conn.execute(insert(access_tokens).values(**token_values(access)))
        except _Abort:
            return False
        return True
