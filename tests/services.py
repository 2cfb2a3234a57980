"""Which PostgreSQL and Redis the suite uses.

``TOKENSMITH_TEST_POSTGRES_URL`` and ``TOKENSMITH_TEST_REDIS_URL`` name them. When a
variable is unset, the default local address is probed (a TCP connect with a short
timeout) and used if something listens there; set the variable to an empty value to
turn those tests off whatever is running.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["DEFAULT_POSTGRES_URL", "DEFAULT_REDIS_URL", "reachable", "service_url"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PROBE_TIMEOUT = 0.25


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether something accepts a TCP connection at ``url``'s host and port."""
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def service_url(
    variable: str, default: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The URL the tests use: the variable's value if set (empty: none), else ``default``
    when it answers, else none."""
    env = os.environ if environ is None else environ
    if variable in env:
        return env[variable] or None
    return default if reachable(default) else None
