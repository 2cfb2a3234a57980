"""People who log in (merchant admins and members, platform operators) and their login.

Shared by the CLI (``tokensmith users``/``merchants``), the authorization endpoint's login
page and the merchant panel. Passwords are argon2id hashes (:mod:`.passwords`); failed
logins are throttled per account and per address (RFC 6749 §10.10 resistance to guessing,
NIST SP 800-63B §5.2.2 rate limiting).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace

from tokensmith.core.admin import AdminError, resolve_merchant
from tokensmith.core.audit import Audit
from tokensmith.core.clock import Clock
from tokensmith.core.errors import RateLimited
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.models import ROLES, Merchant, Role, User
from tokensmith.core.passwords import Passwords, check_password_policy
from tokensmith.core.ports import MerchantReader, MerchantStore, SessionEnder, UserStore
from tokensmith.core.randomness import Randomness

__all__ = [
    "LoginLimits",
    "LoginRefused",
    "LoginService",
    "account_active",
    "create_user",
    "disable_merchant",
    "disable_user",
    "normalize_email",
]

_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}")


class LoginRefused(Exception):
    """Wrong e-mail or password, or a disabled account: one message for all (no oracle)."""

    def __init__(self) -> None:
        super().__init__("The e-mail address or password is not correct.")


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased; raises :class:`AdminError` unless it looks like an address."""
    value = email.strip().lower()
    if not _EMAIL.fullmatch(value) or "." not in value.rsplit("@", 1)[1]:
        raise AdminError(f"{email!r} is not an e-mail address")
    return value


async def _merchant_for(
    merchants: MerchantStore, role: str, merchant_ref: str | None
) -> Merchant | None:
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}")
    if role == "operator":
        if merchant_ref:
            raise AdminError("operators belong to no merchant; drop --merchant")
        return None
    if not merchant_ref:
        raise AdminError(f"a {role} needs --merchant")
    merchant = await resolve_merchant(merchants, merchant_ref)
    if merchant.disabled_at is not None:
        raise AdminError(f"merchant {merchant.name!r} is disabled")
    return merchant


async def create_user(
    users: UserStore,
    merchants: MerchantStore,
    passwords: Passwords,
    clock: Clock,
    rand: Randomness,
    *,
    email: str,
    password: str,
    role: str = "member",
    merchant: str | None = None,
) -> User:
    """A new user; ``merchant`` is a merchant id or name (none for operators)."""
    address = normalize_email(email)
    problem = check_password_policy(password)
    if problem:
        raise AdminError(problem)
    owner = await _merchant_for(merchants, role, merchant)
    if await users.find_user_by_email(address) is not None:
        raise AdminError(f"a user with e-mail {address!r} exists")
    user = User(
        user_id="u_" + base64.b32encode(rand.token_bytes(10)).decode("ascii").lower(),
        email=address,
        password_hash=await passwords.hash(password),
        role=_role(role),
        merchant_id=owner.merchant_id if owner else None,
        created_at=clock.now(),
    )
    try:
        await users.add_user(user)
    except KeyError as exc:
        raise AdminError(f"a user with e-mail {address!r} exists") from exc
    return user


def _role(role: str) -> Role:
    for r in ROLES:
        if r == role:
            return r
    raise AdminError(f"role must be one of {', '.join(ROLES)}")


async def disable_user(users: UserStore, sessions: SessionEnder, clock: Clock, email: str) -> User:
    """Disable a user and end their sessions. Apps they authorized keep the merchant's grant
    (withdraw it with the consent route, or revoke the refresh token)."""
    user = await users.find_user_by_email(normalize_email(email))
    if user is None:
        raise AdminError(f"no user {email!r}")
    await users.disable_user(user.user_id, clock.now())
    await sessions.delete_user_sessions(user.user_id)
    found = await users.get_user(user.user_id)
    assert found is not None
    return found


async def disable_merchant(merchants: MerchantStore, clock: Clock, ref: str) -> Merchant:
    """Disable a merchant: its users cannot log in and its refresh tokens stop working."""
    merchant = await resolve_merchant(merchants, ref)
    await merchants.disable_merchant(merchant.merchant_id, clock.now())
    return await resolve_merchant(merchants, merchant.merchant_id)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: Limit = field(default_factory=lambda: Limit(failures=5, window=900))
    per_address: Limit = field(default_factory=lambda: Limit(failures=20, window=900))


class LoginService:
    """Checks an e-mail and password; limits failures per account and per address.

    Passwords are chosen by people and can be guessed, so the per-account limit holds
    whatever address the guesses come from (NIST SP 800-63B §5.2.2). Each attempt is
    counted before its password is verified and given back if it succeeds
    (:meth:`FailureLimiter.reserve`): a burst of parallel guesses gets no more argon2
    verifications than ``per_account`` allows, in one process or across instances sharing
    Redis.
    """

    def __init__(
        self,
        users: UserStore,
        merchants: MerchantStore,
        passwords: Passwords,
        limiter: FailureLimiter,
        limits: LoginLimits,
        fingerprints: Fingerprints | None = None,
        audit: Audit | None = None,
    ) -> None:
        self._users = users
        self._merchants = merchants
        self._passwords = passwords
        self._limiter = limiter
        self._limits = limits
        self._fingerprints = fingerprints or Fingerprints.ephemeral()
        self._audit = audit

    async def login(self, email: str, password: str, source: str) -> User:
        """The user, or :class:`LoginRefused` / :class:`RateLimited` (HTTP 429). Each
        outcome is an audit event (``login.succeeded``/``login.failed``) naming the
        account as typed only if it is a real user's, else by its fingerprint."""
        address = email.strip().lower()[:320]
        try:
            user = await self._login(address, password, source)
        except RateLimited:
            await self._failed(address, source, "rate_limited")
            raise
        if self._audit is not None:
            await self._audit.record(
                "login.succeeded",
                actor=f"user:{user.user_id}",
                merchant_id=user.merchant_id,
                source=source,
                subject=user.user_id,
                username=user.email,
            )
        return user

    async def _failed(self, address: str, source: str, reason: str) -> None:
        if self._audit is None:
            return
        user = await self._users.find_user_by_email(address) if _EMAIL.fullmatch(address) else None
        if user is not None and reason == "bad_credentials" and not await self._may_log_in(user):
            reason = "account_disabled"
        await self._audit.record(
            "login.failed",
            actor="anonymous",
            outcome="failure",
            merchant_id=user.merchant_id if user else None,
            source=source,
            subject=user.user_id if user else None,
            username=user.email if user else self._fingerprints.label(address),
            reason=reason,
        )

    async def _login(self, address: str, password: str, source: str) -> User:
        # the address is hashed: the counters may live in Redis, and people type passwords
        # into e-mail fields
        keys = (
            (f"login:{self._fingerprints.key(address)}", self._limits.per_account),
            (f"login-addr:{source}", self._limits.per_address),
        )
        wait = await self._limiter.reserve(keys)
        if wait is not None:
            raise RateLimited(wait, "too many failed logins")
        failed = False
        try:
            user = await self._check(address, password)
            failed = user is None
        finally:
            if not failed:  # a success, or no verdict (an error): not a failure
                await self._limiter.release(keys)
        if user is None:
            await self._failed(address, source, "bad_credentials")
            raise LoginRefused()
        return user

    async def _check(self, address: str, password: str) -> User | None:
        """The user if the password is right and the account may log in, else ``None``."""
        user = await self._users.find_user_by_email(address) if _EMAIL.fullmatch(address) else None
        ok = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not await self._may_log_in(user):
            return None
        return await self._upgrade(user, password)

    async def _upgrade(self, user: User, password: str) -> User:
        """Store a hash with the current argon2 parameters if the user's was made with
        older ones (RFC 9106 §4); the password is at hand only now, at a login."""
        new_hash = await self._passwords.rehash(user.password_hash, password)
        if new_hash is None:
            return user
        if await self._users.update_password_hash(user.user_id, user.password_hash, new_hash):
            return replace(user, password_hash=new_hash)
        return user  # changed meanwhile (another login upgraded it first)

    async def _may_log_in(self, user: User) -> bool:
        return await account_active(self._merchants, user)


async def account_active(merchants: MerchantReader, user: User) -> bool:
    """Whether ``user`` may act: the account is enabled, and so is its merchant if any."""
    if not user.active:
        return False
    if user.merchant_id is None:
        return True
    merchant = await merchants.get_merchant(user.merchant_id)
    return merchant is not None and merchant.active
