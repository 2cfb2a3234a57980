"""Proof Key for Code Exchange (RFC 7636), S256 only (RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from tokensmith.core.errors import InvalidGrant, InvalidRequest

__all__ = ["check_challenge", "s256", "verify"]

# RFC 7636 §4.1: code-verifier = 43*128unreserved; §4.2 the S256 challenge is 43 characters.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def check_challenge(challenge: str | None, method: str | None, required: bool) -> str | None:
    """The challenge to bind to the code, or ``InvalidRequest`` (RFC 7636 §4.4.1).

    Only S256 is accepted: ``plain`` (and a missing method, which means plain) is refused,
    as RFC 9700 §2.1.1 recommends.
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if required:
            raise InvalidRequest("PKCE is required: send code_challenge with method S256")
        return None
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256 (plain is not supported)")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (RFC 7636 §4.2)")
    return challenge


def verify(challenge: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6 at the token endpoint; RFC 9700 §2.1.1 against PKCE downgrade.

    A verifier without a challenge, a challenge without a verifier, and a mismatch are all
    ``invalid_grant``; a verifier outside the §4.1 syntax is ``invalid_request``.
    """
    if verifier is not None and not _VERIFIER.fullmatch(verifier):
        raise InvalidRequest("code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)")
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent but the authorization request had no PKCE")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required for this code")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
