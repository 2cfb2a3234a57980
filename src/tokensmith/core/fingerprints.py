"""Names for presented values that must not be written down as they are.

A ``client_id`` that no client has may be anything a caller typed, a secret pasted into
the wrong field included, and an e-mail field may hold a password. Such a value is never
logged, stored or used as a counter key in clear: it is replaced by a keyed hash
(HMAC-SHA256), which cannot be reversed without the key, even for a short, guessable
value. The key is derived from the server's secret key, so every instance sharing it
(as instances sharing a database must) names a value the same way.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokensmith.core.randomness import Randomness, SystemRandomness

__all__ = ["UNKNOWN_PREFIX", "Fingerprints"]

#: How a fingerprint label starts (no generated identifier contains a colon).
UNKNOWN_PREFIX = "unknown:"


class Fingerprints:
    """Keyed hashes of presented values: :meth:`key` for counters, :meth:`label` for logs
    and tables."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprints(...)"

    @classmethod
    def from_secret(cls, secret: str) -> Fingerprints:
        """Derived from a server secret key (HKDF-SHA256, RFC 5869)."""
        hkdf = HKDF(hashes.SHA256(), length=32, salt=None, info=b"tokensmith/fingerprints")
        return cls(hkdf.derive(secret.encode("utf-8")))

    @classmethod
    def ephemeral(cls, rand: Randomness | None = None) -> Fingerprints:
        """A random key: names agree within this process only."""
        return cls((rand or SystemRandomness()).token_bytes(32))

    def _digest(self, value: str) -> str:
        data = value.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def key(self, value: str) -> str:
        """128 bits of the keyed hash, hex: a counter key that holds no presented value."""
        return self._digest(value)[:32]

    def label(self, value: str) -> str:
        """``unknown:<length>:<8 hex digits>``: tells repeated values apart, reveals none."""
        return f"{UNKNOWN_PREFIX}{len(value)}:{self._digest(value)[:8]}"
