"""Injected randomness for identifiers, secrets and tokens."""

from __future__ import annotations

import secrets
from typing import Protocol

__all__ = ["Randomness", "SystemRandomness"]


class Randomness(Protocol):
    """A source of cryptographically strong random bytes."""

    def token_bytes(self, n: int) -> bytes: ...


class SystemRandomness:
    """``secrets.token_bytes`` (the OS CSPRNG)."""

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)
