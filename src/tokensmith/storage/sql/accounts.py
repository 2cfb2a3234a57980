"""Merchants, users, their consents and their sessions in SQL
(:class:`~tokensmith.core.ports.MerchantStore`, :class:`~tokensmith.core.ports.UserStore`,
:class:`~tokensmith.core.ports.ConsentStore`, :class:`~tokensmith.core.ports.SessionStore`).
Each table's rows are its record's fields (:func:`~tokensmith.storage.sql.tables.row_of`)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tokensmith.core.models import Consent, Merchant, Session, User
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import consents, merchants, row_of, sessions, users

__all__ = ["ConsentsSql", "MerchantsSql", "SessionsSql", "UsersSql"]


class MerchantsSql(SqlBase):
    """:class:`~tokensmith.core.ports.MerchantStore`."""

    async def add_merchant(self, merchant: Merchant) -> None:
        await self._write(insert(merchants).values(**row_of(merchant)))

    async def get_merchant(self, merchant_id: str) -> Merchant | None:
        return await self._by(Merchant, merchants.c.merchant_id, merchant_id)

    async def find_merchant_by_name(self, name: str) -> Merchant | None:
        return await self._by(Merchant, merchants.c.name, name)

    async def list_merchants(self) -> list[Merchant]:
        return await self._list(Merchant, select(merchants).order_by(merchants.c.created_at))

    async def disable_merchant(self, merchant_id: str, at: float) -> bool:
        return await self._set_once(
            merchants.c.disabled_at, at, merchants.c.merchant_id, merchant_id
        )


class UsersSql(SqlBase):
    """:class:`~tokensmith.core.ports.UserStore`."""

    async def add_user(self, user: User) -> None:
        try:
            await self._write(insert(users).values(**row_of(user)))
        except IntegrityError as exc:
            raise KeyError(user.email) from exc

    async def get_user(self, user_id: str) -> User | None:
        return await self._by(User, users.c.user_id, user_id)

    async def find_user_by_email(self, email: str) -> User | None:
        return await self._by(User, users.c.email, email)

    async def list_users(self, merchant_id: str | None = None) -> list[User]:
        query = select(users).order_by(users.c.created_at, users.c.email)
        if merchant_id is not None:
            query = query.where(users.c.merchant_id == merchant_id)
        return await self._list(User, query)

    async def disable_user(self, user_id: str, at: float) -> bool:
        return await self._set_once(users.c.disabled_at, at, users.c.user_id, user_id)

    async def update_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        u = users.c
        rehash = update(users).where(u.user_id == user_id, u.password_hash == old_hash)
        return await self._write(rehash.values(password_hash=new_hash)) > 0


class ConsentsSql(SqlBase):
    """:class:`~tokensmith.core.ports.ConsentStore`: one row per user and client."""

    async def get_consent(self, user_id: str, client_id: str) -> Consent | None:
        c = consents.c
        query = select(consents).where(c.user_id == user_id, c.client_id == client_id)
        return await self._find(Consent, query)

    async def save_consent(self, consent: Consent) -> None:
        c = consents.c
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(consents).where(
                    c.user_id == consent.user_id, c.client_id == consent.client_id
                )
            )
            await conn.execute(insert(consents).values(**row_of(consent)))

    async def delete_consent(self, user_id: str, client_id: str) -> bool:
        c = consents.c
        return (
            await self._write(
                delete(consents).where(c.user_id == user_id, c.client_id == client_id)
            )
            > 0
        )

    async def list_consents(self, user_id: str) -> list[Consent]:
        c = consents.c
        query = select(consents).where(c.user_id == user_id).order_by(c.granted_at, c.client_id)
        return await self._list(Consent, query)


class SessionsSql(SqlBase):
    """:class:`~tokensmith.core.ports.SessionStore` but its purge."""

    async def add_session(self, session: Session) -> None:
        await self._write(insert(sessions).values(**row_of(session)))

    async def get_session(self, session_hash: str) -> Session | None:
        return await self._by(Session, sessions.c.session_hash, session_hash)

    async def touch_session(self, session_hash: str, at: float) -> None:
        s = sessions.c
        await self._write(
            update(sessions).where(s.session_hash == session_hash).values(last_seen_at=at)
        )

    async def delete_session(self, session_hash: str) -> None:
        await self._write(delete(sessions).where(sessions.c.session_hash == session_hash))

    async def delete_user_sessions(self, user_id: str) -> int:
        return await self._write(delete(sessions).where(sessions.c.user_id == user_id))
