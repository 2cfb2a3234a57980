"""Identifiers, secrets and their hashes.

Generated client secrets, opaque tokens, refresh tokens and codes carry 256
random bits. At that entropy a brute-force preimage search is infeasible, so a
single SHA-256 is the right hash: it is deterministic (tokens are looked up by
their hash), fast enough for the hot path, and salting or stretching adds
nothing. Human passwords are a different matter and use argon2id
(:mod:`tokensmith.core.passwords`).
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


def new_secret(rand: Randomness) -> str:
    """256 random bits, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(rand.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret or token, hex encoded."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_secret(presented: str, stored_hash: str) -> bool:
    """Constant-time comparison of ``presented`` against a stored hash."""
    return hmac.compare_digest(hash_secret(presented), stored_hash)
