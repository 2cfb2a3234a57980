"""The "nothing lost" check: every access token a measured run received is introspected.

wrk's scripts log the access token of every 200 answer (``lua/report.lua``); afterwards,
with the server still up, each one is sent to the introspection endpoint by the client
that got it. A token the server does not call ``active`` was lost.
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

THREADS = 4
LOG_GLOB = "tokens-*.txt"


@dataclass(frozen=True)
class Audit:
    logged: int  # tokens in the log
    answered: int  # wrk's count of answers below 400 (for comparison with logged)
    active: int

    @property
    def lost(self) -> int:
        return self.logged - self.active


def read_log(folder: Path) -> list[str]:
    tokens: list[str] = []
    for path in sorted(folder.glob(LOG_GLOB)):
        tokens += [line for line in path.read_text().splitlines() if line]
    return tokens


def audit(base_url: str, path: str, auth: str, folder: Path, answered: int) -> Audit:
    tokens = read_log(folder)
    shares = [tokens[i::THREADS] for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        active = sum(pool.map(lambda share: count_active(base_url, path, auth, share), shares))
    return Audit(logged=len(tokens), answered=answered, active=active)


def count_active(base_url: str, path: str, auth: str, tokens: list[str]) -> int:
    """How many of ``tokens`` introspect as active, over one keep-alive connection."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    active = 0
    try:
        for token in tokens:
            active += _is_active(conn, path, headers, token)
    finally:
        conn.close()
    return active


def _is_active(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str], token: str
) -> bool:
    body = urlencode({"token": token})
    try:
        status, raw = _post(conn, path, headers, body)
    except (http.client.RemoteDisconnected, ConnectionError):
        conn.close()  # a keep-alive connection the server closed: once more
        status, raw = _post(conn, path, headers, body)
    if status != 200:
        raise RuntimeError(f"introspection answered {status}: {raw[:200]!r}")
    return json.loads(raw).get("active") is True


def _post(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str], body: str
) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()
