"""Identifiers, secrets and their hashes.

Generated client secrets, opaque tokens, refresh tokens and codes carry 256
random bits. At that entropy a brute-force preimage search is infeasible, so a
single SHA-256 is the right hash: it is deterministic (tokens are looked up by
their hash), fast enough for the hot path, and salting or stretching adds
nothing. Human passwords are a different matter and use argon2id
(:mod:`tokensmith.core.passwords`).

Stored tokens (opaque access tokens, refresh tokens, authorization codes) and token ids
start with the millisecond of their issue, so the keys they are stored under grow in
issue order: a new row goes to the end of each index instead of a random page of it, and
the cost of an insert stays flat as the tables grow (``bench/sqlite_growth.py``).  The
issue time a token shows this way is in its ``iat`` and ``expires_in`` anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from tokensmith.core.randomness import Randomness

__all__ = [
    "SECRET_BYTES",
    "hash_secret",
    "new_client_id",
    "new_secret",
    "new_token",
    "new_token_id",
    "random_urlsafe",
    "token_key",
    "verify_secret",
]

#: 256 bits, the floor for every generated secret and token.
SECRET_BYTES = 32


def new_client_id(rand: Randomness) -> str:
    """64 random bits as 13 lowercase base32 characters.

    Kept short on purpose: ``client_id:client_secret`` then base64-encodes to at
    most 76 characters, one line of ``base64`` output, so shell examples that
    build a Basic header with ``echo -n id:secret | base64`` work unchanged.
    """
    return base64.b32encode(rand.token_bytes(8)).decode("ascii").rstrip("=").lower()


def random_urlsafe(rand: Randomness, nbytes: int) -> str:
    """``nbytes`` random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(rand.token_bytes(nbytes)).decode("ascii").rstrip("=")


def new_secret(rand: Randomness) -> str:
    """256 random bits, base64url without padding (43 characters)."""
    return random_urlsafe(rand, SECRET_BYTES)


#: Hex digits of the issue millisecond that start a token or token id (enough until 10889).
ORDER_DIGITS = 12
_TOKEN_LENGTH = ORDER_DIGITS + -(-SECRET_BYTES * 4 // 3)  # the prefix, then a new_secret
_HEX = frozenset("0123456789abcdef")


def _order_prefix(now: float) -> str:
    return f"{int(now * 1000):0{ORDER_DIGITS}x}"


def new_token(rand: Randomness, now: float) -> str:
    """A stored token: the issue millisecond, then 256 random bits (RFC 6749 §10.10);
    55 characters of ``[0-9a-f]`` and base64url."""
    return _order_prefix(now) + new_secret(rand)


def new_token_id(rand: Randomness, now: float) -> str:
    """A token id (``jti``, RFC 7519 §4.1.7): the issue millisecond, then 128 random bits."""
    return _order_prefix(now) + random_urlsafe(rand, 16)


def token_key(token: str) -> str:
    """The key a stored token is kept and looked up under: its issue-time prefix followed
    by the first 208 bits of its SHA-256, 64 hex digits like :func:`hash_secret`.  A token
    of another shape (issued before tokens carried the prefix, or not ours) is looked up
    by its plain SHA-256, so older tokens stay valid."""
    if len(token) == _TOKEN_LENGTH and _HEX.issuperset(token[:ORDER_DIGITS]):
        return token[:ORDER_DIGITS] + hash_secret(token)[: 64 - ORDER_DIGITS]
    return hash_secret(token)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret or token, hex encoded."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_secret(presented: str, stored_hash: str) -> bool:
    """Constant-time comparison of ``presented`` against a stored hash."""
    return hmac.compare_digest(hash_secret(presented), stored_hash)
