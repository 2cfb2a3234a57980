"""Human passwords: argon2id (RFC 9106), verified off the event loop.

Unlike generated secrets (:mod:`tokensmith.core.credentials`), passwords are
guessable, so they get a salted, memory-hard hash: argon2id with t=2, m=19 MiB, p=1, the
OWASP Password Storage Cheat Sheet's configuration. argon2-cffi's default (RFC 9106 §4
second option, m=64 MiB) would grow a worker by 64 MB at each login, half of its memory
budget. A hash holds its own parameters, so hashes made with others still verify; a
successful login replaces such a hash with one made with these (:meth:`Passwords.rehash`).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MIN_PASSWORD_LENGTH", "Passwords", "check_password_policy"]

#: NIST SP 800-63B §5.1.1.2 asks for at least 8; we ask for 10.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def check_password_policy(password: str) -> str | None:
    """Why ``password`` is not acceptable, or ``None``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    return None


class Passwords:
    """argon2id hashing and verification; verification of an unknown account still hashes."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with ``stored_hash=None`` it burns the same time."""
        if stored_hash is None and self._dummy is None:
            self._dummy = await self.hash("tokensmith-dummy-password")
        target = stored_hash or self._dummy or ""
        try:
            ok = await asyncio.to_thread(
                self._hasher.verify, target, password[:MAX_PASSWORD_LENGTH]
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than these."""
        return self._hasher.check_needs_rehash(stored_hash)

    async def rehash(self, stored_hash: str, password: str) -> str | None:
        """A hash of ``password`` with the current parameters if ``stored_hash`` was made
        with others, else ``None``. Call it only once ``password`` has been verified."""
        if not self.needs_rehash(stored_hash):
            return None
        return await self.hash(password[:MAX_PASSWORD_LENGTH])
