"""PKCE (RFC 7636) and authorization request helpers (RFC 6749 §4.1.1)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .token import join_scope

__all__ = [
    "PKCE",
    "build_authorization_url",
    "code_challenge_s256",
    "make_code_verifier",
    "make_state",
]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def make_code_verifier(length: int = 64) -> str:
    """A high-entropy ``code_verifier`` (RFC 7636 §4.1): 43 to 128 unreserved characters."""
    if not 43 <= length <= 128:
        raise ValueError("RFC 7636 §4.1: code_verifier length must be within 43..128")
    verifier = secrets.token_urlsafe(96)[:length]
    return verifier


def code_challenge_s256(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` without padding (RFC 7636 §4.2)."""
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= _UNRESERVED:
        raise ValueError("RFC 7636 §4.1: invalid code_verifier")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_state() -> str:
    """An unguessable ``state`` value for CSRF protection (RFC 6749 §10.12)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class PKCE:
    """A verifier/challenge pair (RFC 7636).  Keep ``verifier`` server-side (session);
    send ``challenge`` and ``method`` in the authorization request."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> PKCE:
        """Create a fresh S256 pair."""
        verifier = make_code_verifier(length)
        return cls(verifier=verifier, challenge=code_challenge_s256(verifier))


def build_authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str | None = None,
    scope: str | Iterable[str] | None = None,
    state: str | None = None,
    code_challenge: str | None = None,
    code_challenge_method: str = "S256",
    response_type: str = "code",
    **extra: str,
) -> str:
    """The URL to send the user agent to (RFC 6749 §4.1.1, RFC 7636 §4.3).

    Query parameters already present in ``authorization_endpoint`` are kept
    (RFC 6749 §3.1).  ``extra`` adds further parameters (e.g. ``prompt``).
    """
    parts = urlsplit(authorization_endpoint)
    params = parse_qsl(parts.query, keep_blank_values=True)
    ours: dict[str, str] = {"response_type": response_type, "client_id": client_id}
    if redirect_uri is not None:
        ours["redirect_uri"] = redirect_uri
    joined = join_scope(scope)
    if joined:
        ours["scope"] = joined
    if state is not None:
        ours["state"] = state
    if code_challenge is not None:
        ours["code_challenge"] = code_challenge
        ours["code_challenge_method"] = code_challenge_method
    ours.update(extra)
    params = [(k, v) for k, v in params if k not in ours] + list(ours.items())
    return urlunsplit(parts._replace(query=urlencode(params)))
