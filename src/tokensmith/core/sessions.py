"""Server-side browser sessions, without HTTP.

The browser holds a random secret (256 bits); the store holds only its SHA-256
(:class:`~tokensmith.core.models.Session`). A session ends after ``idle_ttl`` seconds
without activity or ``absolute_ttl`` seconds after it began, on logout, and when its user
is disabled (OWASP Session Management: idle and absolute timeouts). Logging in always
starts a new session (:meth:`Sessions.rotate`: no fixation).
"""

from __future__ import annotations

from tokensmith.core.accounts import account_active
from tokensmith.core.audit import Audit, By
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret, new_secret
from tokensmith.core.models import Session, User
from tokensmith.core.ports import MerchantReader, SessionKeeper, UserReader
from tokensmith.core.randomness import Randomness

__all__ = ["TOUCH_EVERY", "Sessions"]

#: Activity is written at most this often (seconds), not on every request.
TOUCH_EVERY = 60.0


class Sessions:
    """Starts, finds, renews and ends browser sessions."""

    def __init__(
        self,
        sessions: SessionKeeper,
        users: UserReader,
        merchants: MerchantReader,
        clock: Clock,
        rand: Randomness,
        *,
        idle_ttl: int,
        absolute_ttl: int,
        audit: Audit | None = None,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._merchants = merchants
        self._clock = clock
        self._rand = rand
        self.idle_ttl = idle_ttl
        self.absolute_ttl = absolute_ttl
        self._audit = audit or Audit.null(clock, rand)

    async def start(self, user_id: str | None = None) -> tuple[Session, str]:
        """A new session (anonymous without ``user_id``) and the secret the browser keeps."""
        plain = new_secret(self._rand)
        now = self._clock.now()
        session = Session(hash_secret(plain), user_id, now, now, now + self.absolute_ttl)
        await self._sessions.add_session(session)
        return session, plain

    async def resolve(self, plain: str) -> Session | None:
        """The live session of the secret ``plain``, or ``None``. An expired one is deleted;
        a live one's activity is recorded at most every :data:`TOUCH_EVERY` seconds."""
        if not plain:
            return None
        session = await self._sessions.get_session(hash_secret(plain))
        if session is None:
            return None
        now = self._clock.now()
        if now >= session.expires_at or now - session.last_seen_at >= self.idle_ttl:
            await self._sessions.delete_session(session.session_hash)
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await self._sessions.touch_session(session.session_hash, now)
        return session

    async def user_of(self, session: Session) -> User | None:
        """The session's user, if logged in and still allowed to act (user and merchant
        enabled)."""
        if session.user_id is None:
            return None
        user = await self._users.get_user(session.user_id)
        if user is None or not await account_active(self._merchants, user):
            return None
        return user

    async def rotate(self, old: Session | None, user_id: str) -> tuple[Session, str]:
        """At login: end ``old`` (if any) and start a session for ``user_id``."""
        if old is not None:
            await self.end(old)
        return await self.start(user_id)

    async def end(self, session: Session) -> None:
        await self._sessions.delete_session(session.session_hash)

    async def logout(self, session: Session, source: str | None = None) -> None:
        """End the session; a logged-in one's end is a ``logout`` audit event."""
        await self.end(session)
        if session.user_id is None:
            return
        user = await self._users.get_user(session.user_id)
        await self._audit.by(
            By.user(session.user_id, source),
            "logout",
            merchant_id=user.merchant_id if user else None,
            subject=session.user_id,
        )
