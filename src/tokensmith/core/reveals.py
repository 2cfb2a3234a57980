"""Secrets shown exactly once (a new client secret or developer app key).

The action that makes a secret stores a :class:`~tokensmith.core.panel_models.Reveal`
and hands the browser its id; the first request with the id takes it (deletes it) and
shows the secret. The reveal is sealed with AES-256-GCM (NIST SP 800-38D) under a key the
caller derives from what only the browser holds (its session cookie), with the id's
hash as associated data, so the store never holds the secret in a readable form. It is
bound to the browser session (by its hash) and expires after ``ttl`` seconds.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret, new_secret
from tokensmith.core.panel_models import Reveal
from tokensmith.core.ports import RevealKeeper
from tokensmith.core.randomness import Randomness

__all__ = ["REVEAL_TTL", "Reveals"]

#: Seconds a secret waits to be shown once after it was made.
REVEAL_TTL = 600
_NONCE = 12


class Reveals:
    """Seal a secret for one showing; take it back once."""

    def __init__(
        self, reveals: RevealKeeper, clock: Clock, rand: Randomness, ttl: int = REVEAL_TTL
    ) -> None:
        self._reveals = reveals
        self._clock = clock
        self._rand = rand
        self.ttl = ttl

    async def add(self, key: bytes, session_hash: str, body: bytes) -> str:
        """Seal ``body`` under ``key`` (32 bytes) for the session; return the reveal's id."""
        rid = new_secret(self._rand)
        nonce = self._rand.token_bytes(_NONCE)
        sealed = nonce + AESGCM(key).encrypt(nonce, body, hash_secret(rid).encode())
        now = self._clock.now()
        await self._reveals.add_reveal(
            Reveal(hash_secret(rid), session_hash, sealed, now, now + self.ttl)
        )
        return rid

    async def take(self, key: bytes, rid: str, session_hash: str) -> bytes | None:
        """The body of reveal ``rid`` if it is the session's, unexpired, not taken before,
        and opens with ``key``; it is gone afterwards either way."""
        reveal = await self._reveals.take_reveal(hash_secret(rid), session_hash, self._clock.now())
        if reveal is None:
            return None
        try:
            return AESGCM(key).decrypt(
                reveal.sealed[:_NONCE], reveal.sealed[_NONCE:], hash_secret(rid).encode()
            )
        except (InvalidTag, ValueError):
            return None
