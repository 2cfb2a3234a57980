"""The merchants and the people who log in, as the CLI (``tokensmith merchants``/``users``)
and the merchant panel (Team > Users) manage them.

Roles: a ``member`` of a merchant sees its settings, an ``admin`` changes them, an
``operator`` runs the platform and belongs to no merchant. A merchant's people are looked
up within that merchant only: another merchant's user is as unknown as one that does not
exist.
"""

from __future__ import annotations

from tokensmith.core.accounts import create_user, disable_merchant, disable_user
from tokensmith.core.admin import create_merchant, resolve_merchant
from tokensmith.core.audit import SYSTEM, Audit, By
from tokensmith.core.clock import Clock
from tokensmith.core.models import Merchant, User
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import MerchantStore, SessionEnder, UserStore
from tokensmith.core.randomness import Randomness

__all__ = ["Merchants", "Users"]


class Merchants:
    """Create, find, list and disable merchants."""

    def __init__(
        self,
        merchants: MerchantStore,
        clock: Clock,
        rand: Randomness,
        audit: Audit | None = None,
    ) -> None:
        self._merchants = merchants
        self._clock = clock
        self._rand = rand
        self._audit = audit or Audit.null(clock, rand)

    async def create(self, name: str, *, by: By = SYSTEM) -> Merchant:
        merchant = await create_merchant(self._merchants, self._clock, self._rand, name)
        await self._audit.by(
            by,
            "merchant.created",
            merchant_id=merchant.merchant_id,
            subject=merchant.merchant_id,
            name=merchant.name,
        )
        return merchant

    async def get(self, merchant_id: str) -> Merchant | None:
        return await self._merchants.get_merchant(merchant_id)

    async def resolve(self, ref: str) -> Merchant:
        """A merchant by id or by name; :class:`~tokensmith.core.admin.AdminError` if none."""
        return await resolve_merchant(self._merchants, ref)

    async def listing(self) -> list[Merchant]:
        return await self._merchants.list_merchants()

    async def disable(self, ref: str, *, by: By = SYSTEM) -> Merchant:
        """Its users cannot log in and its refresh tokens stop working."""
        merchant = await disable_merchant(self._merchants, self._clock, ref)
        await self._audit.by(
            by, "merchant.disabled", merchant_id=merchant.merchant_id, subject=merchant.merchant_id
        )
        return merchant


class Users:
    """Create, find, list and disable the people who log in."""

    def __init__(
        self,
        users: UserStore,
        merchants: MerchantStore,
        sessions: SessionEnder,
        passwords: Passwords,
        clock: Clock,
        rand: Randomness,
        audit: Audit | None = None,
    ) -> None:
        self._users = users
        self._merchants = merchants
        self._sessions = sessions
        self._passwords = passwords
        self._clock = clock
        self._rand = rand
        self._audit = audit or Audit.null(clock, rand)

    async def create(
        self,
        *,
        email: str,
        password: str,
        role: str = "member",
        merchant: str | None = None,
        by: By = SYSTEM,
    ) -> User:
        """A new user with a first password (checked against the policy, stored as
        argon2id); ``merchant`` is a merchant id or name (none for operators)."""
        user = await create_user(
            self._users,
            self._merchants,
            self._passwords,
            self._clock,
            self._rand,
            email=email,
            password=password,
            role=role,
            merchant=merchant,
        )
        await self._audit.by(
            by,
            "user.created",
            merchant_id=user.merchant_id,
            subject=user.user_id,
            email=user.email,
            role=user.role,
        )
        return user

    async def listing(self, merchant_id: str | None = None) -> list[User]:
        """Every user, or the merchant's."""
        return await self._users.list_users(merchant_id)

    async def member(self, merchant_id: str, user_id: str) -> User | None:
        """The user if they belong to the merchant, else ``None``."""
        user = await self._users.get_user(user_id)
        return user if user is not None and user.merchant_id == merchant_id else None

    async def disableable(self, merchant_id: str, user_id: str, by: User) -> User | None:
        """The merchant's user whom ``by`` may disable: anyone of the merchant but
        themself (an admin cannot lock the last door behind them)."""
        user = await self.member(merchant_id, user_id)
        return None if user is None or user.user_id == by.user_id else user

    async def disable(self, email: str, *, by: By = SYSTEM) -> User:
        """Disable the user and end their sessions. Apps they authorized keep the
        merchant's grant until it is withdrawn."""
        user = await disable_user(self._users, self._sessions, self._clock, email)
        await self._audit.by(
            by, "user.disabled", merchant_id=user.merchant_id, subject=user.user_id
        )
        return user

    async def disable_member(
        self, merchant_id: str | None, user_id: str, *, by: By = SYSTEM
    ) -> User | None:
        """Disable the user if they belong to ``merchant_id`` (any user for ``None``: the
        platform) and end their sessions, as :meth:`disable`; ``None`` if there is no such
        user."""
        user = await self._users.get_user(user_id)
        if user is None or (merchant_id is not None and user.merchant_id != merchant_id):
            return None
        if user.disabled_at is not None:
            return user
        return await self.disable(user.email, by=by)
