"""Browser sessions over HTTP: the session cookie, and CSRF tokens.

The cookie holds 256 random bits; the database holds only their SHA-256. The sessions
themselves, their idle and absolute expiry and their renewal at login, are the core's
(:class:`tokensmith.core.sessions.Sessions`, at ``ctx.sessions``).

Cookie: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``; when the issuer is https it is also
``Secure`` and named with the ``__Host-`` prefix (RFC 6265bis §4.1.3.2).

CSRF: a synchronizer token derived from the session secret,
``BASE64URL(HMAC-SHA256(session_token, "tokensmith-csrf"))``, so nothing extra is stored.
Forms carry it as ``csrf_token``; :func:`check_csrf` compares in constant time and also
refuses a foreign ``Origin`` header.

Request-scoped state lives on ``request.state`` (``ts_session``, ``ts_user``, and the
cookie to set on the response, which :func:`apply_cookie` writes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.models import Session, User
from tokensmith.core.sessions import Sessions

__all__ = [
    "CSRF_FIELD",
    "CsrfError",
    "SessionCookie",
    "apply_cookie",
    "check_csrf",
    "csrf_token",
    "current_user",
    "end_session",
    "start_login_session",
]

CSRF_FIELD = "csrf_token"
_UNSET = object()


class CsrfError(Exception):
    """A form without a valid CSRF token, or from another origin: HTTP 403."""


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """How the session cookie is set; one per app, at ``ctx.ui.sessions``."""

    secure: bool
    origin: str
    #: seconds: the session's absolute lifetime
    max_age: int

    @property
    def cookie_name(self) -> str:
        return "__Host-tokensmith" if self.secure else "tokensmith_session"


def _cookie(request: Request) -> SessionCookie:
    from tokensmith.web.ui import ui_of

    return ui_of(request).sessions


def _sessions(request: Request) -> Sessions:
    from tokensmith.web.context import ctx_of

    return ctx_of(request).sessions


def _source(request: Request) -> str:
    from tokensmith.web.actors import source_of

    return source_of(request)


def _plain(request: Request) -> str | None:
    """The session secret of this request: one just created, else the cookie's."""
    new = getattr(request.state, "ts_set_cookie", None)
    if isinstance(new, str):
        return new
    return request.cookies.get(_cookie(request).cookie_name) or None


async def load_session(request: Request) -> Session | None:
    """The live session of the request, or ``None`` (expired ones are deleted)."""
    cached = getattr(request.state, "ts_session", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    session = await _sessions(request).resolve(_plain(request) or "")
    request.state.ts_session = session
    return session


def _started(request: Request, session: Session, plain: str) -> Session:
    request.state.ts_set_cookie = plain
    request.state.ts_session = session
    return session


async def current_user(request: Request) -> User | None:
    """The logged-in user, if the session is live and the user (and merchant) active."""
    cached = getattr(request.state, "ts_user", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    session = await load_session(request)
    user = None if session is None else await _sessions(request).user_of(session)
    request.state.ts_user = user
    return user


async def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page; starts an (anonymous) session if needed."""
    if await load_session(request) is None:
        _started(request, *await _sessions(request).start())
    plain = _plain(request)
    assert plain is not None
    mac = hmac.new(plain.encode("ascii"), b"tokensmith-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


async def check_csrf(request: Request, form: dict[str, str]) -> None:
    """Raise :class:`CsrfError` unless the form's token matches this session's and the
    request (if it says) comes from our own origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != _cookie(request).origin and origin != _own(request):
        raise CsrfError("the form was sent from another site")
    presented = form.get(CSRF_FIELD, "")
    if await load_session(request) is None or not presented:
        raise CsrfError("the form has expired")
    expected = await csrf_token(request)
    if not hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode("ascii")):
        raise CsrfError("the form has expired")


def _own(request: Request) -> str:
    parts = urlsplit(str(request.url))
    return f"{parts.scheme}://{parts.netloc}"


async def start_login_session(request: Request, user: User) -> None:
    """A fresh session for ``user``; the old one (if any) is deleted."""
    old = await load_session(request)
    _started(request, *await _sessions(request).rotate(old, user.user_id))
    request.state.ts_user = user


async def end_session(request: Request) -> None:
    session = await load_session(request)
    if session is not None:
        await _sessions(request).logout(session, _source(request))
    request.state.ts_session = None
    request.state.ts_user = None
    request.state.ts_set_cookie = ""


def apply_cookie(request: Request, response: Response) -> None:
    """Write the session cookie this request started or ended, if any."""
    value = getattr(request.state, "ts_set_cookie", None)
    if value is None:
        return
    m = _cookie(request)
    if value == "":
        response.delete_cookie(
            m.cookie_name, path="/", secure=m.secure, httponly=True, samesite="lax"
        )
        return
    response.set_cookie(
        m.cookie_name,
        value,
        max_age=m.max_age,
        path="/",
        secure=m.secure,
        httponly=True,
        samesite="lax",
    )
