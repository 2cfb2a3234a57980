"""A cross-process token cache: a JSON file plus an ``fcntl`` lock file.

Workers of one application (gunicorn/uvicorn workers, cron jobs) share one access token
instead of each fetching its own: the first worker that needs a token takes the exclusive
lock, re-reads the file, and only fetches if the file holds no fresh token; the others
wait on the lock and then find the token in the file.  Files are created with mode 0600.
Refresh tokens are never written here (they belong in a ``RefreshTokenStore``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .stores import _atomic_write
from .token import Token

__all__ = ["FileTokenCache", "cache_key"]

logger = logging.getLogger("tokensmith.client")


def cache_key(*parts: str | None) -> str:
    """Stable key for one (endpoint, client, scope, ...) combination.  Hashed so that
    the file names no client or URL in clear."""
    joined = "\x1f".join(p or "" for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


class FileTokenCache:
    """Token cache shared between processes through ``path`` (+ ``path.lock``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileTokenCache(path={str(self.path)!r})"

    # -- locking --------------------------------------------------------------------
    def acquire(self) -> int:
        """Take the exclusive cross-process lock (blocking); returns a handle for
        :meth:`release`."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def release(handle: int) -> None:
        """Release a lock taken by :meth:`acquire`."""
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Context manager around :meth:`acquire`/:meth:`release`."""
        handle = self.acquire()
        try:
            yield
        finally:
            self.release(handle)

    # -- data -----------------------------------------------------------------------
    def _read_all(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            logger.warning("ignoring corrupt token cache file %s", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, key: str) -> Token | None:
        """The cached token for ``key``, or None.  Safe without the lock (writes are
        atomic renames)."""
        record = self._read_all().get(key)
        if not isinstance(record, dict):
            return None
        try:
            return Token.from_dict(record)
        except ValueError:
            return None

    def store(self, key: str, token: Token, *, now: float | None = None) -> None:
        """Save ``token`` under ``key`` (call with the lock held).  Expired entries of
        other keys are dropped when ``now`` is given."""
        data = self._read_all()
        if now is not None:
            data = {
                k: v
                for k, v in data.items()
                if isinstance(v, dict)
                and isinstance(v.get("expires_at"), int | float)
                and v["expires_at"] > now
            }
        data[key] = token.to_dict(include_refresh_token=False)
        _atomic_write(self.path, orjson.dumps(data))

    def invalidate(self, key: str, access_token: str | None = None) -> None:
        """Drop the entry for ``key`` (only if it still holds ``access_token`` when
        given).  Call with the lock held."""
        data = self._read_all()
        record = data.get(key)
        if record is None:
            return
        if access_token is not None and (
            not isinstance(record, dict) or record.get("access_token") != access_token
        ):
            return
        del data[key]
        _atomic_write(self.path, orjson.dumps(data))
