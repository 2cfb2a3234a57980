"""Refresh token persistence.

With refresh token rotation (RFC 6749 §10.4, OAuth 2.0 Security BCP §4.14.2) each refresh
returns a NEW refresh token and spends the old one.  The client therefore saves every new
refresh token to a :class:`RefreshTokenStore` *before* the new access token is used: if the
process crashes after that point the stored token is still good; if it crashes before,
the old token is still stored and the server's grace window accepts it once more.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["FileRefreshTokenStore", "MemoryRefreshTokenStore", "RefreshTokenStore"]


@runtime_checkable
class RefreshTokenStore(Protocol):
    """Where the current refresh token lives.  ``save`` must be durable on return."""

    def load(self) -> str | None:
        """The current refresh token, or None if there is none."""
        ...

    def save(self, token: str) -> None:
        """Replace the current refresh token."""
        ...


class MemoryRefreshTokenStore:
    """Process-local store (tests, short-lived scripts)."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token
        self._lock = threading.Lock()

    def load(self) -> str | None:
        with self._lock:
            return self._token

    def save(self, token: str) -> None:
        with self._lock:
            self._token = token

    def clear(self) -> None:
        """Forget the token (e.g. on logout)."""
        with self._lock:
            self._token = None

    def __repr__(self) -> str:
        return f"MemoryRefreshTokenStore(token={'***' if self._token else None})"


class FileRefreshTokenStore:
    """A file holding the refresh token, written atomically (temp file, ``fsync``,
    ``os.replace``) with mode 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, token: str) -> None:
        if not token or "\n" in token:
            raise ValueError("refusing to store an empty or multi-line refresh token")
        _atomic_write(self.path, token.encode("utf-8"))

    def clear(self) -> None:
        """Delete the file (e.g. on logout)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __repr__(self) -> str:
        return f"FileRefreshTokenStore(path={str(self.path)!r})"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
